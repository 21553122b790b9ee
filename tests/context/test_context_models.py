"""The model table: prefixes, routed names, config overrides, the unknown-model default and hint."""

from __future__ import annotations

import pytest

from chatapp.model_facts import UNKNOWN_MODEL, limits, lookup


@pytest.mark.parametrize(
    ("model", "window", "max_output", "encoding"),
    [
        ("gpt-4o-mini", 128_000, 16_384, "o200k_base"),
        ("gpt-4o-mini-2024-07-18", 128_000, 16_384, "o200k_base"),
        ("gpt-4o-2024-08-06", 128_000, 16_384, "o200k_base"),
        ("gpt-4.1-nano", 1_047_576, 32_768, "o200k_base"),
        ("gpt-4-turbo-2024-04-09", 128_000, 4_096, "cl100k_base"),
        ("gpt-4-0613", 8_192, 4_096, "cl100k_base"),
        ("gpt-3.5-turbo-0125", 16_385, 4_096, "cl100k_base"),
        ("o3-mini", 200_000, 100_000, "o200k_base"),
        ("claude-sonnet-4-5", 200_000, 64_000, None),
        ("claude-sonnet-4-5-20250929", 200_000, 64_000, None),
        ("claude-opus-4-1", 200_000, 32_000, None),
        ("claude-opus-4-5", 200_000, 64_000, None),
        ("claude-3-5-haiku-latest", 200_000, 8_192, None),
    ],
)
def test_known_models(model: str, window: int, max_output: int, encoding: str | None) -> None:
    info = lookup(model)
    assert info.known
    assert (info.context_window, info.max_output_tokens, info.encoding) == (window, max_output, encoding)


@pytest.mark.parametrize(
    ("routed", "plain"),
    [
        ("openai/gpt-4o", "gpt-4o"),
        ("anthropic/claude-3-5-haiku", "claude-3-5-haiku"),
        ("anthropic.claude-3-5-sonnet-20240620-v1:0", "claude-3-5-sonnet"),
        ("us.anthropic.claude-sonnet-4-20250514-v1:0", "claude-sonnet-4"),
    ],
)
def test_routed_names_find_their_model(routed: str, plain: str) -> None:
    assert lookup(routed) == lookup(plain)


@pytest.mark.parametrize("model", ["llama3.2", "qwen2.5-coder:7b", "meta-llama/llama-3.1-8b", "o"])
def test_unknown_models_are_conservative(model: str) -> None:
    assert lookup(model) is UNKNOWN_MODEL
    found = limits(model, provider="ollama")
    assert found.context_window == 8_192 and not found.known
    assert found.hint is not None
    assert "[providers.ollama]" in found.hint and "context_window" in found.hint


def test_config_overrides_the_table() -> None:
    found = limits("gpt-4o-mini", context_window=32_000, max_output_tokens=2_000)
    assert (found.context_window, found.max_output_tokens, found.known) == (32_000, 2_000, True)
    # A configured window below the table's output limit caps the output too.
    assert limits("gpt-4o-mini", context_window=8_000).max_output_tokens == 8_000
    # A configured window makes an unknown model known: no hint.
    local = limits("llama3.2", context_window=131_072)
    assert local.known and local.hint is None and local.context_window == 131_072
