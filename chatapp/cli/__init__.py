"""Command line: `chatapp` opens the TUI; `chatapp ask`, `chatapp ls`, ... use the same ChatService.

Each command lives in its own module with a `register(commands)` that adds its parser and sets `run`
(a function of settings and arguments returning the exit code; `is_async` when it is a coroutine).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from chatapp.cli import ask, batch, conversations, doctor, export, import_, listing, models, stats, templates
from chatapp.cli.common import (
    EXIT_BROKEN_PIPE,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    UsageError,
    error,
    tolerant_streams,
)
from chatapp.config import ConfigError, Paths, Settings, load_settings
from chatapp.service import LOCK_TIMEOUT_SECONDS, StoreError, describe_failure

COMMANDS = (ask, batch, listing, conversations, export, import_, templates, doctor, stats, models)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatapp", description="A terminal chat client for LLMs.")
    parser.add_argument("--provider", metavar="NAME", help="provider for new turns (a name from the config)")
    parser.add_argument("--model", metavar="MODEL", help="model for new turns")
    parser.add_argument("-c", "--continue", dest="continue_latest", action="store_true",
                        help="open the TUI on the most recent conversation")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    tolerant_streams()
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
    settings: Settings | None = None
    try:
        settings = load_settings()
        if args.command is None:
            return _run_tui(settings, args)
        if getattr(args, "is_async", False):
            return _run_async(args.run, settings, args)
        return int(args.run(settings, args))
    except (ConfigError, UsageError) as exc:
        error(str(exc))
        return EXIT_USAGE
    except StoreError as exc:
        error(str(exc))
        return EXIT_FAILED
    except sqlite3.DatabaseError as exc:  # raised mid-command (a damaged page, a full disk, a held lock)
        error(_database_failure(exc, settings))
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


_CANCELLING_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def _run_async(run: Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]], settings: Settings,
               args: argparse.Namespace) -> int:
    """Run a command's coroutine; SIGTERM and SIGHUP cancel it as SIGINT does (a reply ends `cancelled`, its
    text flushed), and the exit status is 128 + the signal, as a shell reports a process killed by it."""
    received: list[int] = []

    async def guarded() -> int:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for signum in _CANCELLING_SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError):  # no signals on this platform/thread
                loop.add_signal_handler(signum, _cancel, task, signum, received)
        return int(await run(settings, args))

    try:
        return asyncio.run(guarded())
    except asyncio.CancelledError:
        if received:
            return 128 + received[0]
        raise


def _cancel(task: asyncio.Task[int], signum: int, received: list[int]) -> None:
    received.append(signum)
    task.cancel()


def _database_failure(exc: sqlite3.DatabaseError, settings: Settings | None) -> str:
    """A failure met mid-command. A damaged page is reported and the file left exactly as it is: the rest of
    it may still read (`ls`), and `doctor --salvage` is the step that copies and sets aside."""
    path = (settings.paths if settings else Paths.from_platform()).database
    return describe_failure(path, exc, settings.lock_timeout if settings else LOCK_TIMEOUT_SECONDS)


def _run_tui(settings: Settings, args: argparse.Namespace) -> int:
    from chatapp.tui.app import run

    return run(settings, provider=args.provider, model=args.model, latest=args.continue_latest)
