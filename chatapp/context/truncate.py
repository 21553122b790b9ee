"""Cutting text to a token budget: the user's explicit choice for an oversize message, and the
splitting of very long messages into pieces a summarizer can take.

Cuts fall on token boundaries when an encoding is loaded (decoded without splitting a character),
on character boundaries for the estimate. The result is re-counted, and shortened again until it fits:
tokens of a concatenation are not always the sum of the parts.
"""

from __future__ import annotations

import codecs
import math
from collections.abc import Callable
from typing import Literal

from chatapp.context.tokens import Counting

Keep = Literal["head", "tail", "both"]

MARKER = "\n\n[… about {omitted:,} tokens cut here to fit the model's context window …]\n\n"
_HEAD_SHARE: dict[str, float] = {"head": 1.0, "tail": 0.0, "both": 0.7}
_MAX_ROUNDS = 24


class _Units:
    """The text as cuttable units: tokens of the loaded encoding, or characters for the estimate."""

    def __init__(self, text: str, counting: Counting) -> None:
        self.text = text
        self.encoding = counting.encoding
        self.tokens = self.encoding.encode_ordinary(text) if self.encoding is not None else None
        self.size = len(self.tokens) if self.tokens is not None else len(text)

    def slice(self, start: int, stop: int) -> str:
        start, stop = max(0, start), min(self.size, stop)
        if start >= stop:
            return ""
        if self.tokens is None or self.encoding is None:
            return self.text[start:stop]
        # Partial characters at either end are dropped rather than shown as U+FFFD.
        return self.encoding.decode_bytes(self.tokens[start:stop]).decode("utf-8", "ignore")

    def per_raw_token(self, raw_total: int) -> float:
        """Units per raw token: 1 for an encoding, characters per estimated token otherwise."""
        return 1.0 if self.tokens is not None else self.size / max(1, raw_total)


def truncate_to_tokens(text: str, max_tokens: int, counting: Counting, *, keep: Keep = "both") -> str:
    """`text` cut to at most `max_tokens` model tokens (calibrated, message overhead excluded).

    `keep="both"` keeps the first 70% and the last 30% of the budget around a marker saying how much
    was cut (a pasted log ends with what matters, a document begins with it); "head" and "tail" keep
    one end. Text that already fits is returned unchanged.
    """
    target = counting.raw_budget(max_tokens)
    total = counting.raw(text)
    if total <= target:
        return text
    if target <= 0:
        return ""
    units = _Units(text, counting)
    marker = MARKER.format(omitted=counting.calibrated(total - target))
    marker_raw = counting.raw(marker)
    if marker_raw * 2 > target:  # no room for a marker worth having: plain cut
        marker, marker_raw, keep = "", 0, "head" if keep == "both" else keep
    head_share = _HEAD_SHARE[keep]
    scale = units.per_raw_token(total)
    room = target - marker_raw

    def candidate(room: int) -> str:
        allowed = max(0, math.floor(room * scale))
        head = round(allowed * head_share)
        tail = allowed - head
        return units.slice(0, head) + marker + units.slice(units.size - tail, units.size)

    return _shrink_until_fits(candidate, room, target, counting.raw)


def _shrink_until_fits(make: Callable[[int], str], room: int, target: int, raw: Callable[[str], int]) -> str:
    for _ in range(_MAX_ROUNDS):
        text = make(room)
        excess = raw(text) - target
        if excess <= 0:
            return text
        room -= max(1, excess)
        if room <= 0:
            break
    return ""


def split_to_tokens(text: str, max_raw: int, counting: Counting) -> list[str]:
    """`text` in consecutive pieces of at most ~`max_raw` raw tokens, nothing lost or repeated."""
    if max_raw <= 0:
        raise ValueError("max_raw must be positive")
    units = _Units(text, counting)
    total = len(units.tokens) if units.tokens is not None else counting.raw(text)
    if total <= max_raw:
        return [text] if text else []
    if units.tokens is None or units.encoding is None:
        step = max(1, math.floor(units.size * max_raw / total))
        return [text[i : i + step] for i in range(0, len(text), step)]
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    pieces = []
    for start in range(0, units.size, max_raw):
        data = units.encoding.decode_bytes(units.tokens[start : start + max_raw])
        final = start + max_raw >= units.size
        piece = decoder.decode(data, final=final)  # a character split across pieces moves forward
        if piece:
            pieces.append(piece)
    return pieces
