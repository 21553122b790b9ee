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
_SCALAR = frozenset({"string", "number", "boolean", "null"})


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
    """The value that starts with this event, built from the events that follow. Hand-written rather than
    ijson's ObjectBuilder: its method call per event was two thirds of the time spent reading an export.
    A map's key always arrives just before its value, so no stack of keys is needed."""
    if event not in _OPEN:
        return value
    root: Any = {} if event == "start_map" else []
    containers: list[Any] = [root]
    top, in_map, key = root, event == "start_map", None
    for inner_event, inner_value in events:  # in order of frequency: keys, scalars, then structure
        if inner_event == "map_key":
            key = inner_value
        elif inner_event in _SCALAR:
            if in_map:
                top[key] = inner_value
            else:
                top.append(inner_value)
        elif inner_event == "start_map" or inner_event == "start_array":
            child: Any = {} if inner_event == "start_map" else []
            if in_map:
                top[key] = child
            else:
                top.append(child)
            containers.append(child)
            if outer + len(containers) > MAX_DEPTH:
                raise TooDeep(f"nested deeper than {MAX_DEPTH} levels")
            top, in_map = child, inner_event == "start_map"
        else:  # end_map, end_array
            containers.pop()
            if not containers:
                return root
            top = containers[-1]
            in_map = type(top) is dict
    return root  # the events ended inside the value: ijson raises before this for a cut file
