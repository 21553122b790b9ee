"""Regenerate, edit and resend, continue: turns that answer a conversation other than by a new message.

Conversations are trees: a regenerated reply or an edited prompt is added as a sibling of the one it
replaces on the screen (the current leaf moves back to their parent first); nothing is overwritten.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from chatapp.domain import MessageStatus, Role, Target, TurnEvent
from chatapp.service.turn import reply_to

if TYPE_CHECKING:
    from chatapp.service import ChatService


async def regenerate(service: ChatService, conversation_id: str, target: Target) -> AsyncIterator[TurnEvent]:
    path = service._store.messages(conversation_id)
    last_user = next((i for i in range(len(path) - 1, -1, -1) if path[i].role is Role.USER), None)
    if last_user is None:
        raise ValueError("there is no message to answer yet")
    service.branch_from(conversation_id, path[last_user].id)  # the new reply: a sibling of the old ones
    service._store.set_provider(conversation_id, target.provider, target.model)
    async for event in reply_to(service, conversation_id, path[last_user].id, target):
        yield event


async def edit_and_resend(service: ChatService, conversation_id: str, message_id: str, text: str, *,
                          provider: str | None, model: str | None) -> AsyncIterator[TurnEvent]:
    path = service._store.messages(conversation_id)
    index = next((i for i, m in enumerate(path) if m.id == message_id and m.role is Role.USER), None)
    if index is None:
        raise ValueError("only a message you wrote in this conversation can be edited")
    service.branch_from(conversation_id, path[index].parent_id)  # the new message: a sibling of the old
    async for event in service.send(conversation_id, text, provider=provider, model=model):
        yield event


async def continue_reply(service: ChatService, conversation_id: str, message_id: str,
                         target: Target) -> AsyncIterator[TurnEvent]:
    path = service._store.messages(conversation_id)
    if not path or path[-1].id != message_id or path[-1].status is not MessageStatus.TRUNCATED:
        raise ValueError("only the last reply, cut off at the length limit, can be continued")
    user = next(m for m in reversed(path) if m.role is Role.USER)
    async for event in reply_to(service, conversation_id, user.id, target, resume=path[-1]):
        yield event
