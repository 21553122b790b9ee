"""Batch jobs as the service offers them: plan, estimate, start, resume, look up.

A job's plan is stored with it, so `--resume JOB` needs nothing but the id. Job state lives in the
sidecar `batches.db` in the data dir (chatapp.store.batch_jobs), never in the conversation store.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatapp.config import ProviderSpec, Settings
from chatapp.domain import ProviderKind
from chatapp.service.batch_estimate import BatchEstimate, estimate
from chatapp.service.batch_input import BatchItem, InputError, PromptShaper, detect_format, read_items
from chatapp.service.batch_output import default_paths
from chatapp.store.batch_jobs import BatchJobs, JobRecord

__all__ = ["BatchPlan", "InputError", "JobRecord", "parse_variables"]

if TYPE_CHECKING:
    from chatapp.engine import RequestEngine
    from chatapp.providers.batch_api import BatchAPI
    from chatapp.service.batch import BatchRun
    from chatapp.service.batch_remote import RemoteBatchRun
    from chatapp.templates import TemplateLibrary

MODES = ("live", "provider")


@dataclass(frozen=True)
class BatchPlan:
    """Everything a job needs, as given on the command line; stored as the job's options."""

    input_path: Path
    output_path: Path | None = None
    provider: str | None = None
    model: str | None = None
    fmt: str | None = None
    column: str = "prompt"
    template: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    concurrency: int | None = None
    rpm: float | None = None
    tpm: float | None = None
    max_tokens: int | None = None
    max_cost: float | None = None
    ordered: bool = False
    mode: str = "live"
    drain_timeout: float = 30.0
    chunk_size: int = 10_000  # items per provider batch

    def to_options(self) -> dict[str, Any]:
        options = asdict(self)
        options["input_path"] = str(self.input_path.resolve())
        options["output_path"] = str(self.output_path) if self.output_path else None
        return options

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> BatchPlan:
        known = {k: v for k, v in options.items() if k in cls.__dataclass_fields__}
        known["input_path"] = Path(known["input_path"])
        known["output_path"] = Path(known["output_path"]) if known.get("output_path") else None
        return cls(**known)


def batch_spec(settings: Settings, plan: BatchPlan) -> ProviderSpec:
    """The provider as this job uses it: its model, concurrency and limits from the plan win."""
    spec = settings.provider(plan.provider)
    spec = spec.with_model(plan.model or spec.model)
    return replace(spec, max_concurrency=plan.concurrency or spec.max_concurrency,
                   rpm=plan.rpm if plan.rpm is not None else spec.rpm,
                   tpm=plan.tpm if plan.tpm is not None else spec.tpm)


def with_batch_spec(settings: Settings, plan: BatchPlan) -> Settings:
    spec = batch_spec(settings, plan)
    return replace(settings, providers={**settings.providers, spec.name: spec})


def make_shaper(templates: TemplateLibrary, plan: BatchPlan, job_id: str) -> PromptShaper | None:
    """Per-item template rendering: the job's --var values plus the item's own fields the template declares.

    One version for the whole job (a split is drawn once, by job id), so results are comparable.
    """
    if not plan.template:
        return None
    from chatapp.domain import Role

    template, _ = templates.resolve_for(plan.template, job_id)

    def shape(prompt: str, fields: dict[str, str]) -> tuple[str | None, str]:
        values = {**{k: v for k, v in fields.items() if template.variable(k) is not None}, **plan.variables}
        rendered = templates.render(template, values)
        if rendered.role is Role.SYSTEM:
            return rendered.text, prompt
        return None, f"{rendered.text}\n\n{prompt}" if prompt.strip() else rendered.text

    return shape


def item_source(plan: BatchPlan, shaper: PromptShaper | None) -> Callable[[], Iterator[BatchItem]]:
    fmt = detect_format(plan.input_path, plan.fmt)
    return lambda: read_items(plan.input_path, fmt, column=plan.column, shape=shaper)


