"""`chatapp ask`: one prompt, the reply streamed to stdout, saved like a TUI turn."""

from __future__ import annotations

import argparse
import os
import stat
import sys
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import TYPE_CHECKING, TextIO

from chatapp.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    error,
    resolve_conversation,
    say_notices,
    write_out,
)
from chatapp.config import NO_PROVIDER_ADVICE, Settings
from chatapp.domain import (
    MessageStatus,
    MessageTooLong,
    Notice,
    ReplyRestarted,
    TextDelta,
    TurnEvent,
    TurnFinished,
    TurnStarted,
)
from chatapp.textsafe import visible

if TYPE_CHECKING:
    from chatapp.service import ChatService


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ask = commands.add_parser("ask", help="send one prompt and stream the reply to stdout")
    ask.add_argument("prompt", nargs="*", help="the prompt (read from stdin when omitted and piped)")
    ask.add_argument("--provider", dest="ask_provider", metavar="NAME", help="provider name from the config")
    ask.add_argument("--model", dest="ask_model", metavar="MODEL", help="model name")
    where = ask.add_mutually_exclusive_group()
    where.add_argument("-c", "--continue", dest="continue_", action="store_true",
                       help="continue the most recent conversation")
    where.add_argument("--conversation", metavar="ID", help="continue conversation ID (a unique prefix will do)")
    ask.add_argument("--truncate", action="store_true",
                     help="cut a prompt that does not fit the model's window instead of refusing it")
    ask.add_argument("--raw", action="store_true", help="write the reply unfiltered (control characters kept)")
    ask.add_argument("-t", "--template", metavar="NAME[@VERSION]", help="a prompt template (see `chatapp templates`)")
    ask.add_argument("--var", action="append", default=[], metavar="KEY=VALUE", help="a template variable")
    ask.set_defaults(run=run, is_async=True)


