"""Just enough of the GGUF format to vet a model file before llama.cpp sees it.

llama.cpp answers every bad file (missing, truncated, not a GGUF) with the same opaque
"failed to load model", so we check the magic bytes and read the header ourselves: that gives the
user a one-line reason, and gives the runtime the facts it needs to pick defaults (the trained
context length, whether the file carries a chat template) without loading the weights.

Only the key/value header is read, through a memory map; tensor data is never touched. Values we do
not want are stepped over, so even a 262k-entry tokenizer vocabulary costs ~0.07 s (and, unlike
one read() per value, does not stall the event loop while it runs in a background thread).
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GGUF_MAGIC = b"GGUF"

# GGUF value types -> struct format of a scalar (strings and arrays are handled apart).
_SCALARS: dict[int, str] = {
    0: "<B",  # uint8
    1: "<b",  # int8
    2: "<H",  # uint16
    3: "<h",  # int16
    4: "<I",  # uint32
    5: "<i",  # int32
    6: "<f",  # float32
    7: "<?",  # bool
    10: "<Q",  # uint64
    11: "<q",  # int64
    12: "<d",  # float64
}
_INTEGERS = frozenset({0, 1, 2, 3, 4, 5, 10, 11})
_STRING = 8
_ARRAY = 9
_MAX_KEY = 1 << 16  # a key longer than this means the header is corrupt
_MAX_STRING = 1 << 26  # 64 MiB: far beyond any real template or name


class GGUFError(ValueError):
    """The file is not a readable GGUF model; the message is one line for the user."""


@dataclass(frozen=True, slots=True)
class GGUFInfo:
    """The header facts chatapp uses. Absent keys are None."""

    version: int
    architecture: str | None
    name: str | None
    context_length: int | None
    has_chat_template: bool
    numbers: dict[str, int] = field(default_factory=dict, repr=False)  # every integer scalar in the header

    def kv_cache_bytes(self, n_ctx: int) -> int | None:
        """Upper bound of llama.cpp's f16 KV cache for `n_ctx` tokens, or None when the header lacks a fact.

        Sliding-window models (Gemma 3) use less; that is fine for a "will it fit" check.
        """
        arch = self.architecture
        if not arch:
            return None
        layers = self.numbers.get(f"{arch}.block_count")
        heads = self.numbers.get(f"{arch}.attention.head_count")
        kv_heads = self.numbers.get(f"{arch}.attention.head_count_kv", heads)
        embedding = self.numbers.get(f"{arch}.embedding_length")
        head_dim = embedding // heads if embedding and heads else None
        key_len = self.numbers.get(f"{arch}.attention.key_length", head_dim)
        value_len = self.numbers.get(f"{arch}.attention.value_length", head_dim)
        if not (layers and kv_heads and key_len and value_len):
            return None
        return n_ctx * layers * kv_heads * (key_len + value_len) * 2


def check_magic(path: Path) -> None:
    """Raise GGUFError unless `path` is a readable regular file that starts with b"GGUF"."""
    if not path.exists():
        raise GGUFError(f"model file not found: {path}")
    if not path.is_file():
        raise GGUFError(f"model path is not a file: {path}")
    try:
        with path.open("rb") as file:
            head = file.read(4)
    except OSError as exc:
        raise GGUFError(f"cannot read model file {path}: {exc.strerror or exc}") from None
    if head != GGUF_MAGIC:
        raise GGUFError(f"not a GGUF model file (it does not start with 'GGUF'): {path}")


def read_info(path: Path) -> GGUFInfo:
    """Read the header of a GGUF file. Raises GGUFError for anything llama.cpp would reject early."""
    check_magic(path)
    try:
        with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as view:
            return _Reader(view).info()
    except GGUFError as exc:
        raise GGUFError(f"{exc}: {path}") from None
    except (OSError, ValueError, struct.error, UnicodeDecodeError) as exc:
        raise GGUFError(f"damaged GGUF header ({exc}): {path}") from None


_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_STRUCTS = {kind: struct.Struct(fmt) for kind, fmt in _SCALARS.items()}


class _Reader:
    """A cursor over the memory-mapped file: no read() per value, so the 262k-string vocabulary of
    a Gemma file is walked in ~0.1 s without the I/O round trips that stalled the event loop."""

    def __init__(self, view: mmap.mmap) -> None:
        self.view = view
        self.size = len(view)
        self.pos = 4  # after the magic, checked already

    def info(self) -> GGUFInfo:
        version = self.scalar(_U32)
        if version not in (2, 3):
            raise GGUFError(f"unsupported GGUF version {version}")
        self.scalar(_U64)  # tensor count
        kv_count = self.scalar(_U64)
        texts: dict[str, str] = {}
        numbers: dict[str, int] = {}
        has_template = False
        for _ in range(kv_count):
            key = self.string(_MAX_KEY)
            kind = self.scalar(_U32)
            if key == "tokenizer.chat_template":
                has_template = True
            if key in ("general.architecture", "general.name") and kind == _STRING:
                texts[key] = self.string(_MAX_STRING)
            elif kind in _INTEGERS:
                numbers[key] = self.scalar(_STRUCTS[kind])
            else:
                self.skip(kind)
        arch = texts.get("general.architecture")
        ctx = numbers.get(f"{arch}.context_length") if arch else None
        return GGUFInfo(
            version=version,
            architecture=arch,
            name=texts.get("general.name"),
            context_length=ctx if ctx and ctx > 0 else None,
            has_chat_template=has_template,
            numbers=numbers,
        )

    def scalar(self, layout: struct.Struct) -> Any:
        end = self.pos + layout.size
        if end > self.size:
            raise GGUFError("truncated GGUF header")
        (value,) = layout.unpack_from(self.view, self.pos)
        self.pos = end
        return value

    def string(self, limit: int) -> str:
        length = self.scalar(_U64)
        if length > limit:
            raise GGUFError("damaged GGUF header (implausible string length)")
        end = self.pos + length
        if end > self.size:
            raise GGUFError("truncated GGUF header")
        text = self.view[self.pos:end].decode("utf-8")
        self.pos = end
        return text

    def advance(self, count: int) -> None:
        self.pos += count
        if self.pos > self.size:
            raise GGUFError("truncated GGUF header")

    def skip(self, kind: int) -> None:
        if kind in _STRUCTS:
            self.advance(_STRUCTS[kind].size)
        elif kind == _STRING:
            length = self.scalar(_U64)
            if length > _MAX_STRING:
                raise GGUFError("damaged GGUF header (implausible string length)")
            self.advance(length)
        elif kind == _ARRAY:
            item_kind = self.scalar(_U32)
            count = self.scalar(_U64)
            if item_kind in _STRUCTS:
                self.advance(_STRUCTS[item_kind].size * count)
            elif item_kind == _STRING:
                self.skip_strings(count)
            else:
                for _ in range(count):
                    self.skip(item_kind)
        else:
            raise GGUFError(f"damaged GGUF header (unknown value type {kind})")

    def skip_strings(self, count: int) -> None:
        view, pos, size, unpack = self.view, self.pos, self.size, _U64.unpack_from
        for _ in range(count):
            if pos + 8 > size:
                raise GGUFError("truncated GGUF header")
            (length,) = unpack(view, pos)
            if length > _MAX_STRING:
                raise GGUFError("damaged GGUF header (implausible string length)")
            pos += 8 + length
        self.pos = pos
        if pos > size:
            raise GGUFError("truncated GGUF header")
