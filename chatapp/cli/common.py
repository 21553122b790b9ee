"""What every command shares: exit codes, the usage error, and the one-line error printer."""

from __future__ import annotations

import sys

from chatapp.textsafe import visible

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """Bad arguments or missing setup: one line on stderr, exit 2."""


def error(message: str) -> None:
    print(f"chatapp: {visible(message)}", file=sys.stderr)
