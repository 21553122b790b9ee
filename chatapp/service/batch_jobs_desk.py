"""Batch jobs for ChatService: estimate, start, resume and list them (the work is in batch_desk)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING

from chatapp.config import Settings

if TYPE_CHECKING:
    from chatapp.engine import RequestEngine
    from chatapp.service.batch import BatchRun
    from chatapp.service.batch_desk import BatchPlan
    from chatapp.service.batch_estimate import BatchEstimate
    from chatapp.service.batch_remote import RemoteBatchRun
    from chatapp.store.batch_jobs import BatchJobs, JobRecord
    from chatapp.templates import TemplateLibrary


class BatchJobsDesk:
    settings: Settings
    redact: Callable[[str], str]

    if TYPE_CHECKING:  # built on first use by ChatService
        @property
        def _engine(self) -> RequestEngine: ...

        @property
        def templates(self) -> TemplateLibrary: ...

    @cached_property
    def _batch_jobs(self) -> BatchJobs:
        from chatapp.store.batch_jobs import BatchJobs

        return BatchJobs.open(self.settings.paths.batch_database)

    def estimate_batch(self, plan: BatchPlan) -> BatchEstimate:
        """Tokens, cost and time of a batch before it starts; raises InputError/TemplateError/ConfigError."""
        from chatapp.service.batch_desk import estimate_plan

        return estimate_plan(self.settings, plan, self.templates)

    def start_batch(self, plan: BatchPlan, total: int) -> BatchRun | RemoteBatchRun:
        """Record a new job and return its run (call before any turn: the plan's limits shape the engine)."""
        from chatapp.service.batch_desk import create_job

        return self._batch_run(create_job(self._batch_jobs, plan, total))

    def resume_batch(self, job_id: str) -> BatchRun | RemoteBatchRun:
        """A stopped or killed job's run; raises KeyError for an unknown id, RuntimeError for a live one."""
        job = self._batch_jobs.job(job_id)
        if job is None:
            raise KeyError(job_id)
        if job.alive:
            raise RuntimeError(f"batch {job.id} is still running (pid {job.pid})")
        return self._batch_run(job)

    def _batch_run(self, job: JobRecord) -> BatchRun | RemoteBatchRun:
        from chatapp.service.batch_desk import BatchPlan, open_run, with_batch_spec

        if "_engine" not in self.__dict__:  # the job's concurrency and limits shape this process's engine
            self.settings = with_batch_spec(self.settings, BatchPlan.from_options(job.options))
        return open_run(job, settings=self.settings, jobs=self._batch_jobs, templates=self.templates,
                        engine=lambda: self._engine, redact=self.redact)

    def batch_job(self, job_id: str) -> JobRecord | None:
        return self._batch_jobs.job(job_id)

    def batch_jobs(self, limit: int = 20) -> list[JobRecord]:
        return self._batch_jobs.jobs(limit)

    def running_batches(self) -> list[str]:
        """One line per batch job running in any process (the stats screen shows them); never creates the DB."""
        if not self.settings.paths.batch_database.exists():
            return []
        from chatapp.service.batch_desk import running_line

        return [running_line(job) for job in self._batch_jobs.running_jobs()]

