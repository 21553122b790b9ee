"""Batch input: JSONL, CSV with a prompt column, or plain lines, read one item at a time.

Never the whole file in memory: `read_items` is a generator over the open file, so a 100,000-line input
costs one line at a time. An item that cannot be understood (bad JSON, no prompt) is still an item: it
carries `problem` and goes to the dead-letter file without a request.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatapp.domain import ChatMessage, Role
from chatapp.textsafe import storable as sanitize

FORMATS = ("jsonl", "csv", "lines")
_ROLES = {"user": Role.USER, "assistant": Role.ASSISTANT}

# Turns an item's prompt and fields into (system prompt, final user text): a template, or nothing.
PromptShaper = Callable[[str, dict[str, str]], tuple[str | None, str]]


@dataclass(frozen=True, slots=True)
class BatchItem:
    seq: int  # 0-based position in the input: the key of the item's state
    item_id: str  # the input's id, or the line number
    messages: tuple[ChatMessage, ...] = ()
    system: str | None = None
    problem: str | None = None  # why the item cannot be sent

    @property
    def text(self) -> str:
        return "\n".join(m.content for m in self.messages)


class InputError(Exception):
    """The input as a whole is unusable (missing file, unknown format, CSV without the column)."""


def detect_format(path: Path, given: str | None = None) -> str:
    if given:
        if given not in FORMATS:
            raise InputError(f"unknown input format {given!r} (use {', '.join(FORMATS)})")
        return given
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    return "lines"


def read_items(path: Path, fmt: str, *, column: str = "prompt",
               shape: PromptShaper | None = None) -> Iterator[BatchItem]:
    """Yield the input's items in order. Raises InputError before the first item if the file is unusable."""
    try:
        handle = path.open(encoding="utf-8", errors="replace", newline="")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        if fmt == "jsonl":
            rows: Iterator[tuple[str | None, dict[str, Any] | None, str | None]] = _jsonl_rows(handle)
        elif fmt == "csv":
            rows = _csv_rows(handle, column, path)
        else:
            rows = ((None, {"prompt": line.rstrip("\r\n")}, None) for line in handle if line.strip())
        for seq, (item_id, record, problem) in enumerate(rows):
            yield _item(seq, item_id, record, problem, shape)


def _jsonl_rows(handle: Any) -> Iterator[tuple[str | None, dict[str, Any] | None, str | None]]:
    for line in handle:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            yield None, None, f"not JSON: {exc}"
            continue
        if not isinstance(record, dict):
            yield None, None, "a line must be a JSON object"
            continue
        raw_id = record.get("id")
        yield (None if raw_id is None else str(raw_id)), record, None


def _csv_rows(handle: Any, column: str, path: Path) -> Iterator[tuple[str | None, dict[str, Any] | None, str | None]]:
    reader = csv.DictReader(handle)
    if reader.fieldnames is None or column not in reader.fieldnames:
        found = ", ".join(reader.fieldnames or []) or "none"
        raise InputError(f"{path}: no {column!r} column (columns: {found}); pick one with --column")
    for row in reader:
        raw_id = row.get("id")
        yield (raw_id or None), {**row, "prompt": row.get(column) or ""}, None


def _item(seq: int, item_id: str | None, record: dict[str, Any] | None, problem: str | None,
          shape: PromptShaper | None) -> BatchItem:
    ident = sanitize(item_id) if item_id else str(seq + 1)
    if record is None:
        return BatchItem(seq, ident, problem=problem)
    system: str | None = None
    if isinstance(record.get("messages"), list):
        messages: list[ChatMessage] = []
        for message in record["messages"]:
            if not isinstance(message, dict) or not isinstance(message.get("content"), str):
                return BatchItem(seq, ident, problem="each message needs a role and a text content")
            role = message.get("role")
            if role == "system":
                system = sanitize(message["content"])
            elif role in _ROLES:
                messages.append(ChatMessage(_ROLES[role], sanitize(message["content"])))
            else:
                return BatchItem(seq, ident, problem=f"unknown message role {role!r}")
        if not messages or messages[-1].role is not Role.USER:
            return BatchItem(seq, ident, problem="the last message must be the user's")
        return BatchItem(seq, ident, tuple(messages), system)
    prompt = record.get("prompt")
    if not isinstance(prompt, str):
        return BatchItem(seq, ident, problem='no "prompt" (or "messages") in the item')
    if shape is not None:
        fields = {k: str(v) for k, v in record.items() if isinstance(v, str | int | float) and k != "id"}
        try:
            system, prompt = shape(prompt, fields)
        except Exception as exc:  # a template error names the item's missing or bad variable
            return BatchItem(seq, ident, problem=f"template: {exc}")
    if not prompt.strip():
        return BatchItem(seq, ident, problem="the prompt is empty")
    return BatchItem(seq, ident, (ChatMessage(Role.USER, sanitize(prompt)),), system)
