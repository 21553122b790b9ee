"""Token counting: estimates at once, exact where the encoding is the model's, calibrated elsewhere."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatapp.context.encodings import EncodingResolver
from chatapp.context.tokens import (
    ESTIMATE,
    OVERHEAD,
    Calibration,
    TokenCounter,
    estimate_tokens,
    prior_ratio,
)

PROSE = Path(__file__).read_text(encoding="utf-8")  # English and Python: a fair sample
CJK = "这是一个测试句子，用来估计中文的令牌数量。" * 20
MIXED = "Café déjà vu — naïve façade. Ünïcödé ✓ 🚀 " * 30


pytestmark = pytest.mark.usefixtures("no_network")  # sockets refuse (tests/context/conftest.py)


@pytest.fixture(scope="module")
def resolver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EncodingResolver]:
    """cl100k loaded offline from an empty cache; o200k only if this machine already had it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path_factory.mktemp("tiktoken")))
        resolver = EncodingResolver(allow_download=False)
        assert resolver.load("cl100k_base") is not None
        resolver.load("o200k_base")
        yield resolver


class FakeResolver:
    """Pretends the given encodings are loaded (the real cl100k stands in for any of them)."""

    def __init__(self, real: EncodingResolver, names: set[str]) -> None:
        self.real = real
        self.names = names

    def get(self, name: str) -> object:
        return self.real.get("cl100k_base") if name in self.names else None

    def warm(self, names: object, on_ready: object = None) -> None:
        raise AssertionError("not used")


def test_usable_before_any_encoding_loads() -> None:
    counter = TokenCounter(EncodingResolver(allow_download=False))
    count = counter.count("Hello there, how are you?", "gpt-4o-mini")
    assert count.basis == ESTIMATE
    counting = counter.counting("gpt-4o-mini")
    assert not counting.exact
    assert counting.encoding is None
    assert count.tokens == estimate_tokens("Hello there, how are you?") > 0


def test_exact_for_a_model_whose_encoding_is_loaded(resolver: EncodingResolver) -> None:
    counter = TokenCounter(resolver)
    cl100k = resolver.get("cl100k_base")
    assert cl100k is not None
    count = counter.count(PROSE, "gpt-4")
    assert count.basis == "cl100k_base"
    assert count.tokens == len(cl100k.encode_ordinary(PROSE))
    counting = counter.counting("gpt-4")
    assert counting.exact and counting.ratio == 1.0


def test_gpt_4o_mini_counts_with_o200k_or_cl100k_as_available(resolver: EncodingResolver) -> None:
    counter = TokenCounter(resolver)
    counting = counter.counting("gpt-4o-mini")
    native = resolver.get("o200k_base")
    if native is not None:  # this machine had o200k cached: exact
        assert counting.basis == "o200k_base" and counting.exact
        assert counting.raw(PROSE) == len(native.encode_ordinary(PROSE))
    else:  # offline: the closest loaded encoding, marked approximate
        cl100k = resolver.get("cl100k_base")
        assert cl100k is not None
        assert counting.basis == "cl100k_base" and not counting.exact
        assert counting.raw(PROSE) == len(cl100k.encode_ordinary(PROSE))


def test_native_encoding_wins_once_loaded(resolver: EncodingResolver) -> None:
    counter = TokenCounter(FakeResolver(resolver, {"cl100k_base", "o200k_base"}))
    counting = counter.counting("gpt-4o-mini")
    assert counting.basis == "o200k_base"
    assert counting.exact and counting.ratio == 1.0
    # Exact counts are not moved by usage reports.
    assert counter.observe("gpt-4o-mini", "o200k_base", 1000, 1500).ratio == 1.0


def test_claude_is_approximate_with_a_conservative_prior(resolver: EncodingResolver) -> None:
    counter = TokenCounter(resolver)
    counting = counter.counting("claude-sonnet-4-5", "anthropic")
    assert counting.basis == "cl100k_base"
    assert not counting.exact
    assert counting.ratio == prior_ratio("claude-sonnet-4-5") > 1.0
    assert counting.overhead == OVERHEAD["anthropic"]
    raw = counting.raw(PROSE)
    assert counter.tokens(PROSE, "claude-sonnet-4-5", "anthropic") > raw


def test_unknown_models_are_approximate(resolver: EncodingResolver) -> None:
    counting = TokenCounter(resolver).counting("llama3.2")
    assert not counting.exact
    assert counting.ratio == prior_ratio("llama3.2")


def test_calibration_moves_toward_reported_usage(resolver: EncodingResolver) -> None:
    counter = TokenCounter(resolver)
    model, basis = "claude-sonnet-4-5", "cl100k_base"
    true_ratio = 1.37
    ratios = [counter.ratio(model, basis)]
    for _ in range(12):
        counter.observe(model, basis, 2000, round(2000 * true_ratio))
        ratios.append(counter.ratio(model, basis))
    errors = [abs(r - true_ratio) for r in ratios]
    assert all(later <= earlier + 1e-9 for earlier, later in itertools.pairwise(errors))
    assert errors[-1] < 0.01
    assert counter.calibration()[(model, basis)].samples == 12
    # The ratio is per (model, basis): an estimate-based ratio is another matter.
    assert counter.ratio(model, ESTIMATE) == prior_ratio(model)


def test_calibration_follows_a_change_and_ignores_noise(resolver: EncodingResolver) -> None:
    counter = TokenCounter(resolver)
    model, basis = "llama3.2", "cl100k_base"
    for _ in range(10):
        counter.observe(model, basis, 1000, 900)
    assert counter.ratio(model, basis) == pytest.approx(0.9, abs=0.01)
    counter.observe(model, basis, 3, 300)  # tiny request: ignored
    counter.observe(model, basis, 1000, 0)  # no usage figure: ignored
    assert counter.ratio(model, basis) == pytest.approx(0.9, abs=0.01)
    counter.observe(model, basis, 1000, 1_000_000)  # absurd report: clamped, then averaged in
    assert counter.ratio(model, basis) <= 0.9 + 0.2 * (3.0 - 0.9) + 1e-9
    for _ in range(20):
        counter.observe(model, basis, 1000, 1200)
    assert counter.ratio(model, basis) == pytest.approx(1.2, abs=0.02)


def test_calibration_round_trips_through_the_constructor(resolver: EncodingResolver) -> None:
    saved = {("claude-sonnet-4-5", "cl100k_base"): Calibration(1.31, 7)}
    counter = TokenCounter(resolver, calibration=saved)
    assert counter.counting("claude-sonnet-4-5", "anthropic").ratio == 1.31
    assert counter.calibration() == saved


@pytest.mark.parametrize("text", [PROSE, CJK, MIXED], ids=["prose-and-code", "cjk", "mixed"])
def test_the_fast_estimate_is_close_and_mostly_high(resolver: EncodingResolver, text: str) -> None:
    cl100k = resolver.get("cl100k_base")
    assert cl100k is not None
    exact = len(cl100k.encode_ordinary(text))
    assert exact * 0.95 <= estimate_tokens(text) <= exact * 1.6


def test_the_estimate_survives_odd_text() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("\ud800 lone surrogate") > 0
    assert estimate_tokens("a") == 1


def test_special_token_text_is_counted_as_text(resolver: EncodingResolver) -> None:
    counting = TokenCounter(resolver).counting("gpt-4")
    assert counting.raw("say <|endoftext|> please") > 3
