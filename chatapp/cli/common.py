"""What every command shares: exit codes, the usage error, the one-line error printer, and stdout that
survives what a terminal or a pipe does to it (an encoding that lacks a character, a reader that left)."""

from __future__ import annotations

import contextlib
import sys
import time
from typing import TYPE_CHECKING

from chatapp.textsafe import visible

if TYPE_CHECKING:
    from chatapp.domain import Conversation
    from chatapp.service import ChatService

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as `cat` exits when its reader goes away


class UsageError(Exception):
    """Bad arguments or missing setup: one line on stderr, exit 2."""


def error(message: str) -> None:
    print(f"chatapp: {visible(message)}", file=sys.stderr)


def resolve_conversation(service: ChatService, ref: str, command: str) -> Conversation:
    """The conversation an id or unique prefix names; a UsageError that lists the candidates otherwise."""
    shown = 6
    matches = service.conversations_matching(ref, limit=shown + 1)
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UsageError(f"{command}: no conversation matches {ref!r} (see `chatapp ls`)")
    count = str(len(matches)) if len(matches) <= shown else f"more than {shown}"
    lines = [f"{command}: {ref!r} is ambiguous: {count} conversation ids start with it; type more of one:"]
    for c in matches[:shown]:
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(c.updated))
        lines.append(f"  {c.id}  {stamp}  {visible(c.display_title)}")
    raise UsageError("\n".join(lines))
def tolerant_streams() -> None:
    """Characters the terminal's encoding lacks are written as escapes (`\\u241b`) instead of raising."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):
                reconfigure(errors="backslashreplace")


def write_out(text: str) -> None:
    """Write and flush stdout at once (a stream's reader sees each piece); a reader that went away raises
    BrokenPipeError here, which `main` turns into a quiet exit 141."""
    sys.stdout.write(text)
    sys.stdout.flush()


def say_notices(service: ChatService) -> None:
    """Once per run, on stderr: what loading the config and opening the store noticed."""
    for notice in service.notices():
        error(notice)
