"""One turn's run through the request engine, written to the store as it streams.

Restarts after shown text keep that text as an incomplete message and open a fresh reply; a
context-too-long answer compresses older turns and tries once more.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import TYPE_CHECKING

from chatapp.config import ProviderSpec
from chatapp.context import BuiltContext, MessageTooLarge
from chatapp.domain import (
    ChatRequest,
    ErrorKind,
    Finish,
    Message,
    MessageStatus,
    Notice,
    ProviderError,
    ReplyRestarted,
    Role,
    Target,
    TextDelta,
    TurnEvent,
    TurnFinished,
    Usage,
)
from chatapp.engine import AttemptFailed, AttemptStarted, Job, Priority
from chatapp.store.db import StoreError
from chatapp.store.reply_writer import ReplyWriter

if TYPE_CHECKING:
    from chatapp.service import ChatService


class Turn:
    def __init__(self, service: ChatService, conversation_id: str, spec: ProviderSpec, system: str | None,
                 built: BuiltContext) -> None:
        self._service = service
        self._store = service._store
        self._conversation_id = conversation_id
        self._spec = spec
        self._system = system
        self._builds: dict[str, BuiltContext] = {spec.name: built}
        self._reply: Message | None = None
        self._writer: ReplyWriter | None = None

    def new_reply(self, target: Target) -> Message:
        self._reply = self._store.add_message(
            self._conversation_id, Role.ASSISTANT, "", MessageStatus.STREAMING, target.provider, target.model
        )
        self._writer = ReplyWriter(self._store, self._reply.id)
        return self._reply

    def _build_request(self, spec: ProviderSpec) -> ChatRequest:
        """Called by the engine for each provider it tries: the context is rebuilt for that model's window."""
        built = self._builds.get(spec.name)
        if built is None:
            try:
                built = self._service._context.build(self._conversation_id, spec, self._system)
            except MessageTooLarge as exc:
                raise ProviderError(ErrorKind.CONTEXT_TOO_LONG, f"the message does not fit {spec.model}'s window",
                                    provider=spec.name) from exc
            self._builds[spec.name] = built
        return built.request

    async def run(self, chain: tuple[str, ...]) -> AsyncGenerator[TurnEvent, None]:
        assert self._reply is not None and self._writer is not None
        answering = Target(self._spec.name, self._spec.model)
        compressed = False
        while True:
            job = Job(priority=Priority.INTERACTIVE, chain=chain, build_request=self._build_request, label="turn",
                      estimated_input_tokens=self._builds[self._spec.name].input_tokens)
            try:
                async with aclosing(self._service._engine.stream(job)) as stream:
                    async for event in stream:
                        if isinstance(event, AttemptStarted):
                            answering = Target(event.provider, event.model)
                            if event.restarted:
                                previous = self._reply.id
                                self.new_reply(answering)
                                yield ReplyRestarted(previous, self._reply.id, answering.provider, answering.model,
                                                     self._service.redact(event.reason or "the reply broke off"))
                            else:
                                self._store.update_message(self._reply.id, provider=event.provider, model=event.model)
                            continue
                        if isinstance(event, AttemptFailed):
                            if event.had_output:
                                reason = self._service.redact(str(event.error))
                                self._writer.close(MessageStatus.INCOMPLETE, error=reason)
                            continue
                        if isinstance(event, TextDelta):
                            self._writer.append(event.text)
                        elif isinstance(event, Usage):
                            self._writer.usage = event
                            built = self._builds.get(answering.provider)
                            if built is not None:
                                self._service._context.observe(built, event)
                        elif isinstance(event, Notice):
                            event = Notice(self._service.redact(event.text))
                        elif isinstance(event, Finish):
                            continue  # the turn's own TurnFinished says how it ended
                        yield event
            except ProviderError as exc:
                if exc.kind is ErrorKind.CONTEXT_TOO_LONG and not compressed and not self._writer.text:
                    compressed = True
                    yield Notice(f"{answering.model} says the conversation is too long: summarizing older turns "
                                 "and trying once more")
                    if await self._recompress():
                        continue
                yield self.fail(exc, answering)
                return
            except (asyncio.CancelledError, GeneratorExit):
                self._writer.close(MessageStatus.CANCELLED)
                raise
            except StoreError:
                raise  # the store refused a write (a full disk): said in one line by the front end
            except Exception as exc:  # a bug, not a provider failure: keep the text, say what happened
                error = ProviderError(ErrorKind.TRANSIENT, f"internal error: {type(exc).__name__}: {exc}")
                yield self.fail(error, answering)
                return
            break
        self._writer.close(MessageStatus.COMPLETE)
        self._store.set_provider(self._conversation_id, answering.provider, answering.model)
        self._service._context.schedule_compression(self._conversation_id, self._spec, self._system)
        yield TurnFinished(self._reply.id, MessageStatus.COMPLETE, answering.provider, answering.model,
                           usage=self._writer.usage)

    async def _recompress(self) -> bool:
        try:
            made = await self._service._context.compress(self._conversation_id, self._spec, self._system, force=True)
            self._builds = {self._spec.name: self._service._context.build(self._conversation_id, self._spec,
                                                                          self._system)}
        except (ProviderError, MessageTooLarge):
            return False
        return made is not None

    def fail(self, exc: ProviderError, answering: Target) -> TurnFinished:
        assert self._reply is not None and self._writer is not None
        message = self._service.redact(str(exc))
        status = MessageStatus.INCOMPLETE if self._writer.text else MessageStatus.ERROR
        self._writer.close(status, error=message)
        return TurnFinished(self._reply.id, status, answering.provider, answering.model, message, exc.kind,
                            self._writer.usage)
