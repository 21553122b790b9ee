"""Command line: `chatapp` opens the TUI; `chatapp ask`, `chatapp ls`, ... use the same ChatService.

Each command lives in its own module with a `register(commands)` that adds its parser and sets `run`
(a function of settings and arguments returning the exit code; `is_async` when it is a coroutine).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from chatapp.cli import ask, doctor, listing, stats, templates
from chatapp.cli.common import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, EXIT_USAGE, UsageError, error
from chatapp.config import ConfigError, Settings, load_settings
from chatapp.store.db import StoreError

COMMANDS = (ask, listing, templates, doctor, stats)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatapp", description="A terminal chat client for LLMs.")
    parser.add_argument("--provider", help="provider for new turns (a name from the config)")
    parser.add_argument("--model", help="model for new turns")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        code = _dispatch(argv)
        sys.stdout.flush()  # inside the try: a reader that went away (`| head -1`) is not an error
        return code
    except BrokenPipeError:
        _detach_stdout()
        return EXIT_BROKEN_PIPE


def _detach_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's last flush does not report the closed pipe again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _dispatch(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        if args.command is None:
            return _run_tui(settings, args)
        if getattr(args, "is_async", False):
            return int(asyncio.run(args.run(settings, args)))
        return int(args.run(settings, args))
    except (ConfigError, StoreError, UsageError) as exc:
        error(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _run_tui(settings: Settings, args: argparse.Namespace) -> int:
    from chatapp.tui.app import run

    return run(settings, provider=args.provider, model=args.model)
