"""chatapp's export formats: versioned JSON (everything a user owns, the schema is in the README) and
Markdown for reading (the current branch, one section per message).

Derived data (token counts, the search index, the summary cache) is not exported: it is rebuilt.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from typing import Any

from chatapp.domain import Role
from chatapp.store.context_records import ContextRecords
from chatapp.store.conversations import Store

EXPORT_FORMAT = "chatapp-export"
EXPORT_VERSION = 1


def conversation_record(store: Store, conversation_id: str) -> dict[str, Any]:
    """One conversation as the JSON schema's conversation object."""
    conversation = store.get_conversation(conversation_id)
    if conversation is None:
        raise KeyError(conversation_id)
    messages = [
        {
            "id": m.id,
            "parent": m.parent_id,
            "role": m.role.value,
            "content": m.content,
            "status": m.status.value,
            "provider": m.provider,
            "model": m.model,
            "usage": None if m.input_tokens is None and m.output_tokens is None
            else {"input_tokens": m.input_tokens, "output_tokens": m.output_tokens},
            "error": m.error,
            "created": m.created,
            "updated": m.updated,
        }
        for m in store.all_messages(conversation_id)
    ]
    summaries = [
        {"id": s.id, "first_message": s.first_message_id, "last_message": s.last_message_id, "content": s.content,
         "input_hash": s.input_hash, "provider": s.provider, "model": s.model, "created": s.created}
        for s in ContextRecords(store.connection).summaries(conversation_id)
    ]
    return {
        "id": conversation.id,
        "title": conversation.title if conversation.title_source else None,
        "title_source": conversation.title_source,
        "source": conversation.source_id,
        "created": conversation.created,
        "updated": conversation.updated,
        "provider": conversation.provider,
        "model": conversation.model,
        "meta": conversation.meta,
        "current_leaf": conversation.current_leaf,
        "messages": messages,
        "summaries": summaries,
    }


def json_chunks(store: Store, conversation_ids: Iterable[str]) -> Iterator[str]:
    """The export document, one conversation at a time (an export of everything is never held whole)."""
    yield f'{{\n  "format": "{EXPORT_FORMAT}",\n  "version": {EXPORT_VERSION},\n  "conversations": ['
    for index, conversation_id in enumerate(conversation_ids):
        record = json.dumps(conversation_record(store, conversation_id), ensure_ascii=False, indent=2)
        yield ("," if index else "") + "\n    " + record.replace("\n", "\n    ")
    yield "\n  ]\n}\n"


def markdown(store: Store, conversation_id: str) -> str:
    """The current branch for reading: a heading per message with its role, provider · model and status."""
    conversation = store.get_conversation(conversation_id)
    if conversation is None:
        raise KeyError(conversation_id)
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(conversation.created))
    lines = [f"# {conversation.display_title}", "", f"*{stamp} · {conversation.id}*", ""]
    for message in store.messages(conversation_id):
        heading = "User" if message.role is Role.USER else message.role.value.capitalize()
        source = " · ".join(x for x in (message.provider, message.model) if x)
        if message.role is Role.ASSISTANT and source:
            heading += f" · {source}"
        if message.status.value != "complete":
            heading += f" ({message.status.value})"
        lines += [f"## {heading}", "", message.content.rstrip(), ""]
    return "\n".join(lines)