def piped_input(stdin: TextIO) -> str | None:
    """What is piped or redirected into stdin; None for a terminal, /dev/null or no stdin at all."""
    try:
        if stdin.isatty():
            return None
        mode = os.fstat(stdin.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return None
    if not (stat.S_ISFIFO(mode) or stat.S_ISREG(mode) or stat.S_ISSOCK(mode)):
        return None
    return stdin.read()


def compose_prompt(words: list[str], piped: str | None, *, optional: bool = False) -> str:
    """The argument, a blank line, then the piped text (as llm and aichat do); either alone is the prompt."""
    argument = " ".join(words)
    if piped is not None and piped.strip():
        prompt = f"{argument}\n\n{piped}" if argument.strip() else piped
    else:
        prompt = argument
    if not prompt.strip() and not optional:
        if not words and piped is None:
            raise UsageError("ask: give a prompt, or pipe one on stdin")
        raise UsageError("ask: the prompt is empty")
    return prompt


def _template_variables(service: ChatService, ref: str, var_args: list[str],
                        piped: str | None) -> tuple[dict[str, str], bool]:
    """The `--var` values, with piped input in the variable `KEY=-` names, else in the one the template
    declares (`stdin = "text"`); True when the piped text went into a variable."""
    from chatapp.service import parse_var_args

    variables = parse_var_args(var_args)
    dashed = [key for key, value in variables.items() if value == "-"]
    if len(dashed) > 1:
        raise UsageError(f"--var: only one variable can take stdin (got {', '.join(dashed)})")
    if dashed:
        if piped is None:
            raise UsageError(f"--var {dashed[0]}=-: nothing is piped on stdin")
        variables[dashed[0]] = piped
        return variables, True
    declared = service.template_stdin_variable(ref)
    if declared and declared not in variables and piped is not None and piped.strip():
        variables[declared] = piped
        return variables, True
    return variables, False


def _apply_template(service: ChatService, args: argparse.Namespace, conversation_id: str | None,
                    piped: str | None, provider: str | None, model: str | None) -> tuple[str, str]:
    """Validate and render the template before anything is stored or sent; returns (conversation, prompt)."""
    from chatapp.domain import Role
    from chatapp.service import TemplateError

    target_id = conversation_id or service.new_conversation_id()
    try:
        variables, consumed = _template_variables(service, args.template, args.var, piped)
        rendered, assignment = service.render_template(args.template, variables, target_id)
    except TemplateError as exc:
        raise UsageError(f"template: {exc}") from None
    prompt = compose_prompt(args.prompt, None if consumed else piped, optional=True)
    if rendered.role is Role.SYSTEM and not prompt.strip():
        raise UsageError(f"ask: template {rendered.name!r} sets the system prompt: give a prompt too")
    if conversation_id is None:
        service.new_conversation(provider, model, conversation_id=target_id)
    service.apply_template(target_id, rendered, assignment)
    if rendered.role is Role.USER:
        prompt = f"{rendered.text}\n\n{prompt}" if prompt.strip() else rendered.text
    return target_id, prompt


async def run(settings: Settings, args: argparse.Namespace) -> int:
    from chatapp.service import ChatService

    piped = piped_input(sys.stdin)
    prompt = compose_prompt(args.prompt, piped, optional=bool(args.template))
    provider = args.ask_provider or args.provider
    if provider is None and settings.default_provider is None:
        raise UsageError(NO_PROVIDER_ADVICE)
    service = ChatService.open(settings)
    say_notices(service)
    service.warm()
    try:
        conversation_id: str | None = None
        if args.continue_:
            latest = service.latest_conversation()
            conversation_id = latest.id if latest else None
        elif args.conversation:
            conversation_id = resolve_conversation(service, args.conversation, "ask").id
        model = args.ask_model or args.model
        state = service.provider_availability(service.target_for(conversation_id, provider).provider)
        if not state.available:
            raise UsageError(f"provider {state.name!r} is unavailable: {state.reason}")
        if args.template:
            conversation_id, prompt = _apply_template(service, args, conversation_id, piped, provider, model)
        code = await _stream_turn(service, conversation_id, prompt, provider, model, raw=args.raw,
                                  truncate=args.truncate, explicit=provider is not None)
        await service.finish_background()
        return code
    finally:
        await service.aclose()
        for line in service.unsaved_replies():
            error(line)


async def _stream_turn(service: ChatService, conversation_id: str | None, prompt: str, provider: str | None,
                       model: str | None, *, raw: bool, truncate: bool = False, explicit: bool = False) -> int:
    turn = service.send(conversation_id, prompt, provider=provider, model=model, explicit=explicit)
    async with aclosing(turn) as events:
        return await _print_events(service, events, conversation_id, prompt, provider, model, raw=raw,
                                   truncate=truncate, explicit=explicit)


async def _print_events(service: ChatService, events: AsyncIterator[TurnEvent], conversation_id: str | None,
                        prompt: str, provider: str | None, model: str | None, *, raw: bool, truncate: bool,
                        explicit: bool) -> int:
    wrote_text = False
    clean = _TerminalText(raw)
    async for event in events:
        if isinstance(event, TextDelta):
            write_out(clean.feed(event.text))
            wrote_text = True
        elif isinstance(event, Notice):
            print(f"chatapp: {visible(event.text)}", file=sys.stderr)
        elif isinstance(event, ReplyRestarted):
            if wrote_text:
                write_out("\n")
            print(f"chatapp: {visible(event.reason)}; restarting the reply with {event.provider}",
                  file=sys.stderr)
        elif isinstance(event, MessageTooLong):
            if not truncate:
                error(f"the prompt is {event.tokens:,} tokens but the model's window allows {event.limit:,}: "
                       "shorten it, or pass --truncate to cut it")
                return EXIT_USAGE
            print(f"chatapp: the prompt was cut to {event.limit:,} tokens to fit the window", file=sys.stderr)
            conversation_id = service.conversation_of_message(event.user_message_id)
            shorter = service.truncate_to_fit(prompt, event.limit, provider, model)
            return await _stream_turn(service, conversation_id, shorter, provider, model, raw=raw, explicit=explicit)
        elif isinstance(event, TurnStarted):
            pass
        elif isinstance(event, TurnFinished):
            write_out(clean.flush() + ("\n" if wrote_text else ""))
            if event.status is MessageStatus.COMPLETE:
                return EXIT_OK
            if event.status is MessageStatus.TRUNCATED:  # an answer, cut at the limit the user set or allowed
                error(f"{event.error or 'stopped at the length limit'}; the reply is saved")
                return EXIT_OK
            error(event.error or event.status.value)
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


