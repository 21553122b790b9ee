"""A/B splits between template versions.

A conversation's version is a pure function of (template name, conversation id): SHA-256 of both,
read as a fraction in [0, 1), lands in one arm of the cumulative weights. So it is stable across runs
and machines with nothing stored; record the Assignment anyway, because a later edit of the split
would move some conversations, and the comparison must use the version each one really had.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .model import ABSplit


def bucket(name: str, conversation_id: str) -> float:
    """A stable, uniform fraction in [0, 1) for this conversation and template."""
    import hashlib

    digest = hashlib.sha256(f"{name}\x00{conversation_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def choose(split: ABSplit, name: str, conversation_id: str) -> int:
    total = sum(split.weights)
    point = bucket(name, conversation_id) * total
    cumulative = 0.0
    for version, weight in split.arms:
        cumulative += weight
        if weight > 0 and point < cumulative:
            return version
    return next(version for version, weight in reversed(split.arms) if weight > 0)  # float rounding


@dataclass(frozen=True, slots=True)
class ArmStats:
    """Per-version results the service collects from the store, for comparing the arms of a split."""

    version: int
    conversations: int = 0
    turns: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def output_tokens_per_turn(self) -> float:
        return self.output_tokens / self.turns if self.turns else 0.0

    @property
    def turns_per_conversation(self) -> float:
        return self.turns / self.conversations if self.conversations else 0.0


def format_arms(stats: Sequence[ArmStats]) -> str:
    """A small plain-text table, one row per version."""
    header = f"{'version':>7}  {'convs':>6}  {'turns':>6}  {'turns/conv':>10}  {'out tok/turn':>12}"
    rows = [header]
    for arm in sorted(stats, key=lambda a: a.version):
        rows.append(
            f"{arm.version:>7}  {arm.conversations:>6}  {arm.turns:>6}  {arm.turns_per_conversation:>10.1f}  "
            f"{arm.output_tokens_per_turn:>12.1f}"
        )
    return "\n".join(rows)
