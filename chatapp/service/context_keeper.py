"""Keeps each conversation within its model's window: builds requests from stored history with cached
token counts, calibrates counts from reported usage, and compresses old turns in the background.

The glue between the pure context layer, the store and the request engine; the service owns one.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chatapp.config import ProviderSpec, Settings
from chatapp.context import (
    BuiltContext,
    Calibration,
    Summary,
    TokenCount,
    TokenCounter,
    WindowBuilder,
    chunk_tokens_for,
    plan_budget,
    plan_compression,
    run_plan,
    use_cache_dir,
)
from chatapp.context.compression import DEFAULT_TARGET
from chatapp.domain import ChatMessage, ChatRequest, Message, MessageStatus, Role, Usage
from chatapp.engine import Job, Priority, RequestEngine
from chatapp.store.context_records import ContextRecords, SummaryRow
from chatapp.store.conversations import Store
from chatapp.store.db import is_busy

_SENT_REPLY_STATUSES = (MessageStatus.COMPLETE, MessageStatus.CANCELLED, MessageStatus.TRUNCATED,
                        MessageStatus.FILTERED)
_SUMMARY_MAX_TOKENS = 800
# "compress now": summarize everything but the newest turns, whatever the window usage.
_FORCED_COMPRESS_AT, _FORCED_TARGET = 1e-9, 1e-10  # "compress now": everything but the newest turns


@dataclass(frozen=True, slots=True)
class Gauge:
    """How full the window is for the next turn."""

    used: int
    window: int
    exact: bool
    summarized: int  # summaries in use

    def __str__(self) -> str:
        mark = "" if self.exact else "~"
        return f"ctx {mark}{self.used:,}/{self.window:,}"


def sendable_history(messages: Sequence[Message]) -> list[Message]:
    """What a model may see: user turns (not rejected ones) and finished or stopped replies.

    Incomplete replies are excluded: they were superseded by a restart, so sending them would
    duplicate what the model is asked again.
    """
    return [
        m for m in messages
        if m.content and (
            (m.role is Role.USER and m.status is not MessageStatus.ERROR)
            or (m.role is Role.ASSISTANT and m.status in _SENT_REPLY_STATUSES)
        )
    ]


class ContextKeeper:
    def __init__(self, settings: Settings, store: Store, engine: RequestEngine) -> None:
        self._settings = settings
        self._store = store
        self._engine = engine
        self.records = ContextRecords(store.connection)
        use_cache_dir(settings.paths.cache_dir / "tiktoken")  # os.environ: the only place tiktoken looks
        saved = self.records.calibration()
        self.counter = TokenCounter(calibration={k: Calibration(r, n) for k, (r, n) in saved.items()})
        self.builder = WindowBuilder(self.counter)
        self._compressions: dict[str, asyncio.Task[SummaryRow | None]] = {}

    def warm(self) -> None:
        """Load the encodings in a daemon thread; counts are estimates until then, never a wait."""
        self.counter.warm([spec.model for spec in self._settings.providers.values()])

    # --- building ----------------------------------------------------------------------------

    def build(self, conversation_id: str, spec: ProviderSpec, system: str | None) -> BuiltContext:
        """The request for the conversation as stored. Raises MessageTooLarge for an oversized last turn."""
        built = self._compute(spec, system, *self._inputs(conversation_id))
        self._save_counts(built.new_counts)
        return built

    async def build_async(self, conversation_id: str, spec: ProviderSpec, system: str | None) -> BuiltContext:
        """`build` with the counting in a worker thread. SQLite is read and written on the event loop only,
        so closing the store can never race a thread that is still using it."""
        inputs = self._inputs(conversation_id)
        built = await asyncio.to_thread(self._compute, spec, system, *inputs)
        self._save_counts(built.new_counts)
        return built

    def _inputs(self, conversation_id: str) -> tuple[list[Message], list[Summary], dict[str, TokenCount]]:
        history = sendable_history(self._store.messages(conversation_id))
        return history, self._summaries(conversation_id), self._counts(conversation_id)

    def _compute(self, spec: ProviderSpec, system: str | None, history: list[Message], summaries: list[Summary],
                 counts: dict[str, TokenCount]) -> BuiltContext:
        return self.builder.build(spec, history, system=system, summaries=summaries, counts=counts)

    async def gauge(self, conversation_id: str | None, spec: ProviderSpec, system: str | None) -> Gauge:
        budget = plan_budget(spec, self.counter.counting(spec.model, spec.kind).exact)
        if conversation_id is None:
            return Gauge(0, budget.window, self.counter.is_exact(spec.model, self.counter.basis_for(spec.model)), 0)
        try:
            built = await self.build_async(conversation_id, spec, system)
        except (ValueError, LookupError, ArithmeticError):
            return Gauge(0, budget.window, False, 0)
        except Exception:  # MessageTooLarge and friends: the gauge is informative, never fatal
            return Gauge(budget.input, budget.window, False, 0)
        return Gauge(built.input_tokens, built.window, built.exact, len(built.summaries))

    def observe(self, built: BuiltContext, usage: Usage) -> None:
        """Move the estimate toward what the provider reported, and remember it across runs."""
        if usage.input_tokens <= 0:
            return
        self.counter.observe(built.request.model, built.basis, built.raw_input_tokens, usage.input_tokens)
        try:
            with self._store.without_waiting():  # mid-reply: never stall the stream on another process's lock
                self.records.save_calibration(
                    {key: (cal.ratio, cal.samples) for key, cal in self.counter.calibration().items()}
                )
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise  # busy: kept in memory, saved with the next observation

    def truncate(self, text: str, spec: ProviderSpec, limit: int) -> str:
        return self.builder.truncate(text, spec, limit)

    def _summaries(self, conversation_id: str) -> list[Summary]:
        return [Summary(r.first_message_id, r.last_message_id, r.content, r.input_hash)
                for r in self.records.summaries(conversation_id)]

    def _counts(self, conversation_id: str) -> dict[str, TokenCount]:
        return {mid: TokenCount(tokens, basis) for mid, (tokens, basis) in
                self.records.token_counts(conversation_id).items()}

    def _save_counts(self, counts: dict[str, TokenCount] | object) -> None:
        items = getattr(counts, "items", None)
        if items is not None:
            self.records.save_token_counts((mid, c.tokens, c.basis) for mid, c in items())

    # --- compression -------------------------------------------------------------------------

    def schedule_compression(self, conversation_id: str, spec: ProviderSpec, system: str | None) -> None:
        """Summarize old turns in a background job when the conversation passes `compress_at`."""
        running = self._compressions.get(conversation_id)
        if running is not None and not running.done():
            return
        task = asyncio.create_task(self.compress(conversation_id, spec, system), name=f"compress:{conversation_id}")
        self._compressions[conversation_id] = task
        task.add_done_callback(self._forget(conversation_id))

    def _forget(self, conversation_id: str) -> Callable[[asyncio.Task[SummaryRow | None]], None]:
        def done(task: asyncio.Task[SummaryRow | None]) -> None:
            if self._compressions.get(conversation_id) is task:
                del self._compressions[conversation_id]
            if not task.cancelled():
                task.exception()  # retrieved: a failed summary is retried after the next turn

        return done

    async def compress(self, conversation_id: str, spec: ProviderSpec, system: str | None, *,
                       force: bool = False) -> SummaryRow | None:
        """Summarize the oldest turns not yet covered; None when nothing needs it."""
        history = sendable_history(self._store.messages(conversation_id))
        compress_at = _FORCED_COMPRESS_AT if force else self._settings.compress_at
        target = _FORCED_TARGET if force else DEFAULT_TARGET
        plan = plan_compression(spec, history, self.counter, system=system,
                                summaries=self._summaries(conversation_id),
                                counts=self._counts(conversation_id), compress_at=compress_at, target=target)
        if plan is None:
            return None
        self._save_counts(plan.new_counts)
        summary_spec = self._settings.provider(self._settings.summary_provider or spec.name)
        counting = self.counter.counting(summary_spec.model, summary_spec.kind)
        chain = self._settings.chain(summary_spec.name)
        answered: list[tuple[str, str]] = []

        async def summarize(prompt: str) -> str:
            job = Job(
                priority=Priority.BACKGROUND,
                chain=chain,
                build_request=lambda s: ChatRequest(
                    model=s.model, messages=(ChatMessage(Role.USER, prompt),), max_tokens=_SUMMARY_MAX_TOKENS
                ),
                label="summary",
            )
            done = await self._engine.complete(job)
            answered.append((done.provider, done.model))
            return done.text

        run = await run_plan(plan, summarize, counting, cache=self.records,
                             chunk_tokens=chunk_tokens_for(plan_budget(summary_spec, counting.exact)))
        provider, model = answered[-1] if answered else (None, None)
        return self.records.add_summary(conversation_id, run.summary.first_id, run.summary.last_id,
                                        run.summary.text, run.summary.input_hash, provider, model)

    async def drain(self) -> None:
        """Wait for pending compressions (the CLI does, so the next `ask -c` finds the summary)."""
        while self._compressions:
            with contextlib.suppress(Exception):
                await asyncio.gather(*self._compressions.values(), return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._compressions.values()):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._compressions.values(), return_exceptions=True)
