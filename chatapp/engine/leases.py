"""The values the scheduler hands out: priority classes, tickets for preemptible work, leases on slots."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from chatapp.engine.percentiles import Percentiles

PREEMPTED = "preempted by interactive work"


class Priority(IntEnum):
    """Scheduling classes, most urgent first: a user's turn, its titles and summaries, batch items."""

    INTERACTIVE = 0
    BACKGROUND = 1
    BATCH = 2


class SchedulerClosed(Exception):
    """The scheduler was closed while work was waiting or running."""


@dataclass(eq=False)
class Ticket:
    """Identity of one preemptible job across its restarts."""

    order: int  # submission order, kept when the job is requeued
    task: asyncio.Task[Any] | None = None
    preempted: bool = False
    front: bool = False  # requeued: its next slot request goes to the front of its class
    requeues: int = 0


class Lease:
    """One held slot. Release it exactly once (releasing twice, or after revocation, is a no-op)."""

    __slots__ = ("_on_release", "_released", "aged", "granted_at", "priority", "provider", "revoked", "seq",
                 "ticket", "waited")

    def __init__(
        self,
        on_release: Callable[[Lease], None],
        provider: str,
        priority: Priority,
        ticket: Ticket | None,
        *,
        seq: int,
        aged: bool,
        granted_at: float,
        waited: float,
    ) -> None:
        self._on_release = on_release
        self._released = False
        self.provider = provider
        self.priority = priority
        self.ticket = ticket
        self.seq = seq
        self.aged = aged
        self.granted_at = granted_at
        self.waited = waited
        self.revoked = False

    @property
    def preemptible(self) -> bool:
        ticket = self.ticket
        return (
            self.priority is not Priority.INTERACTIVE
            and not self.aged
            and not self.revoked
            and ticket is not None
            and ticket.task is not None
            and not ticket.task.done()
        )

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        if not self.revoked:
            self._on_release(self)


@dataclass(frozen=True, slots=True)
class SchedulerSnapshot:
    running_interactive: int
    running_background: int
    queued_interactive: int
    queued_background: int
    preemptions: int
    aged_grants: int
    interactive_wait: Percentiles
    background_wait: Percentiles
    running_batch: int = 0
    queued_batch: int = 0
