"""Token counting: exact where the model's encoding is loaded, calibrated estimates everywhere else.

A count is a raw number of tokens in one *basis*: a tiktoken encoding name, or `ESTIMATE` (a fast
character heuristic used until an encoding has loaded). Raw counts of message contents are what the
store caches, keyed by basis, because they never change; everything that does change is applied on top
when a request is built:

- per-message and per-request overhead, which depends on the wire protocol (`Overhead`);
- a calibration ratio per (model, basis): reported input tokens / our raw estimate, learned from the
  usage figures providers return, so Claude and local models, whose tokenizers are not public, converge
  on their real counts.

A count is *exact* when the basis is the model's own encoding (model_facts.py says which); then no ratio is
applied and usage reports do not move it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from chatapp import model_facts
from chatapp.context.encodings import EncodingResolver
from chatapp.domain import ProviderKind

if TYPE_CHECKING:
    from tiktoken import Encoding

ESTIMATE = "estimate-v1"  # bump when estimate_tokens changes, so cached estimates are recounted
PROXY_ENCODING = "cl100k_base"  # closest public encoding for models without one; always offline

# Measured against cl100k on this repository's prose and code (~4 characters per token), European and
# Asian languages and emoji: chars/3.2 plus 0.6 per extra UTF-8 byte lands at 0.9-1.4x the real count.
# Dense ASCII (digits, JSON, base64) is undercounted (0.4-0.6x); no heuristic cheaper than tiktoken
# itself (~8 MB/s here) gets those right, and the estimate only lives until cl100k has loaded (~0.5 s).
_CHARS_PER_TOKEN = 3.2
_TOKENS_PER_EXTRA_BYTE = 0.6


def estimate_tokens(text: str) -> int:
    """A fast guess, high for prose, code and most scripts (see the constants' note)."""
    if not text:
        return 0
    if text.isascii():
        return math.ceil(len(text) / _CHARS_PER_TOKEN)
    extra = len(text.encode("utf-8", "surrogatepass")) - len(text)
    return math.ceil(len(text) / _CHARS_PER_TOKEN + extra * _TOKENS_PER_EXTRA_BYTE)


@dataclass(frozen=True, slots=True)
class TokenCount:
    """Raw tokens of one text in one basis, without overhead or calibration: what the store caches."""

    tokens: int
    basis: str


@dataclass(frozen=True, slots=True)
class Overhead:
    """Tokens a protocol adds around the text: per message (role markers) and per request."""

    per_message: int
    per_request: int


# OpenAI: 3 per message plus its role (1 token) and 3 to prime the reply (OpenAI cookbook,
# gpt-3.5-turbo-0613 and later).
# Anthropic and llama.cpp chat templates: estimates; calibration absorbs the difference.
OVERHEAD: dict[str, Overhead] = {
    ProviderKind.OPENAI: Overhead(per_message=4, per_request=3),
    ProviderKind.ANTHROPIC: Overhead(per_message=4, per_request=6),
    ProviderKind.LLAMACPP: Overhead(per_message=5, per_request=3),
}


@dataclass(frozen=True, slots=True)
class Calibration:
    """reported / estimated input tokens for one (model, basis), and how many reports it rests on."""

    ratio: float
    samples: int = 0


def prior_ratio(model: str) -> float:
    """Starting ratio before any usage report: Claude's tokenizer yields more tokens than cl100k."""
    if "claude" in model:
        return 1.2
    if model_facts.lookup(model).encoding is not None:
        return 1.0  # an OpenAI model counted with cl100k while o200k loads: o200k is the leaner one
    return 1.1


_MIN_RATIO, _MAX_RATIO = 0.5, 3.0
_MIN_SAMPLE_TOKENS = 8
_EMA_FLOOR = 0.2


class Resolver(Protocol):
    """What the counter needs from EncodingResolver (a fake in tests)."""

    def get(self, name: str) -> Encoding | None: ...

    def warm(self, names: Iterable[str], on_ready: Callable[[str], None] | None = None) -> threading.Thread: ...


@dataclass(frozen=True, slots=True)
class Counting:
    """How to count for one model, fixed for the duration of one build. Cheap to create."""

    model: str
    kind: str
    basis: str
    exact: bool
    ratio: float  # 1.0 when exact
    overhead: Overhead
    encoding: Encoding | None

    def count(self, text: str) -> TokenCount:
        return TokenCount(self.raw(text), self.basis)

    def raw(self, text: str) -> int:
        if self.encoding is None:
            return estimate_tokens(text)
        return len(self.encoding.encode_ordinary(text))

    def calibrated(self, raw: int | float) -> int:
        """Raw tokens (overhead included) as the model's own tokens."""
        return math.ceil(raw * self.ratio)

    def raw_budget(self, tokens: float) -> int:
        """The inverse of `calibrated`: how many raw tokens fit in `tokens` model tokens."""
        return math.floor(tokens / self.ratio)


class TokenCounter:
    """Counts tokens for any model, usable at once: estimates until `warm()` has loaded encodings.

    Thread-safe for the way chatapp uses it: counting reads immutable state; `observe()` replaces a
    Calibration under a lock. Persist `calibration()` and pass it back to the constructor.
    """

    def __init__(
        self,
        resolver: Resolver | None = None,
        *,
        calibration: Mapping[tuple[str, str], Calibration] | None = None,
    ) -> None:
        self.resolver: Resolver = resolver if resolver is not None else EncodingResolver()
        self._calibration: dict[tuple[str, str], Calibration] = dict(calibration or {})
        self._lock = threading.Lock()

    # -- encodings ---------------------------------------------------------------------------

    def encodings_for(self, model_names: Iterable[str]) -> list[str]:
        """The encodings worth loading for these models: the proxy first (offline, fast), then natives."""
        wanted = [PROXY_ENCODING]
        for model in model_names:
            native = model_facts.lookup(model).encoding
            if native and native not in wanted:
                wanted.append(native)
        return wanted

    def warm(self, model_names: Iterable[str] = (), on_ready: Callable[[str], None] | None = None) -> threading.Thread:
        """Load the encodings these models need in a daemon thread; counts turn exact as they land.

        `on_ready(encoding_name)` runs in that thread (from Textual, use `app.call_from_thread`).
        """
        return self.resolver.warm(self.encodings_for(model_names), on_ready)

    def basis_for(self, model: str) -> str:
        """The best basis available now: the model's own encoding, else the proxy, else the estimate."""
        native = model_facts.lookup(model).encoding
        if native is not None and self.resolver.get(native) is not None:
            return native
        if self.resolver.get(PROXY_ENCODING) is not None:
            return PROXY_ENCODING
        return ESTIMATE

    @staticmethod
    def is_exact(model: str, basis: str) -> bool:
        return basis == model_facts.lookup(model).encoding

    # -- counting ----------------------------------------------------------------------------

    def counting(self, model: str, kind: str = ProviderKind.OPENAI) -> Counting:
        """Freeze how `model` is counted right now (basis, ratio, overhead) for one build."""
        basis = self.basis_for(model)
        exact = self.is_exact(model, basis)
        encoding = None if basis == ESTIMATE else self.resolver.get(basis)
        return Counting(
            model=model,
            kind=kind,
            basis=basis,
            exact=exact,
            ratio=1.0 if exact else self.ratio(model, basis),
            overhead=OVERHEAD.get(kind, OVERHEAD[ProviderKind.OPENAI]),
            encoding=encoding,
        )

    def count(self, text: str, model: str) -> TokenCount:
        """Raw tokens of `text` for `model` in the current basis (cache this per message)."""
        return self.counting(model).count(text)

    def tokens(self, text: str, model: str, kind: str = ProviderKind.OPENAI) -> int:
        """`text` as one message, in the model's tokens: raw + per-message overhead, calibrated."""
        counting = self.counting(model, kind)
        return counting.calibrated(counting.raw(text) + counting.overhead.per_message)

    # -- calibration -------------------------------------------------------------------------

    def ratio(self, model: str, basis: str) -> float:
        if self.is_exact(model, basis):
            return 1.0
        found = self._calibration.get((model, basis))
        return found.ratio if found is not None else prior_ratio(model)

    def observe(self, model: str, basis: str, estimated_raw: int, reported_input: int) -> Calibration:
        """Move the (model, basis) ratio toward a provider's reported input tokens for one request.

        `estimated_raw` is the request's raw total in `basis` (BuiltContext.raw_input_tokens).
        A running mean over the first reports, then an exponential average, so the ratio settles fast
        and still follows a model whose tokenizer changed. Exact bases and tiny requests are ignored.
        """
        with self._lock:
            current = self._calibration.get((model, basis), Calibration(prior_ratio(model), 0))
            if self.is_exact(model, basis) or estimated_raw < _MIN_SAMPLE_TOKENS or reported_input <= 0:
                return current
            observed = min(_MAX_RATIO, max(_MIN_RATIO, reported_input / estimated_raw))
            alpha = max(_EMA_FLOOR, 1.0 / (current.samples + 1))
            updated = Calibration(current.ratio + alpha * (observed - current.ratio), current.samples + 1)
            self._calibration[(model, basis)] = updated
            return updated

    def calibration(self) -> dict[tuple[str, str], Calibration]:
        """A snapshot to persist: {(model, basis): Calibration}."""
        with self._lock:
            return dict(self._calibration)
