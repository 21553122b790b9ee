"""ChatGPT's data export (`conversations.json`) as chatapp conversation records.

The file is an array of conversations. Each has `title`, `create_time`, `update_time`, an id
(`conversation_id` or `id`), `current_node`, and `mapping`: node id → {`id`, `message`, `parent`,
`children`}. A node's `message` may be null (the root ChatGPT creates); otherwise it has `author.role`
(user, assistant, system, tool), `content` (`content_type` "text" or "multimodal_text" with `parts`,
where a part is a string or an object such as an image pointer; "code" and others with `text`),
`create_time`, `status`, and `metadata` (`model_slug`, `is_visually_hidden_from_conversation`).

Kept: user and assistant messages with text. Skipped and counted: system, tool and hidden messages and
those with nothing to show; their children are attached to the nearest kept ancestor, so the tree and the
current branch survive.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

SOURCE_PREFIX = "chatgpt:"
_KEPT_ROLES = {"user", "assistant"}


class NotChatGPT(ValueError):
    """The object is not a ChatGPT conversation."""


@dataclass
class Skipped:
    system: int = 0
    tool: int = 0
    hidden: int = 0
    empty: int = 0

    def add(self, other: Skipped) -> None:
        self.system += other.system
        self.tool += other.tool
        self.hidden += other.hidden
        self.empty += other.empty

    @property
    def total(self) -> int:
        return self.system + self.tool + self.hidden + self.empty


def conversation_record(item: Any, skipped: Skipped) -> dict[str, Any]:
    """One ChatGPT conversation as a record of chatapp's export schema (see export_format)."""
    if not isinstance(item, dict) or not isinstance(item.get("mapping"), dict):
        raise NotChatGPT("it has no `mapping` of messages")
    source = item.get("conversation_id") or item.get("id")
    if not isinstance(source, str) or not source:
        raise NotChatGPT("it has no conversation id")
    mapping: dict[str, Any] = item["mapping"]
    kept: dict[str, dict[str, Any]] = {}
    for node_id, node in mapping.items():
        message = _message(node, skipped)
        if message is not None:
            kept[node_id] = message
    order = _tree_order(mapping)
    new_ids = {node_id: _new_id() for node_id in kept}
    messages = []
    for node_id in order:
        if node_id not in kept:
            continue
        parent = _kept_ancestor(mapping, mapping[node_id].get("parent"), kept)
        message = kept[node_id]
        message["id"] = new_ids[node_id]
        message["parent"] = new_ids[parent] if parent else None
        messages.append(message)
    created = _time(item.get("create_time")) or (messages[0]["created"] if messages else 0.0)
    updated = _time(item.get("update_time")) or created
    leaf = _kept_ancestor(mapping, item.get("current_node"), kept)
    leaf_id = new_ids[leaf] if leaf else (messages[-1]["id"] if messages else None)
    title = item.get("title") if isinstance(item.get("title"), str) and item.get("title") else None
    model = item.get("default_model_slug") if isinstance(item.get("default_model_slug"), str) else None
    return {
        "id": _new_id(), "title": title, "title_source": "imported" if title else None,
        "source": SOURCE_PREFIX + source, "created": created, "updated": updated, "provider": "chatgpt",
        "model": model, "meta": {}, "current_leaf": leaf_id, "messages": messages, "summaries": [],
    }


def _message(node: Any, skipped: Skipped) -> dict[str, Any] | None:
    if not isinstance(node, dict):
        raise NotChatGPT("a mapping entry is not an object")
    message = node.get("message")
    if message is None:
        return None  # the structural root
    if not isinstance(message, dict):
        raise NotChatGPT("a message is not an object")
    author = _object(message.get("author"))
    role = author.get("role")
    metadata = _object(message.get("metadata"))
    if role == "system":
        skipped.system += 1
        return None
    if role not in _KEPT_ROLES:
        skipped.tool += 1
        return None
    if metadata.get("is_visually_hidden_from_conversation"):
        skipped.hidden += 1
        return None
    text = _text(message.get("content"))
    if not text.strip():
        skipped.empty += 1
        return None
    created = _time(message.get("create_time")) or 0.0
    status = "complete" if message.get("status") in (None, "finished_successfully") else "incomplete"
    model = metadata.get("model_slug") if isinstance(metadata.get("model_slug"), str) else None
    return {
        "role": role, "content": text, "status": status,
        "provider": "chatgpt" if role == "assistant" else None, "model": model if role == "assistant" else None,
        "usage": None, "error": None, "created": created, "updated": _time(message.get("update_time")) or created,
    }


def _new_id() -> str:
    """12 random hex digits, like the store's ids (uuid4's object took a tenth of the conversion time)."""
    return os.urandom(6).hex()


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(content: Any) -> str:
    if not isinstance(content, dict):
        return ""
    parts = content.get("parts")
    if isinstance(parts, list):
        pieces = []
        for part in parts:
            if isinstance(part, str):
                pieces.append(part)
            elif isinstance(part, dict):
                kind = part.get("content_type") or "attachment"
                pieces.append(f"[{kind.replace('_', ' ') if isinstance(kind, str) else 'attachment'} not imported]")
        return "\n\n".join(p for p in pieces if p)
    text = content.get("text")
    return text if isinstance(text, str) else ""


def _time(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _kept_ancestor(mapping: dict[str, Any], node_id: Any, kept: dict[str, Any]) -> str | None:
    seen: set[str] = set()
    while isinstance(node_id, str) and node_id in mapping and node_id not in seen:
        if node_id in kept:
            return node_id
        seen.add(node_id)
        node_id = mapping[node_id].get("parent")
    return None


def _tree_order(mapping: dict[str, Any]) -> list[str]:
    """Every node, parents before children (depth first from each root, children by creation time);
    nodes caught in a parent cycle come last, in file order."""
    children: dict[str | None, list[str]] = {}
    for node_id, node in mapping.items():
        parent = node.get("parent")
        children.setdefault(parent if isinstance(parent, str) and parent in mapping else None, []).append(node_id)

    def created(node_id: str) -> float:
        message = mapping[node_id].get("message")
        stamp = message.get("create_time") if isinstance(message, dict) else None
        return float(stamp) if isinstance(stamp, int | float) else 0.0

    order: list[str] = []
    seen: set[str] = set()
    stack = list(reversed(sorted(children.get(None, []), key=created)))
    while stack:
        node_id = stack.pop()
        if node_id in seen:
            continue
        seen.add(node_id)
        order.append(node_id)
        stack.extend(reversed(sorted(children.get(node_id, []), key=created)))
    order.extend(node_id for node_id in mapping if node_id not in seen)
    return order
