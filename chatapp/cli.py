"""Command line: `chatapp` opens the TUI; `chatapp ask`, `chatapp ls`, ... use the same ChatService."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from chatapp.config import NO_PROVIDER_ADVICE, ConfigError, Settings, load_settings
from chatapp.domain import (
    MessageStatus,
    MessageTooLong,
    Notice,
    ReplyRestarted,
    TextDelta,
    TurnFinished,
    TurnStarted,
)
from chatapp.store.db import StoreError
from chatapp.textsafe import visible

if TYPE_CHECKING:
    from chatapp.service import ChatService

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """Bad arguments or missing setup: one line on stderr, exit 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatapp", description="A terminal chat client for LLMs.")
    parser.add_argument("--provider", help="provider for new turns (a name from the config)")
    parser.add_argument("--model", help="model for new turns")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    ask = commands.add_parser("ask", help="send one prompt and stream the reply to stdout")
    ask.add_argument("prompt", nargs="*", help="the prompt (read from stdin when omitted and piped)")
    ask.add_argument("--provider", dest="ask_provider", help="provider name from the config")
    ask.add_argument("--model", dest="ask_model", help="model name")
    where = ask.add_mutually_exclusive_group()
    where.add_argument("-c", "--continue", dest="continue_", action="store_true",
                       help="continue the most recent conversation")
    where.add_argument("--conversation", metavar="ID", help="continue conversation ID (a unique prefix will do)")
    ask.add_argument("--truncate", action="store_true",
                     help="cut a prompt that does not fit the model's window instead of refusing it")
    ask.add_argument("--raw", action="store_true", help="write the reply unfiltered (control characters kept)")
    ask.add_argument("-t", "--template", metavar="NAME[@VERSION]", help="a prompt template (see `chatapp templates`)")
    ask.add_argument("--var", action="append", default=[], metavar="KEY=VALUE", help="a template variable")

    ls = commands.add_parser("ls", help="list saved conversations")
    ls.add_argument("--json", action="store_true", help="print a JSON array")
    ls.add_argument("-n", "--limit", type=int, default=None, help="at most N conversations")

    templates = commands.add_parser("templates", help="list prompt templates, or show one")
    templates.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    templates.add_argument("name", nargs="?", help="template name for `show` (NAME or NAME@VERSION)")

    doctor = commands.add_parser("doctor", help="show paths, providers and local models; --check asks each one")
    doctor.add_argument("--check", action="store_true",
                        help="send a tiny request to every available provider (loads local models)")

    stats = commands.add_parser("stats", help="per-provider requests, retries, latency, tokens and cost")
    stats.add_argument("--json", action="store_true", help="print the figures as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        if args.command is None:
            return _run_tui(settings, args)
        if args.command == "ask":
            return asyncio.run(_ask(settings, args))
        if args.command == "ls":
            return _ls(settings, args)
        if args.command == "stats":
            return _stats(settings, args)
        if args.command == "templates":
            return _templates(settings, args)
        if args.command == "doctor":
            return asyncio.run(_doctor(settings, args))
    except (ConfigError, StoreError, UsageError) as exc:
        _error(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return EXIT_USAGE


def _error(message: str) -> None:
    print(f"chatapp: {visible(message)}", file=sys.stderr)


def _run_tui(settings: Settings, args: argparse.Namespace) -> int:
    from chatapp.tui.app import run

    return run(settings, provider=args.provider, model=args.model)


def _read_prompt(words: list[str], stdin: TextIO, *, optional: bool = False) -> str:
    if words:
        return " ".join(words)
    if stdin.isatty():
        if optional:
            return ""
        raise UsageError("ask: give a prompt, or pipe one on stdin")
    text = stdin.read()
    if not text.strip() and not optional:
        raise UsageError("ask: the prompt is empty")
    return text


def _apply_template(service: ChatService, args: argparse.Namespace, conversation_id: str | None, prompt: str,
                    provider: str | None, model: str | None) -> tuple[str, str]:
    """Validate and render the template before anything is stored or sent; returns (conversation, prompt)."""
    from chatapp.domain import Role
    from chatapp.store.conversations import new_id
    from chatapp.templates import TemplateError, parse_var_args

    target_id = conversation_id or new_id()
    try:
        rendered, assignment = service.render_template(args.template, parse_var_args(args.var), target_id)
    except TemplateError as exc:
        raise UsageError(f"template: {exc}") from None
    if rendered.role is Role.SYSTEM and not prompt.strip():
        raise UsageError(f"ask: template {rendered.name!r} sets the system prompt: give a prompt too")
    if conversation_id is None:
        service.new_conversation(provider, model, conversation_id=target_id)
    service.apply_template(target_id, rendered, assignment)
    if rendered.role is Role.USER:
        prompt = f"{rendered.text}\n\n{prompt}" if prompt.strip() else rendered.text
    return target_id, prompt


async def _ask(settings: Settings, args: argparse.Namespace) -> int:
    from chatapp.service import ChatService

    prompt = _read_prompt(args.prompt, sys.stdin, optional=bool(args.template))
    provider = args.ask_provider or args.provider
    if provider is None and settings.default_provider is None:
        raise UsageError(NO_PROVIDER_ADVICE)
    service = ChatService.open(settings)
    service.warm()
    try:
        conversation_id: str | None = None
        if args.continue_:
            latest = service.latest_conversation()
            conversation_id = latest.id if latest else None
        elif args.conversation:
            found = service.conversation(args.conversation)
            if found is None:
                raise UsageError(f"ask: no conversation matches {args.conversation!r} (see `chatapp ls`)")
            conversation_id = found.id
        model = args.ask_model or args.model
        state = service.pool.availability(service.target_for(conversation_id, provider).provider)
        if not state.available:
            raise UsageError(f"provider {state.name!r} is unavailable: {state.reason}")
        if args.template:
            conversation_id, prompt = _apply_template(service, args, conversation_id, prompt, provider, model)
        code = await _stream_turn(service, conversation_id, prompt, provider, model, raw=args.raw,
                                  truncate=args.truncate)
        await service.finish_background()
        return code
    finally:
        await service.aclose()


async def _stream_turn(service: ChatService, conversation_id: str | None, prompt: str, provider: str | None,
                       model: str | None, *, raw: bool, truncate: bool = False) -> int:
    out = sys.stdout
    wrote_text = False
    clean = _TerminalText(raw)
    async for event in service.send(conversation_id, prompt, provider=provider, model=model):
        if isinstance(event, TextDelta):
            out.write(clean.feed(event.text))
            out.flush()
            wrote_text = True
        elif isinstance(event, Notice):
            print(f"chatapp: {visible(event.text)}", file=sys.stderr)
        elif isinstance(event, ReplyRestarted):
            if wrote_text:
                out.write("\n")
            print(f"chatapp: {visible(event.reason)}; restarting the reply with {event.provider}",
                  file=sys.stderr)
        elif isinstance(event, MessageTooLong):
            if not truncate:
                _error(f"the prompt is {event.tokens:,} tokens but the model's window allows {event.limit:,}: "
                       "shorten it, or pass --truncate to cut it")
                return EXIT_USAGE
            print(f"chatapp: the prompt was cut to {event.limit:,} tokens to fit the window", file=sys.stderr)
            conversation_id = service.store.get_message(event.user_message_id).conversation_id  # type: ignore[union-attr]
            shorter = service.truncate_to_fit(prompt, event.limit, provider, model)
            return await _stream_turn(service, conversation_id, shorter, provider, model, raw=raw)
        elif isinstance(event, TurnStarted):
            pass
        elif isinstance(event, TurnFinished):
            out.write(clean.flush())
            if wrote_text:
                out.write("\n")
                out.flush()
            if event.status is MessageStatus.COMPLETE:
                return EXIT_OK
            _error(event.error or event.status.value)
            return EXIT_FAILED
    return EXIT_FAILED


class _TerminalText:
    """Chunk-wise `visible()`, holding back a trailing CR so a CRLF split across chunks is one newline."""

    def __init__(self, raw: bool) -> None:
        self._raw = raw
        self._pending = ""

    def feed(self, text: str) -> str:
        if self._raw:
            return text
        text = self._pending + text
        self._pending = ""
        if text.endswith("\r"):
            text, self._pending = text[:-1], "\r"
        return visible(text)

    def flush(self) -> str:
        pending, self._pending = self._pending, ""
        return visible(pending) if pending and not self._raw else pending


def _ls(settings: Settings, args: argparse.Namespace) -> int:
    from chatapp.service import ChatService

    service = ChatService.open(settings)
    try:
        items = service.conversations(limit=args.limit)
    finally:
        service.store.close()
    if args.json:
        print(json.dumps([
            {"id": c.id, "title": c.title, "updated": _iso(c.updated), "created": _iso(c.created),
             "messages": c.message_count, "provider": c.provider, "model": c.model}
            for c in items
        ], indent=2, ensure_ascii=False))
        return EXIT_OK
    if not items:
        print("no conversations yet: start one with `chatapp` or `chatapp ask \"...\"`")
        return EXIT_OK
    for c in items:
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(c.updated))
        print(f"{c.id}  {stamp}  {c.message_count:>4} msgs  {visible(c.display_title)}")
    return EXIT_OK


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def _stats(settings: Settings, args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from chatapp.service import ChatService
    from chatapp.stats_table import as_text

    service = ChatService.open(settings)
    try:
        snapshot = service.stats()
    finally:
        service.store.close()
    if args.json:
        print(json.dumps([asdict(p) for p in snapshot.providers], indent=2))
    else:
        print(as_text(snapshot))
    return EXIT_OK


def _templates(settings: Settings, args: argparse.Namespace) -> int:
    from chatapp.service import ChatService
    from chatapp.templates import TemplateError, describe

    service = ChatService.open(settings)
    try:
        library = service.templates
        if args.action == "show":
            if not args.name:
                raise UsageError("templates show: name a template")
            try:
                template = library.get(args.name)
            except TemplateError as exc:
                raise UsageError(f"template: {exc}") from None
            versions = [t.version for t in library.versions(template.name)]
            print(visible(describe(template, versions=versions, stats=service.template_results(template.name))))
        else:
            for template in library.list():
                print(visible(f"{template.ref:24} {template.role.value:6}  {template.description}"))
        for problem in library.problems:
            _error(f"skipped {problem.path}: {problem.message}")
    finally:
        service.store.close()
    return EXIT_OK


async def _doctor(settings: Settings, args: argparse.Namespace) -> int:
    from chatapp import doctor
    from chatapp.service import ChatService

    service = ChatService.open(settings)
    try:
        doctor.report(service, print)
        if not args.check:
            return EXIT_OK
        print("check:")
        return EXIT_OK if await doctor.check(service, print) == 0 else EXIT_FAILED
    finally:
        await service.aclose()
