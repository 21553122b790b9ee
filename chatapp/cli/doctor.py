"""`chatapp doctor`: what chatapp sees on this machine (the database checked with `PRAGMA quick_check`), and
with `--check`, whether each provider answers; `--salvage` rebuilds a damaged database from what it still reads.

Local models are loaded and asked for a few tokens, which measures their load time and decode speed.
Remote providers are asked only with `--check` (it is a real, if tiny, request).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from chatapp.cli.common import EXIT_FAILED, EXIT_OK, say_notices
from chatapp.config import Settings
from chatapp.domain import ProviderError, ProviderKind
from chatapp.service import StoreError
from chatapp.textsafe import visible

if TYPE_CHECKING:
    from chatapp.service import ChatService


_SHOWN_PROBLEMS = 5


def _size(n: int) -> str:
    return f"{n / 1_000_000:.0f} MB"


def report(service: ChatService, out: Callable[[str], None]) -> bool:
    """Print what chatapp sees; False when the database is damaged."""
    settings = service.settings
    paths = settings.paths
    config = settings.source or paths.config_file
    out(f"config:    {config}{'' if config.exists() else '  (none: using defaults and environment)'}")
    out(f"database:  {paths.database}  ({_conversation_count(service)})")
    sound = _integrity_line(service, out)
    out(f"templates: {paths.templates_dir}")
    out(f"themes:    {paths.themes_dir}")
    out("providers:")
    for state in service.providers():
        mark = "*" if state.name == settings.default_provider else " "
        verdict = "available" if state.available else f"unavailable: {state.reason}"
        fallback = "  (fallback)" if state.name in settings.fallback else ""
        out(f" {mark} {state.name:<12} {state.kind:<9} {state.model:<24} {verdict}{fallback}")
        spec = settings.provider(state.name)
        hint = service.window_hint(state.name)
        if hint:
            out(f"      {visible(hint)}")
        if spec.kind is ProviderKind.LLAMACPP:
            _local_model_lines(settings, spec.name, spec.model_path, out)
    return sound


def _conversation_count(service: ChatService) -> str:
    try:
        return f"{len(service.conversations())} conversations"
    except Exception as exc:  # a damaged page in the list itself: the integrity line says what to do
        if service.store_failure(exc) is None:
            raise
        return "conversations cannot be listed"


def _integrity_line(service: ChatService, out: Callable[[str], None]) -> bool:
    from chatapp.service import SALVAGE_ADVICE

    problems = service.database_problems(_SHOWN_PROBLEMS)
    if not problems:
        out("integrity: ok (PRAGMA quick_check)")
        return True
    count = f"{len(problems)}{'+' if len(problems) >= _SHOWN_PROBLEMS else ''}"
    out(f"integrity: damaged: PRAGMA quick_check found {count} problem(s), first: {visible(problems[0])}; "
        f"{SALVAGE_ADVICE}")
    return False


def _local_model_lines(settings: Settings, name: str, model_path: str | None, out: Callable[[str], None]) -> None:
    from pathlib import Path

    if model_path is None:
        from chatapp.service import embedded_model_info

        info = embedded_model_info(settings.paths)
        state = f"{_size(info.size)}, ready" if info.assembled and info.size else "assembled on first use"
        out(f"      model file: {info.path} ({state}); packaged Gemma 3 270M, "
            f"a small base model: `chatapp models pull qwen2.5-1.5b` fetches a local assistant")
        return
    path = Path(model_path).expanduser()
    out(f"      model file: {path} ({_size(path.stat().st_size) if path.is_file() else 'not found'})")


async def check(service: ChatService, out: Callable[[str], None]) -> int:
    """Ask every available provider for a few tokens; the number of providers that failed."""
    failed = 0
    for state in service.providers():
        if not state.available:
            continue
        try:
            line = await _check_one(service, state.name)
        except ProviderError as exc:
            failed += 1
            line = f"failed: {service.redact(str(exc))}"
        out(f"  {state.name:<12} {visible(line)}")
    return failed


async def _check_one(service: ChatService, name: str) -> str:
    from chatapp.service.stats_table import milliseconds

    result = await service.probe(name)
    load = "" if result.load_seconds is None else f"model loaded in {result.load_seconds:.1f} s, "
    rate = "" if result.tokens_per_second is None else f", {result.tokens_per_second:.0f} tokens/s"
    return f"ok: {load}first token {milliseconds(result.first_token_seconds)}{rate} ({result.output_tokens} tokens)"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doctor = commands.add_parser("doctor", help="show paths, providers and local models; --check asks each one")
    doctor.add_argument("--check", action="store_true",
                        help="send a tiny request to every available provider (loads local models)")
    doctor.add_argument("--salvage", action="store_true",
                        help="copy what a damaged database still reads into a fresh one; the damaged file is set "
                             "aside untouched")
    doctor.set_defaults(run=run, is_async=True)


async def run(settings: Settings, args: argparse.Namespace) -> int:
    from chatapp.service import ChatService

    if args.salvage:
        from chatapp.service import salvage

        print(salvage(settings.paths.database).summary())  # a StoreError is the one line main() prints
    try:
        service = ChatService.open(settings, to_read=True)
    except StoreError as exc:  # still say what doctor can: where things are, and what is wrong
        config = settings.source or settings.paths.config_file
        print(f"config:    {config}")
        print(f"database:  {settings.paths.database}  (cannot open: {visible(str(exc))})")
        return EXIT_FAILED
    say_notices(service)
    try:
        sound = report(service, print)
        if not args.check:
            return EXIT_OK if sound else EXIT_FAILED
        print("check:")
        return EXIT_OK if await check(service, print) == 0 and sound else EXIT_FAILED
    finally:
        await service.aclose()
