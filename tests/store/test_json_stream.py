"""The streaming reader that imports use: values built exactly as json.loads builds them, depth bounded."""

import io
import json

import pytest

from chatapp.store.json_stream import MAX_DEPTH, TooDeep, top_level_items


def test_items_are_built_as_json_loads_builds_them():
    items = [{"a": [1, [2.5, {"b": None}], {}], "c": {"d": [], "e": "x"}, "a2": True}, 3, "s", [], {}, [[{"k": [1]}]]]
    data = json.dumps(items).encode()
    assert [value for _, _, value in top_level_items(io.BytesIO(data))] == items


def test_an_object_yields_its_members_and_the_items_of_its_arrays():
    data = b'{"format": "f", "conversations": [{"m": [1, {"n": [true]}]}, {}], "version": 1}'
    assert list(top_level_items(io.BytesIO(data))) == [
        ("member", "format", "f"), ("item", "conversations", {"m": [1, {"n": [True]}]}),
        ("item", "conversations", {}), ("member", "version", 1)]


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 100_000])
def test_nesting_deeper_than_the_limit_inside_an_item_is_refused(depth):
    data = b"[" + b'{"a":' * depth + b"1" + b"}" * depth + b"]"
    with pytest.raises(TooDeep):
        list(top_level_items(io.BytesIO(data)))


def test_nesting_up_to_the_limit_is_read():
    depth = MAX_DEPTH - 1
    data = b"[" + b"[" * depth + b"]" * depth + b"]"
    [(_, _, value)] = list(top_level_items(io.BytesIO(data)))
    for _ in range(depth - 1):
        [value] = value
    assert value == []
