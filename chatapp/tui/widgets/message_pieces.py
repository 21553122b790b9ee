"""What a message view keeps of its text: finished blocks with their row counts, and the code in them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import chop_cells
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from chatapp.textsafe import visible
from chatapp.tui.widgets.block_rows import estimate_rows
from chatapp.tui.widgets.markdown_blocks import Block


@dataclass(frozen=True, slots=True)
class CodeBlock:
    """A fenced code block of a message, as the model sent it (for copy actions)."""

    language: str
    code: str


@dataclass(slots=True)
class Piece:
    """A finished block: its text, its estimated rows and, once drawn, its lines at one width (rendered by
    Rich, or `plain`: its source text in as many rows as estimated, while it only passes by)."""

    block: Block
    estimate_width: int = -1
    estimate: int = 0
    strips_width: int = -1
    strips: list[Strip] | None = None
    plain: bool = False
    renders: int = 0

    def rows(self, width: int) -> int:
        """Rows at `width`: exact once rendered at that width, else the estimate."""
        if self.strips is not None and self.strips_width == width:
            return len(self.strips)
        if self.estimate_width != width:
            self.estimate = estimate_rows(self.block, width)
            self.estimate_width = width
        return self.estimate

    def drawable(self, width: int) -> bool:
        """It has lines to draw at `width` (plain or rendered)."""
        return self.strips is not None and self.strips_width == width

    def exact(self, width: int) -> bool:
        """Rendered by Rich at `width`: its rows are the real ones."""
        return not self.plain and self.strips is not None and self.strips_width == width

    def draw_plain(self, width: int, style: Style) -> None:
        """Lines for a block that only passes by (a reply streaming faster than a screen a frame): its text
        cut to `width` cells and to the estimated rows, so the layout stays as estimated and nothing
        moves when Rich renders it once the stream slows or ends."""
        rows = self.rows(width)
        lines: list[str] = [""] if self.block.gap else []
        for line in visible(self.block.text).expandtabs(4).split("\n"):
            if len(lines) >= rows:
                break
            if line.isascii():
                lines.extend(line[start:start + width] for start in range(0, max(len(line), 1), width))
            else:
                lines.extend(chop_cells(line, width) or [""])
        del lines[rows:]
        lines.extend("" for _ in range(rows - len(lines)))
        self.strips = [Strip([Segment(line, style)]) for line in lines]
        self.strips_width = width
        self.plain = True


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
