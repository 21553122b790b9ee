"""`chatapp batch`: many prompts through the engine (or the provider's Batch API), resumable.

    chatapp batch INPUT [-o OUTPUT] [--yes] ...     start a job (estimate, confirm, run)
    chatapp batch --resume JOB                      continue a stopped or killed job
    chatapp batch status [JOB]                      one job's state, or the recent jobs
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from chatapp.cli.common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, UsageError, error
from chatapp.config import NO_PROVIDER_ADVICE, Settings
from chatapp.textsafe import visible

if TYPE_CHECKING:
    from chatapp.service import ChatService
    from chatapp.service.batch import BatchOutcome, BatchRun
    from chatapp.service.batch_desk import BatchPlan, JobRecord
    from chatapp.service.batch_remote import RemoteBatchRun


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    batch = commands.add_parser(
        "batch", help="run many prompts from a file (JSONL, CSV or lines); `batch status [JOB]` to check one",
        description="Run every prompt in INPUT and write the replies to OUTPUT (JSONL). `chatapp batch status "
                    "[JOB]` shows a job; `--resume JOB` continues one that was stopped or killed.")
    batch.add_argument("target", nargs="*", metavar="INPUT", help="the input file (or: status [JOB])")
    batch.add_argument("-o", "--output", type=Path, help="output JSONL (default: INPUT.out.jsonl)")
    batch.add_argument("--resume", metavar="JOB", help="continue a stopped or killed job")
    batch.add_argument("--provider", dest="batch_provider", metavar="NAME", help="provider name from the config")
    batch.add_argument("--model", dest="batch_model", metavar="MODEL", help="model name")
    batch.add_argument("-t", "--template", metavar="NAME[@VERSION]", help="a prompt template applied to every item")
    batch.add_argument("--var", action="append", default=[], metavar="KEY=VALUE", help="a template variable")
    batch.add_argument("--format", dest="fmt", choices=("jsonl", "csv", "lines"), help="input format (default: by "
                       "extension)")
    batch.add_argument("--column", default="prompt", help="the CSV column holding the prompt (default: prompt)")
    batch.add_argument("--concurrency", type=_positive_int, help="requests in flight at once")
    batch.add_argument("--rpm", type=_positive_float, help="requests per minute")
    batch.add_argument("--tpm", type=_positive_float, help="tokens per minute")
    batch.add_argument("--max-tokens", type=_positive_int, help="reply length cap per item")
    batch.add_argument("--max-cost", type=_positive_float, metavar="USD", help="refuse or stop before spending more")
    batch.add_argument("--ordered", action="store_true", help="write OUTPUT in input order (default: as completed)")
    batch.add_argument("--mode", choices=("live", "provider"), default="live",
                       help="live requests, or the provider's Batch API (half price, results within 24 h)")
    batch.add_argument("-y", "--yes", action="store_true", help="start without asking for confirmation")
    batch.add_argument("--progress-every", type=_positive_int, default=100, metavar="N",
                       help="when not on a terminal, one progress line per N items (default: 100)")
    batch.add_argument("--drain-timeout", type=_positive_float, default=30.0, metavar="S",
                       help="after Ctrl+C, how long in-flight requests may take to finish (default: 30)")
    batch.add_argument("--chunk-size", type=_positive_int, default=10_000, help=argparse.SUPPRESS)
    batch.add_argument("--poll-interval", type=_positive_float, default=None, help=argparse.SUPPRESS)
    batch.set_defaults(run=run, is_async=True)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


async def run(settings: Settings, args: argparse.Namespace) -> int:
    from chatapp.service import ChatService

    if args.target[:1] == ["status"] and not Path("status").exists():
        if len(args.target) > 2:
            raise UsageError("batch status: give at most one JOB")
        service = ChatService.open(settings)
        try:
            return _status(service, args.target[1] if len(args.target) == 2 else None)
        finally:
            service.close()
    if args.resume and args.target:
        raise UsageError("batch: give INPUT or --resume JOB, not both")
    if not args.resume and len(args.target) != 1:
        raise UsageError("batch: give one INPUT file (or --resume JOB, or status [JOB])")
    service = ChatService.open(settings)
    try:
        batch_run = _resume(service, args.resume) if args.resume else _start(service, settings, args)
        if batch_run is None:
            return EXIT_OK
        if args.poll_interval and hasattr(batch_run, "poll_initial"):
            batch_run.poll_initial = args.poll_interval
        return await _run(batch_run, args)
    finally:
        await service.aclose()


def _plan(settings: Settings, args: argparse.Namespace) -> BatchPlan:
    from chatapp.service.batch_desk import BatchPlan, InputError, parse_variables

    input_path = Path(args.target[0])
    if not input_path.is_file():
        raise UsageError(f"batch: no such file: {input_path}")
    provider = args.batch_provider or args.provider
    if provider is None and settings.default_provider is None:
        raise UsageError(NO_PROVIDER_ADVICE)
    try:
        variables = parse_variables(args.var)
    except InputError as exc:
        raise UsageError(f"batch: {exc}") from None
    return BatchPlan(input_path=input_path, output_path=args.output, provider=provider,
                     model=args.batch_model or args.model, fmt=args.fmt, column=args.column, template=args.template,
                     variables=dict(variables), concurrency=args.concurrency, rpm=args.rpm, tpm=args.tpm,
                     max_tokens=args.max_tokens, max_cost=args.max_cost, ordered=args.ordered, mode=args.mode,
                     drain_timeout=args.drain_timeout, chunk_size=args.chunk_size)


def _start(service: ChatService, settings: Settings, args: argparse.Namespace) -> BatchRun | RemoteBatchRun | None:
    from chatapp.service.batch_desk import InputError

    plan = _plan(settings, args)
    state = service.provider_availability(plan.provider or settings.default_provider or "")
    if not state.available:
        raise UsageError(f"provider {state.name!r} is unavailable: {state.reason}")
    try:
        estimate = service.estimate_batch(plan)
    except InputError as exc:
        raise UsageError(f"batch: {exc}") from None
    print(visible(estimate.describe()), file=sys.stderr)
    if estimate.items == 0:
        raise UsageError(f"batch: {plan.input_path} holds no items")
    if plan.max_cost is not None and estimate.cost is not None and estimate.cost > plan.max_cost:
        raise UsageError(f"batch: the estimate (${estimate.cost:,.4f}) is over --max-cost ${plan.max_cost:g}; "
                         "nothing was sent")
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError("batch: pass --yes to start without confirmation")
        if input("start? [y/N] ").strip().lower() not in ("y", "yes"):
            print("chatapp: not started", file=sys.stderr)
            return None
    batch_run = service.start_batch(plan, estimate.items)
    job = batch_run.job
    print(f"chatapp: batch {job.id} started: output {visible(str(job.output_path))}", file=sys.stderr)
    return batch_run


def _resume(service: ChatService, job_id: str) -> BatchRun | RemoteBatchRun:
    try:
        batch_run = service.resume_batch(job_id)
    except KeyError:
        raise UsageError(f"batch: no job matches {job_id!r} (see `chatapp batch status`)") from None
    except RuntimeError as exc:
        raise UsageError(f"batch: {exc}") from None
    job = batch_run.job
    print(f"chatapp: resuming batch {job.id}: {job.done + job.failed:,} of {job.total:,} items already finished",
          file=sys.stderr)
    return batch_run


async def _run(batch_run: BatchRun | RemoteBatchRun, args: argparse.Namespace) -> int:
    from chatapp.cli.batch_progress import ProgressReporter

    loop = asyncio.get_running_loop()
    interrupts = 0

    def on_interrupt() -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            print(f"\nchatapp: stopping: in-flight requests may finish (up to {args.drain_timeout:g} s); "
                  "Ctrl+C again cancels them", file=sys.stderr)
            batch_run.stop("interrupted")
        else:
            batch_run.cancel()

    loop.add_signal_handler(signal.SIGINT, on_interrupt)
    loop.add_signal_handler(signal.SIGTERM, on_interrupt)
    reporter = ProgressReporter(batch_run, every=args.progress_every, tty=sys.stderr.isatty())
    try:
        async with reporter:
            outcome = await batch_run.run()
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        loop.remove_signal_handler(signal.SIGTERM)
    return _summary(outcome, batch_run.job, interrupted=interrupts > 0)


def _summary(outcome: BatchOutcome, job: JobRecord, *, interrupted: bool) -> int:
    progress = outcome.progress
    print(f"chatapp: batch {job.id}: {progress.done:,} done, {progress.failed:,} failed of {progress.total:,}; "
          f"cost ${progress.cost:,.4f}; output {visible(str(job.output_path))}", file=sys.stderr)
    if progress.failed:
        print(f"chatapp: dead letters in {visible(str(job.dead_letter_path))}", file=sys.stderr)
    if outcome.complete:
        return EXIT_FAILED if progress.failed else EXIT_OK
    if outcome.stopped_because and outcome.stopped_because != "interrupted":
        error(f"batch stopped: {outcome.stopped_because}")
    print(f"chatapp: resume with: chatapp batch --resume {job.id}", file=sys.stderr)
    return EXIT_INTERRUPTED if interrupted else EXIT_FAILED


def _status(service: ChatService, job_id: str | None) -> int:
    if job_id is None:
        jobs = service.batch_jobs()
        if not jobs:
            print("no batch jobs")
        for job in jobs:
            finished = job.done + job.failed
            print(f"{job.id}  {_state(job):<8} {finished:>8,}/{job.total:<8,} {visible(str(job.input_path))}")
        return EXIT_OK
    found = service.batch_job(job_id)
    if found is None:
        raise UsageError(f"batch: no job matches {job_id!r} (see `chatapp batch status`)")
    job = found
    pending = job.total - job.done - job.failed
    print(f"job {job.id} ({job.mode}): {_state(job)}")
    print(f"  items: {job.total:,} total, {job.done:,} done, {job.failed:,} failed, {pending:,} pending")
    print(f"  cost so far: ${job.cost:,.4f}")
    print(f"  input: {visible(str(job.input_path))}")
    print(f"  output: {visible(str(job.output_path))}")
    print(f"  dead letters: {visible(str(job.dead_letter_path))}")
    if not job.alive and pending:
        print(f"  resume with: chatapp batch --resume {job.id}")
    return EXIT_OK


def _state(job: JobRecord) -> str:
    if job.alive:
        return "running"
    return "done" if job.status.value == "done" else "stopped"
