"""ChatService: the one facade the TUI and the CLI use. It owns the store, the providers and a turn's life.

A turn: the user message is committed before any network call; the reply is written to the store while
it streams (flushed at least every FLUSH_SECONDS) and ends with a final status, whatever happens.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from chatapp.config import Settings
from chatapp.domain import (
    ChatMessage,
    ChatRequest,
    Conversation,
    ErrorKind,
    Finish,
    Message,
    MessageStatus,
    ProviderError,
    Role,
    TextDelta,
    TurnEvent,
    TurnFinished,
    TurnStarted,
    Usage,
)
from chatapp.providers.registry import Availability, ProviderPool
from chatapp.store.conversations import Store

FLUSH_SECONDS = 0.25
_HISTORY_STATUSES = (MessageStatus.COMPLETE, MessageStatus.CANCELLED)


@dataclass(frozen=True, slots=True)
class Target:
    """Where the next turn goes."""

    provider: str
    model: str


class ChatService:
    def __init__(self, settings: Settings, store: Store, pool: ProviderPool | None = None) -> None:
        self.settings = settings
        self.store = store
        self.pool = pool or ProviderPool(settings)
        self._secrets = self._collect_secrets()
        self.store.close_streaming()

    @classmethod
    def open(cls, settings: Settings) -> ChatService:
        return cls(settings, Store.open(settings.paths.database))

    async def aclose(self) -> None:
        await self.pool.aclose()
        self.store.close()

    # --- providers ---------------------------------------------------------------------------

    def providers(self) -> list[Availability]:
        return self.pool.all()

    @property
    def default_provider(self) -> str | None:
        return self.settings.default_provider

    def target_for(self, conversation_id: str | None, provider: str | None = None,
                   model: str | None = None) -> Target:
        """Explicit choice, else the conversation's last provider, else the default."""
        conversation = self.store.get_conversation(conversation_id) if conversation_id else None
        if provider is None and conversation is not None and conversation.provider in self.settings.providers:
            provider = conversation.provider
            model = model or conversation.model
        spec = self.settings.provider(provider)
        return Target(spec.name, model or spec.model)

    def warm_provider(self, name: str | None = None) -> None:
        """Import the SDK a provider needs. Blocking: call it from a worker thread after first paint."""
        module = self.pool.sdk_module(name or self.default_provider or "")
        if module:
            __import__(module)

    # --- conversations -----------------------------------------------------------------------

    def conversations(self, limit: int | None = None) -> list[Conversation]:
        return self.store.list_conversations(limit)

    def conversation(self, id_or_prefix: str) -> Conversation | None:
        return self.store.find_conversation(id_or_prefix)

    def latest_conversation(self) -> Conversation | None:
        return self.store.latest_conversation()

    def messages(self, conversation_id: str) -> list[Message]:
        return self.store.messages(conversation_id)

    # --- a turn ------------------------------------------------------------------------------

    async def send(
        self, conversation_id: str | None, text: str, *, provider: str | None = None, model: str | None = None
    ) -> AsyncIterator[TurnEvent]:
        """Run one turn and yield its events. Cancel the consuming task to cancel the turn."""
        target = self.target_for(conversation_id, provider, model)
        if conversation_id is None:
            conversation_id = self.store.create_conversation(target.provider, target.model).id
        else:
            self.store.set_provider(conversation_id, target.provider, target.model)
        user = self.store.add_message(conversation_id, Role.USER, text)
        reply = self.store.add_message(
            conversation_id, Role.ASSISTANT, "", MessageStatus.STREAMING, target.provider, target.model
        )
        yield TurnStarted(conversation_id, user.id, reply.id, target.provider, target.model)
        writer = _ReplyWriter(self.store, reply.id)
        try:
            request = self._build_request(conversation_id, target, exclude=reply.id)
            provider_impl = self.pool.get(target.provider)
            async for event in provider_impl.stream(request):
                if isinstance(event, TextDelta):
                    writer.append(event.text)
                elif isinstance(event, Usage):
                    writer.usage = event
                elif isinstance(event, Finish):
                    writer.finish_reason = event.reason
                yield event
        except ProviderError as exc:
            message = self.redact(str(exc))
            status = MessageStatus.INCOMPLETE if writer.text else MessageStatus.ERROR
            writer.close(status, error=message)
            yield TurnFinished(reply.id, status, target.provider, target.model, message, exc.kind, writer.usage)
            return
        except (asyncio.CancelledError, GeneratorExit):
            writer.close(MessageStatus.CANCELLED)
            raise
        except Exception as exc:  # a bug, not a provider failure: keep the text, say what happened
            message = self.redact(f"internal error: {type(exc).__name__}: {exc}")
            writer.close(MessageStatus.ERROR, error=message)
            yield TurnFinished(reply.id, MessageStatus.ERROR, target.provider, target.model, message,
                               ErrorKind.TRANSIENT, writer.usage)
            return
        writer.close(MessageStatus.COMPLETE)
        yield TurnFinished(reply.id, MessageStatus.COMPLETE, target.provider, target.model, usage=writer.usage)

    def _build_request(self, conversation_id: str, target: Target, exclude: str) -> ChatRequest:
        history = [
            ChatMessage(m.role, m.content)
            for m in self.store.messages(conversation_id)
            if m.id != exclude and m.content and (m.role is Role.USER or m.status in _HISTORY_STATUSES)
        ]
        return ChatRequest(model=target.model, messages=tuple(history))

    # --- secrets -----------------------------------------------------------------------------

    def _collect_secrets(self) -> tuple[str, ...]:
        keys = {spec.resolve_api_key(self.settings.environ) for spec in self.settings.providers.values()}
        return tuple(sorted((k for k in keys if k and len(k) >= 6), key=len, reverse=True))

    def redact(self, text: str) -> str:
        """Secrets never reach the store, exports or logs: every error text passes through here."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


class _ReplyWriter:
    """Accumulates a streaming reply and flushes it to the store at most every FLUSH_SECONDS."""

    def __init__(self, store: Store, message_id: str) -> None:
        self._store = store
        self._message_id = message_id
        self._parts: list[str] = []
        self._last_flush = time.monotonic()
        self._dirty = False
        self.usage: Usage | None = None
        self.finish_reason: str | None = None

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def append(self, text: str) -> None:
        self._parts.append(text)
        self._dirty = True
        now = time.monotonic()
        if now - self._last_flush >= FLUSH_SECONDS:
            self._flush(now)

    def _flush(self, now: float) -> None:
        self._store.update_message(self._message_id, content=self.text)
        self._last_flush = now
        self._dirty = False

    def close(self, status: MessageStatus, error: str | None = None) -> None:
        usage = self.usage
        self._store.update_message(
            self._message_id,
            content=self.text,
            status=status,
            error=error,
            input_tokens=usage.input_tokens if usage else None,
            output_tokens=usage.output_tokens if usage else None,
        )