def new_job_id() -> str:
    return "b" + secrets.token_hex(5)


def parse_variables(pairs: list[str]) -> dict[str, str]:
    """`--var key=value` arguments; InputError names the bad one."""
    from chatapp.templates import TemplateError, parse_var_args

    try:
        return dict(parse_var_args(pairs))
    except TemplateError as exc:
        raise InputError(f"template: {exc}") from None


def estimate_plan(settings: Settings, plan: BatchPlan, templates: TemplateLibrary) -> BatchEstimate:
    """Count and price the plan's items (reads the whole input once, one item at a time)."""
    from chatapp.templates import TemplateError

    if plan.mode not in MODES:
        raise InputError(f"unknown mode {plan.mode!r} (use {' or '.join(MODES)})")
    spec = batch_spec(settings, plan)
    try:
        shaper = make_shaper(templates, plan, "estimate")
    except TemplateError as exc:
        raise InputError(f"template: {exc}") from None
    items = item_source(plan, shaper)
    return estimate(items(), spec, max_tokens=plan.max_tokens, concurrency=spec.max_concurrency,
                    provider_mode=plan.mode == "provider")


def create_job(jobs: BatchJobs, plan: BatchPlan, total: int) -> JobRecord:
    output, dead = default_paths(plan.input_path, plan.output_path)
    plan = replace(plan, output_path=output)
    return jobs.create_job(new_job_id(), mode=plan.mode, input_path=plan.input_path.resolve(),
                           output_path=output.resolve(), dead_letter_path=dead.resolve(), options=plan.to_options(),
                           total=total)


def open_run(job: JobRecord, *, settings: Settings, jobs: BatchJobs, templates: TemplateLibrary,
             engine: Callable[[], RequestEngine], redact: Callable[[str], str]) -> BatchRun | RemoteBatchRun:
    """The run for a job: live through the engine, or on the provider's Batch API."""
    plan = BatchPlan.from_options(job.options)
    spec = batch_spec(settings, plan)
    items = item_source(plan, make_shaper(templates, plan, job.id))
    if job.mode == "provider":
        from chatapp.service.batch_remote import RemoteBatchRun

        return RemoteBatchRun(api=batch_api(spec, settings), jobs=jobs, job=job, spec=spec, items=items,
                              max_tokens=plan.max_tokens, chunk_size=plan.chunk_size, ordered=plan.ordered,
                              redact=redact)
    from chatapp.service.batch import BatchRun
    from chatapp.store.interactive_marks import InteractiveMarks

    return BatchRun(engine=engine(), jobs=jobs, job=job, spec=spec, items=items,
                    marks=InteractiveMarks(settings.paths.interactive_marks_dir), concurrency=spec.max_concurrency,
                    max_tokens=plan.max_tokens, max_cost=plan.max_cost, ordered=plan.ordered,
                    drain_timeout=plan.drain_timeout, redact=redact)


def batch_api(spec: ProviderSpec, settings: Settings) -> BatchAPI:
    """The provider's Batch API adapter; local models have none."""
    key = spec.resolve_api_key(settings.environ)
    if spec.kind is ProviderKind.OPENAI:
        from chatapp.providers.openai_batch import OpenAIBatch

        return OpenAIBatch(spec, key)
    if spec.kind is ProviderKind.ANTHROPIC:
        from chatapp.providers.anthropic_batch import AnthropicBatch

        return AnthropicBatch(spec, key)
    raise InputError(f"provider {spec.name!r} ({spec.kind}) has no batch API: use --mode live")


def running_line(job: JobRecord) -> str:
    finished = job.done + job.failed
    share = finished / job.total if job.total else 0.0
    return (f"batch {job.id} ({job.mode}): {finished:,}/{job.total:,} ({share:.0%}), {job.failed:,} failed, "
            f"${job.cost:,.4f} · chatapp batch status {job.id}")
