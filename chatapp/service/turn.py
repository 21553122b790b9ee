"""One turn's run through the request engine, written to the store as it streams.

Restarts after shown text keep that text as an incomplete message and open a fresh reply; a
context-too-long answer compresses older turns and tries once more. A reply that stopped at the length
limit is stored as truncated; "continue" resumes that same message with one extra instruction.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import replace
from typing import TYPE_CHECKING

from chatapp.config import ProviderSpec
from chatapp.context import BuiltContext, MessageTooLarge, NothingToSend, SystemPromptTooLarge
from chatapp.domain import (
    ChatMessage,
    ChatRequest,
    ErrorKind,
    Finish,
    LoadState,
    Message,
    MessageStatus,
    MessageTooLong,
    Notice,
    ProviderError,
    ProviderKind,
    ReplyRestarted,
    Role,
    SetupHint,
    Target,
    TextDelta,
    TurnEvent,
    TurnFinished,
    TurnStarted,
    Usage,
)
from chatapp.engine import AttemptFailed, AttemptStarted, Job, Priority
from chatapp.service.late_saves import RETRY_SECONDS
from chatapp.store.db import StoreError
from chatapp.store.reply_writer import ReplyWriter

CONTINUE_INSTRUCTION = ("Your last reply was cut off at the length limit. Continue it from exactly where it "
                        "stopped, without repeating anything and without any preamble.")

if TYPE_CHECKING:
    from chatapp.service import ChatService


def _busy_line(waited: float) -> str:
    return (f"the database was busy for {waited:.1f} s (another process held its write lock); the reply was kept "
            "and is saved")


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
        self._continuing = False
        self._finish: Finish | None = None

    def new_reply(self, target: Target) -> Message:
        self._reply = self._store.add_message(
            self._conversation_id, Role.ASSISTANT, "", MessageStatus.STREAMING, target.provider, target.model
        )
        self._writer = ReplyWriter(self._store, self._reply.id)
        return self._reply

    def resume_reply(self, reply: Message) -> Message:
        """Append to a truncated reply: the model is asked to go on, and its text joins the same message."""
        self._store.update_message(reply.id, error="")  # stays `truncated` (and in the history) until it ends
        self._reply = reply
        self._writer = ReplyWriter(self._store, reply.id, initial=reply.content)
        self._continuing = True
        return reply

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
        if self._continuing:
            extra = ChatMessage(Role.USER, CONTINUE_INSTRUCTION)
            return replace(built.request, messages=(*built.request.messages, extra))
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
                        if isinstance(event, Finish):
                            self._finish = event
                            continue
                        if isinstance(event, TextDelta):
                            self._writer.append(event.text)
                            for waited in self._writer.take_busy_periods():
                                yield Notice(_busy_line(waited))
                        elif isinstance(event, Usage):
                            self._writer.usage = event
                            built = self._builds.get(answering.provider)
                            if built is not None:
                                self._service._context.observe(built, event)
                        elif isinstance(event, Notice):
                            event = Notice(self._service.redact(event.text))
                        yield event
            except ProviderError as exc:
                if exc.kind is ErrorKind.CONTEXT_TOO_LONG and not compressed and not self._writer.text:
                    compressed = True
                    yield Notice(f"{answering.model} says the conversation is too long: summarizing older turns "
                                 "and trying once more")
                    if await self._recompress():
                        continue
                async for final in self._fail_settled(exc, answering):
                    yield final
                return
            except (asyncio.CancelledError, GeneratorExit):
                self._service._late_saves.close(self._writer, MessageStatus.CANCELLED)
                raise
            except StoreError:
                raise  # the store refused a write (a full disk): said in one line by the front end
            except Exception as exc:  # a bug, not a provider failure: keep the text, say what happened
                error = ProviderError(ErrorKind.TRANSIENT, f"internal error: {type(exc).__name__}: {exc}")
                async for final in self._fail_settled(error, answering):
                    yield final
                return
            break
        status, note = self._finished_status(answering)
        async for notice in self._settle(status, note):
            yield notice
        self._store.set_provider(self._conversation_id, answering.provider, answering.model)
        self._service._context.schedule_compression(self._conversation_id, self._spec, self._system)
        yield TurnFinished(self._reply.id, status, answering.provider, answering.model, note,
                           usage=self._writer.usage)

    def _finished_status(self, answering: Target) -> tuple[MessageStatus, str | None]:
        """A finished stream is complete unless the model hit its length limit or a content filter."""
        reason = self._finish.reason if self._finish else "stop"
        detail = self._finish.detail if self._finish else None
        if reason == "length":
            return MessageStatus.TRUNCATED, f"stopped at the length limit ({detail or reason})"
        if reason == "content_filter":
            return MessageStatus.FILTERED, f"stopped by {answering.provider}'s content filter ({detail or reason})"
        return MessageStatus.COMPLETE, None

    async def _recompress(self) -> bool:
        try:
            made = await self._service._context.compress(self._conversation_id, self._spec, self._system, force=True)
            self._builds = {self._spec.name: self._service._context.build(self._conversation_id, self._spec,
                                                                          self._system)}
        except (ProviderError, MessageTooLarge):
            return False
        return made is not None

    def fail(self, exc: ProviderError, answering: Target) -> TurnFinished:
        assert self._writer is not None
        finished = self._failure(exc, answering)
        self._writer.close(finished.status, error=finished.error)
        return finished

    async def _fail_settled(self, exc: ProviderError, answering: Target) -> AsyncGenerator[TurnEvent, None]:
        finished = self._failure(exc, answering)
        async for notice in self._settle(finished.status, finished.error):
            yield notice
        yield finished

    def _failure(self, exc: ProviderError, answering: Target) -> TurnFinished:
        assert self._reply is not None and self._writer is not None
        message = self._service.redact(str(exc))
        status = MessageStatus.INCOMPLETE if self._writer.text else MessageStatus.ERROR
        return TurnFinished(self._reply.id, status, answering.provider, answering.model, message, exc.kind,
                            self._writer.usage)

    async def _settle(self, status: MessageStatus, error: str | None) -> AsyncGenerator[Notice, None]:
        """The reply's final write. While another process holds the write lock this waits without blocking
        the event loop, says so once the lock timeout has passed, and writes as soon as the lock frees: the
        text is never dropped and the row never left `streaming` by a live process."""
        assert self._writer is not None
        told = False
        try:
            while not self._writer.try_close(status, error):
                waited = self._writer.busy_seconds
                if not told and waited >= self._service.settings.lock_timeout:
                    told = True
                    yield Notice(f"the database has been busy for {waited:.1f} s (another process holds its write "
                                 "lock): the reply is kept and saved as soon as the lock frees")
                await asyncio.sleep(RETRY_SECONDS)
        except (asyncio.CancelledError, GeneratorExit):  # Esc, a signal, a reader gone: ends now, saved later
            self._service._late_saves.close(self._writer, MessageStatus.CANCELLED)
            raise
        for waited in self._writer.take_busy_periods():
            if not told:
                yield Notice(_busy_line(waited))


async def reply_to(service: ChatService, conversation_id: str, user_id: str, target: Target, *,
                   title: bool = False, explicit: bool = False, resume: Message | None = None,
                   ) -> AsyncGenerator[TurnEvent, None]:
    """Answer the conversation as it stands (its last user message is `user_id`) with a new reply, or by
    appending to the truncated reply `resume`. `title`: name an untitled conversation afterwards;
    `explicit`: see `ChatService.send`."""
    spec = await service._learned_spec(target)
    system = service.system_prompt(conversation_id)
    try:
        built = await service._context.build_async(conversation_id, spec, system)
    except MessageTooLarge as exc:
        reason = f"the message is {exc.tokens:,} tokens; {target.model} takes at most {exc.limit:,}"
        refused = _refused(service, user_id, target, reason, ErrorKind.CONTEXT_TOO_LONG)  # stored before a
        yield MessageTooLong(user_id, exc.tokens, exc.limit)  # consumer that stops here (to truncate) moves on
        yield refused
        return
    except SystemPromptTooLarge as exc:
        yield _refused(service, user_id, target, str(exc), ErrorKind.CONTEXT_TOO_LONG)
        return
    except NothingToSend as exc:
        yield _refused(service, user_id, target, str(exc), ErrorKind.INVALID_REQUEST)
        return
    turn = Turn(service, conversation_id, spec, system, built)
    reply = turn.resume_reply(resume) if resume is not None else turn.new_reply(target)
    yield TurnStarted(conversation_id, user_id, reply.id, target.provider, target.model)
    if spec.kind is ProviderKind.LLAMACPP:  # a local model: wait for its load (Esc cancels) first
        load = service._pool.loading_state(target.provider)
        try:
            if load is None or load.state is not LoadState.READY:
                yield Notice(f"loading the local model {target.model}…")
            await service._pool.wait_ready(target.provider)
        except ProviderError as exc:
            yield turn.fail(exc, target)
            return
    if built.hint and service.first_hint(target.provider):
        yield SetupHint(built.hint)
    # aclosing: a consumer that stops early (a closed pipe) closes the turn now, while the store is open.
    async with aclosing(turn.run(service.settings.chain(target.provider, explicit=explicit))) as events:
        async for event in events:
            if title and isinstance(event, TurnFinished) and event.status is MessageStatus.COMPLETE:
                service._titles.schedule(conversation_id, Target(event.provider, event.model))
            yield event


def _refused(service: ChatService, user_id: str, target: Target, reason: str, kind: ErrorKind) -> TurnFinished:
    """No request could be built: the user's message stays, marked with why; nothing was sent."""
    service._store.update_message(user_id, status=MessageStatus.ERROR, error=reason)
    return TurnFinished("", MessageStatus.ERROR, target.provider, target.model, reason, kind)
