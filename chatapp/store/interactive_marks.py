"""Cross-process "a user is waiting" marks, so a batch in another process lets an interactive turn go first.

The scheduler orders work inside one process; `chatapp batch` and `chatapp ask` (or the TUI) are
separate processes on the same provider. A turn drops an empty file `<provider>.<pid>.<n>` in
`<data dir>/interactive/` until its reply starts; a batch starts no new item on that provider while
such a file exists. Files of dead processes (a SIGKILLed turn) and files older than `MAX_AGE` are
ignored and removed, so a crash never stalls a batch for long. A file per turn, not a lock: any
number of turns may wait at once, and creating or deleting one is atomic.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from pathlib import Path

MAX_AGE = 120.0  # seconds: no turn waits this long for its first token
_counter = itertools.count()


class InteractiveMark:
    """One turn's mark; `release()` is idempotent."""

    def __init__(self, path: Path | None) -> None:
        self._path = path

    def release(self) -> None:
        if self._path is not None:
            with contextlib.suppress(OSError):
                self._path.unlink()
            self._path = None

    def __enter__(self) -> InteractiveMark:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class InteractiveMarks:
    def __init__(self, directory: Path) -> None:
        self._dir = directory

    def hold(self, provider: str) -> InteractiveMark:
        """Mark a turn on `provider` as waiting. Never fails: without a mark the turn still runs."""
        path = self._dir / f"{_safe(provider)}.{os.getpid()}.{next(_counter)}"
        try:
            self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            path.touch(mode=0o600)
        except OSError:
            return InteractiveMark(None)
        return InteractiveMark(path)

    def waiting(self, provider: str) -> bool:
        """True while a live turn in another process waits on `provider`."""
        prefix = f"{_safe(provider)}."
        own = os.getpid()
        try:
            entries = list(os.scandir(self._dir))
        except OSError:
            return False
        now = time.time()
        for entry in entries:
            if not entry.name.startswith(prefix):
                continue
            try:
                pid = int(entry.name[len(prefix):].split(".", 1)[0])
                stale = now - entry.stat().st_mtime > MAX_AGE or not _alive(pid)
            except (ValueError, OSError):
                continue
            if stale:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
            elif pid != own:  # this process's own turns are ordered by its scheduler
                return True
        return False


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
