"""The one table of model facts: context window, max output tokens, price per 1M tokens, tokenizer.

Looked up by longest matching prefix, so dated snapshots (`gpt-4o-2024-08-06`) find their family;
routed names (`openai/gpt-4o`, `anthropic.claude-3-5-haiku-...`) fall back to the part after the router's prefix.
A provider's config (`context_window`, `max_output_tokens`, `price_input`, ...) overrides what is here:
`limits()` applies those overrides and words the hint shown for a model the table does not know.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ModelInfo:
    context_window: int
    max_output_tokens: int
    price_input: float | None = None  # USD per 1M input tokens
    price_output: float | None = None
    known: bool = True
    # tiktoken encoding the model really uses; None when its tokenizer is not public (Anthropic, local
    # models), in which case counts are estimates with the closest encoding, calibrated from usage.
    encoding: str | None = None


UNKNOWN_MODEL = ModelInfo(context_window=8192, max_output_tokens=2048, known=False)
# An unknown model's reply budget when only its window is known: a quarter of it, at most this much.
UNKNOWN_MODEL_MAX_REPLY = 32_768


def reply_budget_for_window(window: int) -> int:
    """The reply budget of a model the table does not know, from its window: a quarter of it, between
    UNKNOWN_MODEL's 2,048 (or the whole of a smaller window) and UNKNOWN_MODEL_MAX_REPLY."""
    return min(window, max(UNKNOWN_MODEL.max_output_tokens, min(window // 4, UNKNOWN_MODEL_MAX_REPLY)))

_O200K = "o200k_base"
_CL100K = "cl100k_base"

_TABLE: dict[str, ModelInfo] = {
    # OpenAI
    "gpt-4o-mini": ModelInfo(128_000, 16_384, 0.15, 0.60, encoding=_O200K),
    "gpt-4o": ModelInfo(128_000, 16_384, 2.50, 10.00, encoding=_O200K),
    "chatgpt-4o": ModelInfo(128_000, 16_384, 5.00, 15.00, encoding=_O200K),
    "gpt-4.1-nano": ModelInfo(1_047_576, 32_768, 0.10, 0.40, encoding=_O200K),
    "gpt-4.1-mini": ModelInfo(1_047_576, 32_768, 0.40, 1.60, encoding=_O200K),
    "gpt-4.1": ModelInfo(1_047_576, 32_768, 2.00, 8.00, encoding=_O200K),
    "gpt-5-nano": ModelInfo(400_000, 128_000, 0.05, 0.40, encoding=_O200K),
    "gpt-5-mini": ModelInfo(400_000, 128_000, 0.25, 2.00, encoding=_O200K),
    "gpt-5-chat": ModelInfo(128_000, 16_384, 1.25, 10.00, encoding=_O200K),
    "gpt-5": ModelInfo(400_000, 128_000, 1.25, 10.00, encoding=_O200K),
    "o1-mini": ModelInfo(128_000, 65_536, 1.10, 4.40, encoding=_O200K),
    "o1": ModelInfo(200_000, 100_000, 15.00, 60.00, encoding=_O200K),
    "o3-mini": ModelInfo(200_000, 100_000, 1.10, 4.40, encoding=_O200K),
    "o4-mini": ModelInfo(200_000, 100_000, 1.10, 4.40, encoding=_O200K),
    "o3": ModelInfo(200_000, 100_000, 2.00, 8.00, encoding=_O200K),
    "gpt-4-turbo": ModelInfo(128_000, 4_096, 10.00, 30.00, encoding=_CL100K),
    "gpt-4-32k": ModelInfo(32_768, 4_096, 60.00, 120.00, encoding=_CL100K),
    "gpt-4": ModelInfo(8_192, 4_096, 30.00, 60.00, encoding=_CL100K),
    "gpt-3.5-turbo": ModelInfo(16_385, 4_096, 0.50, 1.50, encoding=_CL100K),
    # Anthropic (tokenizer not public: estimated, then calibrated from reported usage)
    "claude-opus-4-5": ModelInfo(200_000, 64_000, 5.00, 25.00),
    "claude-opus-4": ModelInfo(200_000, 32_000, 15.00, 75.00),
    "claude-sonnet-4": ModelInfo(200_000, 64_000, 3.00, 15.00),
    "claude-haiku-4": ModelInfo(200_000, 64_000, 1.00, 5.00),
    "claude-3-7-sonnet": ModelInfo(200_000, 64_000, 3.00, 15.00),
    "claude-3-5-sonnet": ModelInfo(200_000, 8_192, 3.00, 15.00),
    "claude-3-5-haiku": ModelInfo(200_000, 8_192, 0.80, 4.00),
    "claude-3-opus": ModelInfo(200_000, 4_096, 15.00, 75.00),
    "claude-3-haiku": ModelInfo(200_000, 4_096, 0.25, 1.25),
    # The packaged local model (free).
    # A small base model that continues text to the limit: short replies keep the demo snappy.
    "gemma-3-270m": ModelInfo(8_192, 256, 0.0, 0.0),
}


# Bedrock ids: optional region, then vendor, then the model (`us.anthropic.claude-...`).
_ROUTER_PREFIX = re.compile(r"^(?:[a-z]{2}\.)?(?:anthropic|openai|meta|mistral|google)\.")


def _best_prefix(model: str) -> str:
    best = ""
    for prefix in _TABLE:
        if model.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return best


def lookup(model: str) -> ModelInfo:
    """Facts for `model`, by longest known prefix; UNKNOWN_MODEL (conservative) when none matches.

    Router-style names are tried without their prefix: `openai/gpt-4o` (OpenRouter) and
    `anthropic.claude-3-5-haiku-20241022-v1:0` (Bedrock) find `gpt-4o` and `claude-3-5-haiku`.
    """
    best = _best_prefix(model)
    if not best:
        bare = _ROUTER_PREFIX.sub("", model.rpartition("/")[2])
        best = _best_prefix(bare) if bare != model else ""
    return _TABLE[best] if best else UNKNOWN_MODEL


def cost(model: str, input_tokens: int, output_tokens: int) -> float | None:
    """USD for one request, or None when the model has no known price."""
    info = lookup(model)
    if info.price_input is None or info.price_output is None:
        return None
    return (input_tokens * info.price_input + output_tokens * info.price_output) / 1_000_000


@dataclass(frozen=True, slots=True)
class ModelLimits:
    """The window facts one request is built against, after config overrides."""

    model: str
    context_window: int
    max_output_tokens: int
    encoding: str | None
    known: bool  # the table knows the model, or the config gave its window
    hint: str | None = None  # shown to the user when the window is a guess


def limits(
    model: str,
    *,
    context_window: int | None = None,
    max_output_tokens: int | None = None,
    provider: str | None = None,
) -> ModelLimits:
    """Window and output limit for `model`; a provider's `context_window` / `max_output_tokens` win.

    An unknown model with no configured window gets UNKNOWN_MODEL's conservative 8,192 tokens (small
    enough for almost any server, Ollama's default aside) and a hint naming the setting that fixes it.
    """
    info = lookup(model)
    window = context_window or info.context_window
    if max_output_tokens:
        max_output = max_output_tokens
    elif info.known:
        max_output = info.max_output_tokens
    else:  # the window was configured or learned from the server: the reply budget follows it
        max_output = reply_budget_for_window(window)
    # A configured window smaller than the table's output limit caps the output too.
    max_output = min(max_output, window)
    known = info.known or context_window is not None
    hint = None
    if not known:
        where = f"[providers.{provider}]" if provider else "the provider's block"
        hint = (
            f"unknown model {model!r}: assuming a context window of {window:,} tokens; "
            f"set context_window (and max_output_tokens) in {where} of the config file"
        )
    return ModelLimits(
        model=model,
        context_window=window,
        max_output_tokens=max_output,
        encoding=info.encoding,
        known=known,
        hint=hint,
    )
