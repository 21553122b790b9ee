"""The batched SSE decoder reads what the line-by-line one reads, however the body is cut into reads."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from chatapp.providers.sse import sse_batches, sse_events

BODY = ('event: message_start\r\ndata: {"a": 1}\r\n\r\n: a comment\n\ndata: first line\ndata: second line\n\n'
        'id: 7\rretry: 10\rdata: cr only\r\rdata: [DONE]\n\n')


async def _reads(parts: list[str]) -> AsyncIterator[str]:
    for part in parts:
        yield part


async def _lines(text: str) -> AsyncIterator[str]:
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        yield line


async def _batched(parts: list[str]) -> list[list[tuple[str | None, str]]]:
    return [batch async for batch in sse_batches(_reads(parts))]


async def test_events_match_the_line_decoder_for_any_cut() -> None:
    expected = [event async for event in sse_events(_lines(BODY))]
    assert expected[0] == ("message_start", '{"a": 1}') and ("None", "") not in expected
    rng = random.Random(3)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(BODY)), rng.randint(1, 12)))
        parts = [BODY[a:b] for a, b in zip([0, *cuts], [*cuts, len(BODY)], strict=True)]
        got = [event for batch in await _batched(parts) for event in batch]
        assert got == expected, parts


async def test_the_events_of_one_read_come_together() -> None:
    batches = await _batched(["data: a\n\ndata: b\n\ndata: c\n\n", "data: d\n\n"])
    assert batches == [[(None, "a"), (None, "b"), (None, "c")], [(None, "d")]]


@pytest.mark.parametrize("tail", ["data: last", "data: last\r"])
async def test_an_event_without_its_blank_line_at_the_end_still_counts(tail: str) -> None:
    assert await _batched(["data: one\n\n", tail]) == [[(None, "one")], [(None, "last")]]
