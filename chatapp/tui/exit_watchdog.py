"""The last step of quitting by signal, if Textual does not take it.

SIGTERM and SIGHUP quit the TUI as ctrl+q does: the reply ends cancelled and is saved, then Textual restores
the terminal. After a hang-up (a closed tmux pane or terminal window, an SSH link gone) nothing reads the
terminal any more, and Textual's writer thread can block on it for ever: the process stayed behind, with
its conversation saved, in 2 to 5 of 10 tmux sessions killed right after a reply. `exit_later` ends the
process a few seconds after the save unless it has ended by then.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable

GRACE_SECONDS = 3.0
"""What Textual gets to restore the terminal after the save (it takes well under 0.1 s when it can)."""


def exit_later(code: int, last_words: Callable[[], list[str]], grace: float = GRACE_SECONDS) -> None:
    """End the process with `code` after `grace` seconds unless it ends first; `last_words` are written to
    stderr without blocking (a terminal nobody reads may not take them)."""

    def run() -> None:
        time.sleep(grace)
        _write_without_blocking(2, "".join(f"chatapp: {line}\n" for line in last_words()))
        os._exit(code)

    threading.Thread(target=run, name="exit-watchdog", daemon=True).start()


def _write_without_blocking(fd: int, text: str) -> None:
    if not text:
        return
    with contextlib.suppress(OSError):
        os.set_blocking(fd, False)
        os.write(fd, text.encode())
