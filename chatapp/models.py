"""The one table of model facts: context window, max output tokens and price per 1M tokens.

Looked up by longest matching prefix, so dated snapshots (`gpt-4o-2024-08-06`) find their family.
A provider's config (`context_window`, `price_input`, ...) overrides what is here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ModelInfo:
    context_window: int
    max_output_tokens: int
    price_input: float | None = None  # USD per 1M input tokens
    price_output: float | None = None
    known: bool = True


UNKNOWN_MODEL = ModelInfo(context_window=8192, max_output_tokens=2048, known=False)

_TABLE: dict[str, ModelInfo] = {
    # OpenAI
    "gpt-4o-mini": ModelInfo(128_000, 16_384, 0.15, 0.60),
    "gpt-4o": ModelInfo(128_000, 16_384, 2.50, 10.00),
    "gpt-4.1-nano": ModelInfo(1_047_576, 32_768, 0.10, 0.40),
    "gpt-4.1-mini": ModelInfo(1_047_576, 32_768, 0.40, 1.60),
    "gpt-4.1": ModelInfo(1_047_576, 32_768, 2.00, 8.00),
    "gpt-5-nano": ModelInfo(400_000, 128_000, 0.05, 0.40),
    "gpt-5-mini": ModelInfo(400_000, 128_000, 0.25, 2.00),
    "gpt-5": ModelInfo(400_000, 128_000, 1.25, 10.00),
    "o3-mini": ModelInfo(200_000, 100_000, 1.10, 4.40),
    "o4-mini": ModelInfo(200_000, 100_000, 1.10, 4.40),
    "o3": ModelInfo(200_000, 100_000, 2.00, 8.00),
    "gpt-4-turbo": ModelInfo(128_000, 4_096, 10.00, 30.00),
    "gpt-3.5-turbo": ModelInfo(16_385, 4_096, 0.50, 1.50),
    # Anthropic
    "claude-opus-4": ModelInfo(200_000, 32_000, 15.00, 75.00),
    "claude-sonnet-4": ModelInfo(200_000, 64_000, 3.00, 15.00),
    "claude-haiku-4": ModelInfo(200_000, 64_000, 1.00, 5.00),
    "claude-3-7-sonnet": ModelInfo(200_000, 64_000, 3.00, 15.00),
    "claude-3-5-sonnet": ModelInfo(200_000, 8_192, 3.00, 15.00),
    "claude-3-5-haiku": ModelInfo(200_000, 8_192, 0.80, 4.00),
    "claude-3-haiku": ModelInfo(200_000, 4_096, 0.25, 1.25),
    # The packaged local model (free).
    "gemma-3-270m": ModelInfo(8_192, 1_024, 0.0, 0.0),
}


def lookup(model: str) -> ModelInfo:
    """Facts for `model`, by longest known prefix; UNKNOWN_MODEL (conservative) when none matches."""
    best = ""
    for prefix in _TABLE:
        if model.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return _TABLE[best] if best else UNKNOWN_MODEL


def cost(model: str, input_tokens: int, output_tokens: int) -> float | None:
    """USD for one request, or None when the model has no known price."""
    info = lookup(model)
    if info.price_input is None or info.price_output is None:
        return None
    return (input_tokens * info.price_input + output_tokens * info.price_output) / 1_000_000
