"""What a message view keeps of its text: finished blocks with their row counts, and the code in them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from textual.strip import Strip

from chatapp.tui.widgets.block_rows import estimate_rows
from chatapp.tui.widgets.markdown_blocks import Block


@dataclass(frozen=True, slots=True)
class CodeBlock:
    """A fenced code block of a message, as the model sent it (for copy actions)."""

    language: str
    code: str


@dataclass(slots=True)
class Piece:
    """A finished block: its text, its estimated rows and, once drawn, its rendered lines at one width."""

    block: Block
    estimate_width: int = -1
    estimate: int = 0
    strips_width: int = -1
    strips: list[Strip] | None = None
    renders: int = 0

    def rows(self, width: int) -> int:
        """Rows at `width`: exact once rendered at that width, else the estimate."""
        if self.strips is not None and self.strips_width == width:
            return len(self.strips)
        if self.estimate_width != width:
            self.estimate = estimate_rows(self.block, width)
            self.estimate_width = width
        return self.estimate

    def exact(self, width: int) -> bool:
        return self.strips is not None and self.strips_width == width


def code_blocks_of(blocks: Sequence[Block]) -> list[CodeBlock]:
    """The fenced code blocks among `blocks` (a fence cut into chunks is joined again), in order."""
    found: list[CodeBlock] = []
    current: list[str] = []
    language = ""
    for index, block in enumerate(blocks):
        if block.kind != "code":
            continue
        if block.first:
            current, language = [], block.language.partition(" ")[0]
        current.append(block.text)
        if block.last or index == len(blocks) - 1:
            found.append(CodeBlock(language, "\n".join(current).rstrip("\n")))
    return found


class LineLengths:
    """Rows of text not yet cut into blocks (each line wrapped by characters, blank lines kept).

    The line lengths are measured once: the rows at another width cost a pass over the long lines only
    (a resize re-counts every unmounted message of a long conversation)."""

    __slots__ = ("_lines", "_long")

    def __init__(self, text: str) -> None:
        lines = text.split("\n") if text else []
        self._lines = len(lines)
        self._long = sorted((len(line) for line in lines if len(line) > 1), reverse=True)

    def rows(self, width: int) -> int:
        width = max(width, 1)
        extra = 0
        for length in self._long:
            if length <= width:
                break
            extra += (length - 1) // width
        return self._lines + extra
