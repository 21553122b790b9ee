"""Read a big JSON file one array item at a time, with a nesting limit.

ijson's prefix-based readers (`items`, `parse`) build a prefix string per event whose length grows with
the nesting depth: a hostile file of 100,000 `[` took 22 GB before the parser saw the end. This reader
uses ijson's prefix-free event stream and refuses anything nested deeper than MAX_DEPTH.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

import ijson

MAX_DEPTH = 64
_OPEN = {"start_map": "map", "start_array": "array"}
_CLOSE = {"end_map", "end_array"}


class TooDeep(ValueError):
    pass


def top_level_items(handle: IO[bytes]) -> Iterator[tuple[str, str | None, Any]]:
    """Yields ("item", None, value) for each item of a top-level array, ("item", key, value) for each item of
    an array that is a member of a top-level object, and ("member", key, value) for a top-level object's
    scalar members. Values are built whole; everything else is only walked."""
    events = ijson.basic_parse(handle, use_float=True)
    stack: list[str] = []
    key: str | None = None
    for event, value in events:
        in_item_position = stack == ["array"] or (stack == ["map", "array"])
        if in_item_position and event not in _CLOSE:
            yield "item", (key if stack == ["map", "array"] else None), _build(event, value, events, len(stack))
            continue
        if stack == ["map"] and event == "map_key":
            key = value
        elif stack == ["map"] and event not in _OPEN and event not in _CLOSE:
            yield "member", key, value
        if event in _OPEN:
            stack.append(_OPEN[event])
            if len(stack) > MAX_DEPTH:
                raise TooDeep(f"nested deeper than {MAX_DEPTH} levels")
        elif event in _CLOSE:
            stack.pop()


def _build(event: str, value: Any, events: Iterator[tuple[str, Any]], outer: int) -> Any:
    if event not in _OPEN:
        return value
    builder = ijson.ObjectBuilder()
    builder.event(event, value)
    depth = 1
    for inner_event, inner_value in events:
        builder.event(inner_event, inner_value)
        if inner_event in _OPEN:
            depth += 1
            if outer + depth > MAX_DEPTH:
                raise TooDeep(f"nested deeper than {MAX_DEPTH} levels")
        elif inner_event in _CLOSE:
            depth -= 1
            if depth == 0:
                break
    return builder.value
