"""Cut Markdown arriving in arbitrary pieces into finished top-level blocks and a live tail.

Pure text work (no Textual, no Rich): `message_view.MessageView` keeps the blocks, `markdown_render.render_block`
draws one, `block_rows` counts its rows without drawing it.

The tail stays small. A block ends at a blank line outside a fenced code block, and a heading line
is a block by itself. A fenced code block that starts a block is cut every `CODE_CHUNK_LINES` lines
into finished chunks, each a ``Syntax`` in the fence's language, drawn with no gap between them (the
trade-off: the lexer restarts at a chunk boundary, so a construct open across one, such as a long
docstring, may be coloured differently after it). A tight list longer than `LIST_CHUNK_LINES` lines
is cut before a top-level item (an ordered list continues its numbering: Rich honours ``start``).
Not bounded: very long tables and paragraphs, and fences nested in list items (rare in replies).

Every complete line goes through `chatapp.textsafe.visible` after line endings are normalised on the
accumulated text (a CRLF split across two deltas stays one newline).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from chatapp.textsafe import storable, visible

CODE_CHUNK_LINES = 16
"""A growing fenced code block is finished in chunks of this many lines."""
LIST_CHUNK_LINES = 32
"""A tight list at least this long is cut before its next top-level item."""

_FENCE_OPEN = re.compile(r"^(?P<indent>[ ]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_HEADING = re.compile(r"^[ ]{0,3}#{1,6}(?:[ \t]|$)")
_LIST_ITEM = re.compile(r"^(?:(?P<bullet>[-*+])|\d{1,9}(?P<delim>[.)]))(?:[ \t]|$)")


@dataclass(frozen=True, slots=True)
class Block:
    """One top-level block of sanitized Markdown source, or one chunk of a fenced code block."""

    kind: Literal["markdown", "code"]
    text: str
    language: str = ""
    gap: bool = True
    """A blank line separates this block from the one before."""
    first: bool = True
    """For code: the first chunk of its fence (padded above)."""
    last: bool = True
    """For code: the last chunk of its fence (padded below, trailing blank lines dropped)."""


@dataclass(frozen=True, slots=True)
class _Fence:
    char: str
    length: int
    indent: int

    @classmethod
    def opening(cls, line: str) -> tuple[_Fence, str] | None:
        """The fence a line opens and its info string, if it opens one."""
        match = _FENCE_OPEN.match(line)
        if match is None:
            return None
        fence, info = match["fence"], match["info"]
        if fence[0] == "`" and "`" in info:
            return None  # inline code such as ```x```, not a fence
        return cls(fence[0], len(fence), len(match["indent"])), info.strip()

    def closes(self, line: str) -> bool:
        stripped = line.strip(" ")
        indent = len(line) - len(line.lstrip(" "))
        return indent <= self.indent + 3 and len(stripped) >= self.length and stripped == self.char * len(stripped)


class BlockSplitter:
    """Cut Markdown arriving in arbitrary pieces into finished top-level blocks and a live tail.

    The work is done line by line on complete lines, so the blocks depend only on the text, never
    on how it was split into deltas.
    """

    def __init__(self, code_chunk_lines: int = CODE_CHUNK_LINES, list_chunk_lines: int = LIST_CHUNK_LINES) -> None:
        self.code_chunk_lines = code_chunk_lines
        self.list_chunk_lines = list_chunk_lines
        self._partial = ""  # raw text after the last line break
        self._lines: list[str] = []  # the current Markdown block
        self._blank = False  # a blank line followed the current block's content
        self._fence: _Fence | None = None  # an open fence (inside `_lines`, or a code block)
        self._code: list[str] | None = None  # lines of an open code block not yet finished
        self._language = ""
        self._code_chunks = 0
        self._emitted = 0
        self._continued = False  # the next block continues the last one (no gap)
        self._out: list[Block] = []

    def feed(self, text: str) -> list[Block]:
        """Add text; return the blocks it finished."""
        data = self._partial + text
        hold_cr = data.endswith("\r")  # a "\n" may follow in the next piece
        if hold_cr:
            data = data[:-1]
        if "\r" in data:
            data = data.replace("\r\n", "\n").replace("\r", "\n")
        *lines, partial = data.split("\n")
        self._partial = partial + "\r" if hold_cr else partial
        for line in lines:
            self._line(_clean(line))
        if self._blank and partial[:1] not in ("", " ", "\t") and self._fence is None:
            # The next line is not indented, so the block before the blank line is finished: end it
            # now rather than re-render it with the new line's text until that line is complete.
            self._emit_markdown()
        return self._take()

    def finish(self) -> list[Block]:
        """End of text: return the remaining blocks."""
        partial, self._partial = self._partial.rstrip("\r"), ""
        if partial:
            self._line(_clean(partial))
        if self._code is not None:
            self._emit_code(last=True)
        else:
            self._emit_markdown()
        return self._take()

    def tail(self) -> Block | None:
        """The unfinished block, including the incomplete last line, as it stands."""
        partial = _clean(self._partial.rstrip("\r"))
        gap = self._emitted > 0 and not self._continued
        if self._code is not None:
            lines = [*self._code, partial] if partial else self._code
            first = self._code_chunks == 0
            return Block("code", "\n".join(lines), self._language, gap, first, last=True)
        lines = self._lines
        if partial:
            lines = [*lines, "", partial] if self._blank else [*lines, partial]
        return Block("markdown", "\n".join(lines), gap=gap) if lines else None

    def _take(self) -> list[Block]:
        out, self._out = self._out, []
        return out

    def _line(self, line: str) -> None:
        if self._code is not None:
            assert self._fence is not None
            if self._fence.closes(line):
                self._emit_code(last=True)
            else:
                self._code.append(line)
                if len(self._code) > self.code_chunk_lines:
                    # (One line is kept back so that the last chunk is never empty.)
                    self._emit_code(last=False)
            return
        if self._fence is not None:  # a fence inside a Markdown block, e.g. in a list item
            self._lines.append(line)
            if self._fence.closes(line):
                self._fence = None
            return
        if not line.strip():
            self._blank = bool(self._lines)
            return
        indented = line[0] in " \t"
        if self._blank:
            self._blank = False
            if indented:  # a list item's continuation, or an indented code block
                self._lines.append("")
            else:
                self._emit_markdown()
        opened = _Fence.opening(line)
        if opened is not None and (not self._lines or not indented) and opened[0].indent <= 3:
            self._emit_markdown()
            self._fence, self._language = opened
            self._code, self._code_chunks = [], 0
            return
        if opened is not None:
            self._fence = opened[0]
        elif _HEADING.match(line) and (not self._lines or not indented):
            self._emit_markdown()
            self._lines.append(line)
            self._emit_markdown()
            return
        elif len(self._lines) >= self.list_chunk_lines and _same_list(self._lines[0], line):
            self._emit_markdown()
            self._continued = True
        self._lines.append(line)

    def _emit_markdown(self) -> None:
        if self._lines:
            self._out.append(Block("markdown", "\n".join(self._lines), gap=self._gap()))
            self._lines = []
        self._blank = False
        self._fence = None

    def _emit_code(self, *, last: bool) -> None:
        assert self._code is not None
        first = self._code_chunks == 0
        lines = self._code if last else self._code[: self.code_chunk_lines]
        self._out.append(Block("code", "\n".join(lines), self._language, self._gap(), first, last))
        self._code_chunks += 1
        if last:
            self._code, self._fence = None, None
        else:
            self._code = self._code[self.code_chunk_lines :]
            self._continued = True

    def _gap(self) -> bool:
        gap = self._emitted > 0 and not self._continued
        self._emitted += 1
        self._continued = False
        return gap


def _clean(line: str) -> str:
    return visible(storable(line))


def _same_list(first: str, line: str) -> bool:
    a, b = _LIST_ITEM.match(first), _LIST_ITEM.match(line)
    return a is not None and b is not None and (a["bullet"], a["delim"]) == (b["bullet"], b["delim"])
