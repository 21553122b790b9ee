"""Names new conversations from their first exchange, as a background job behind every user turn."""

from __future__ import annotations

import asyncio
import contextlib

from chatapp.config import Settings
from chatapp.domain import ChatMessage, ChatRequest, MetaKey, ProviderKind, Role, Target
from chatapp.engine import Job, Priority, RequestEngine
from chatapp.store.conversations import Store
from chatapp.textsafe import visible

TITLE_PROMPT = (
    "Write a short title (at most 6 words) for the conversation below. Reply with the title only: "
    "no quotes, no trailing punctuation.\n\nUser: {user}\n\nAssistant: {assistant}"
)
_EXCERPT = 1500
_MAX_CHARS = 60


def clean_title(text: str) -> str | None:
    """One line, no quotes or markup, at most _MAX_CHARS; None when nothing usable is left."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    line = line.removeprefix("Title:").strip().strip("\"'`*#").strip().rstrip(".")
    line = visible(" ".join(line.split()))
    if not line:
        return None
    return line if len(line) <= _MAX_CHARS else line[: _MAX_CHARS - 1].rstrip() + "…"


class TitleMaker:
    def __init__(self, settings: Settings, store: Store, engine: RequestEngine) -> None:
        self._settings = settings
        self._store = store
        self._engine = engine
        self._tasks: set[asyncio.Task[None]] = set()

    def schedule(self, conversation_id: str, target: Target) -> None:
        conversation = self._store.get_conversation(conversation_id)
        if conversation is None or conversation.meta.get(MetaKey.TITLED) or conversation.message_count > 2:
            return
        if self._settings.provider(target.provider).kind is ProviderKind.LLAMACPP:
            return  # the small local models write poor titles: the first words serve better
        task = asyncio.create_task(self._make(conversation_id, target), name=f"title:{conversation_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _make(self, conversation_id: str, target: Target) -> None:
        messages = self._store.messages(conversation_id)
        user = next((m.content for m in messages if m.role is Role.USER), "")
        assistant = next((m.content for m in messages if m.role is Role.ASSISTANT), "")
        prompt = TITLE_PROMPT.format(user=user[:_EXCERPT], assistant=assistant[:_EXCERPT])
        job = Job(
            priority=Priority.BACKGROUND,
            chain=(target.provider,),
            build_request=lambda spec: ChatRequest(
                model=target.model if spec.name == target.provider else spec.model,
                messages=(ChatMessage(Role.USER, prompt),), max_tokens=24,
            ),
            label="title",
        )
        with contextlib.suppress(Exception):  # a title is a nicety: the first words stand in for it
            done = await self._engine.complete(job)
            title = clean_title(done.text)
            if title:
                self._store.set_title(conversation_id, title)
                self._store.update_meta(conversation_id, **{MetaKey.TITLED: True})

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
