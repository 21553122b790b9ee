"""What a message view holds of its text, apart from drawing it: the raw text as the model sent it, the
deltas not parsed yet, and, once the text is cut into blocks, its finished pieces and the live tail.

A history message is cut lazily (when it nears the viewport); until then its rows are a rough count of
its lines (`line_lengths`). A stream is cut a frame at a time (`parse`)."""

from __future__ import annotations

from chatapp.tui.widgets.markdown_blocks import BlockSplitter
from chatapp.tui.widgets.message_pieces import CodeBlock, LineLengths, Piece, code_blocks_of


class MessageText:
    def __init__(self, text: str = "") -> None:
        self._raw: list[str] = [text] if text else []
        self._pending: list[str] = list(self._raw)
        self._splitter = BlockSplitter()
        self._line_lengths: LineLengths | None = None
        self.split = False
        """Cut into pieces (`pieces`, `tail`)."""
        self.pieces: list[Piece] = []
        self.tail: Piece | None = None

    @property
    def raw(self) -> str:
        """The text received so far, as the model sent it (for copy and export)."""
        if len(self._raw) > 1:
            self._raw[:] = ["".join(self._raw)]
        return self._raw[0] if self._raw else ""

    @property
    def pending(self) -> bool:
        """Text arrived that is not parsed yet."""
        return bool(self._pending)

    def add(self, delta: str) -> None:
        self._raw.append(delta)
        self._pending.append(delta)
        self._line_lengths = None

    def parse(self, *, final: bool) -> bool:
        """Cut the pending text into finished pieces and the tail (`final`: the stream ended, so what is left
        is finished too). Whether anything a reader sees changed."""
        self.split = True
        blocks = self._splitter.feed("".join(self._pending))
        self._pending.clear()
        if final:
            blocks += self._splitter.finish()
        self.pieces.extend(Piece(block) for block in blocks)
        tail = None if final else self._splitter.tail()
        if tail is None:
            self.tail = None
        elif self.tail is None or self.tail.block != tail:
            self.tail = Piece(tail)
        elif not blocks:
            return False
        return True

    def ensure_split(self) -> bool:
        """Cut a history message into its pieces if it is not yet; whether it was cut now."""
        if self.split:
            return False
        self.split = True
        blocks = self._splitter.feed("".join(self._pending)) + self._splitter.finish()
        self._pending.clear()
        self.pieces = [Piece(block) for block in blocks]
        return True

    def line_lengths(self) -> LineLengths:
        """For the rough rows of text not cut yet."""
        if self._line_lengths is None:
            self._line_lengths = LineLengths(self.raw)
        return self._line_lengths

    def code_blocks(self) -> list[CodeBlock]:
        """The fenced code blocks, in order, each as one piece of text."""
        self.ensure_split()
        blocks = [piece.block for piece in self.pieces]
        if self.tail is not None:
            blocks.append(self.tail.block)
        return code_blocks_of(blocks)
