"""One reply as one widget that draws its own lines: a label row, finished blocks, a live tail, a note.

Why not a widget per block (the previous design): Textual lays out and composites every widget each
frame, and a ``Static`` holding a Rich renderable renders it as soon as it is laid out, visible or not.
Here a finished block is kept as text with a row count estimated without Rich (`block_rows`), and is
rendered by Rich only when a row of it is drawn or when the message list (`MessageList.settle`)
finds it touching the viewport before the frame is laid out. A long history message is not even cut
into blocks until it nears the viewport: until then its height is a rough count of its lines.

Textual's Line API: `render_line(y)` returns row ``y`` of the content; the message list decides which
rows are drawn. Rows carry their (column, row) offsets, so mouse selection works; `get_selection`
returns the selected text (the whole raw reply for select-all, without rendering anything).

The text itself (raw, deltas not parsed yet, finished pieces, live tail) is `message_text.MessageText`; this
widget lays it out and draws it. Safety is the renderer's (`markdown_render.render_block`): control characters
made visible, no markup.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from time import monotonic
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.geometry import Region, Size
from textual.selection import Selection
from textual.strip import Strip
from textual.theme import Theme
from textual.timer import Timer
from textual.widget import Widget

from chatapp.textsafe import visible
from chatapp.tui.widgets.block_rows import wrapped_rows
from chatapp.tui.widgets.markdown_render import DARK_CODE_THEME, LIGHT_CODE_THEME, render_block
from chatapp.tui.widgets.message_pieces import CodeBlock, LineLengths, Piece
from chatapp.tui.widgets.message_text import MessageText

__all__ = ["CodeBlock", "MessageView"]


def text_rows(text: str, width: int) -> int:
    """Rows of a label or note line (shown through `visible`) at `width`."""
    return wrapped_rows(visible(text), width) if text else 0


def unsplit_rows(label: str, lengths: LineLengths, note: str, width: int) -> int:
    """A message's rows before its text is cut into blocks: label, text wrapped by characters, note."""
    return text_rows(label, width) + lengths.rows(width) + text_rows(note, width)


class MessageView(Widget):
    """A Markdown message drawn line by line; finished blocks are rendered only when seen.

    Args:
        text: The text (a history message), or what a stream holds so far.
        streaming: More text will come through `append`, until `finish`.
        label: The row above the text (provider · model).
        code_theme: Pygments theme for code; by default one that suits the app theme's dark/light.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {"message-view--label", "message-view--note"}
    ALLOW_SELECT = True
    FRAME_INTERVAL: ClassVar[float] = 1 / 20
    """Minimum seconds between two renders of the live tail."""
    PASSING_QUIET: ClassVar[float] = 0.15
    """A stream this long without new text has paused: what is on screen stays, and is rendered by Rich."""

    def __init__(self, text: str = "", *, streaming: bool = False, label: str = "", code_theme: str | None = None,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._body = MessageText(text)
        self._streaming = streaming
        self._fixed_theme = code_theme
        self._label = label
        self._note = ""
        self._text_rows: dict[tuple[str, str, int], list[Strip]] = {}
        self._layout_key: tuple[int, int] = (-1, -1)
        self._starts: list[int] = []  # first row of each piece at `_layout_key`'s width
        self._version = 0  # bumped by every change that can change a row count
        self._rows_cache = (-1, -1, 0)
        self._timer: Timer | None = None
        self._flush_queued = False
        self._last_flush = 0.0
        self._theme: str | None = None
        self._painted = asyncio.Event()
        self._drawn_width = 0  # the content width rows were last drawn at
        self._style: Style | None = None
        self._frame_rows = 0  # rows the last frame added
        self.block_renders = 0
        self.late_renders = 0
        """Rich renders of finished blocks (the benchmark counts them)."""

    # --- text ---------------------------------------------------------------------------------------

    @property
    def text(self) -> str:
        """The raw Markdown received so far, as the model sent it (for copy and export)."""
        return self._body.raw

    def code_blocks(self) -> list[CodeBlock]:
        """The fenced code blocks of the message, in order, each as one piece of text."""
        if self._body.ensure_split():
            self._version += 1
        return self._body.code_blocks()

    @property
    def finished(self) -> bool:
        return not self._streaming

    @property
    def label(self) -> str:
        return self._label

    @property
    def note(self) -> str:
        """The line under the text (stopped, failed: why), or empty."""
        return self._note

    def set_label(self, label: str) -> None:
        if label != self._label:
            self._label = label
            self._changed()

    def restyle(self) -> None:
        """The classes changed: draw the label and note rows again in their new style."""
        self._text_rows.clear()
        self._style = None
        self.refresh()

    def set_note(self, note: str) -> None:
        if note != self._note:
            self._note = note
            self._changed()

    # --- streaming ------------------------------------------------------------------------------------

    def append(self, text: str) -> None:
        """Add a streamed delta. Cheap: parsing and rendering happen at most once per frame."""
        if not self._streaming:
            raise RuntimeError("append() after finish()")
        if text:
            self._body.add(text)
            self._schedule()

    def finish(self) -> None:
        """The stream ended: what is left becomes finished blocks."""
        if self._streaming:
            self._streaming = False
            self._schedule(now=True)

    async def wait_finished(self) -> None:
        """Wait until the finished reply has been laid out and painted."""
        await self._painted.wait()

    def on_mount(self) -> None:
        if self._fixed_theme is None:
            self.app.theme_changed_signal.subscribe(self, self._theme_changed)
        if self._streaming:
            self._body.split = True
            self._flush()
        else:
            self.call_after_refresh(self._painted.set)

    def _schedule(self, *, now: bool = False) -> None:
        if not self.is_mounted or self._flush_queued:
            return  # on_mount picks the text up; or a flush is coming anyway
        wait = self._last_flush + self.FRAME_INTERVAL - monotonic()
        if now or wait <= 0:
            if self._timer is not None:
                self._timer.stop()
                self._timer = None
            self._flush_queued = True
            self.call_later(self._flush)
        elif self._timer is None:
            self._timer = self.set_timer(max(wait, 0.001), self._flush, name="message-frame")

    def _flush(self) -> None:
        """Parse the buffered deltas into finished blocks and the tail."""
        self._timer = None  # (a pending timer was stopped when a flush was queued instead)
        self._flush_queued = False
        self._last_flush = monotonic()
        width = self._drawn_width
        from_row = self._piece_starts(width)[-1] if width and self._body.split else None  # where the tail starts
        rows_before = self.content_rows(width) if width else 0
        if not self._streaming:
            self.call_after_refresh(self._painted.set)
        if not self._body.parse(final=not self._streaming):
            return  # nothing changed
        self._changed(from_row, rows_before if width else None)
        self._frame_rows = self.content_rows(width) - rows_before if width else 0

    @property
    def passing_rows(self) -> int:
        """While streaming: the rows the last frame added. A frame that adds a screen of rows replaces
        everything on it, so the message list draws its finished blocks plain (`draw_plain_in`)."""
        if not (self._streaming or self._body.pending):  # (until the last text is in)
            return 0
        return self._frame_rows if self.quiet_for() < self.PASSING_QUIET else 0

    def quiet_for(self) -> float:
        """Seconds since the last frame of new text."""
        return monotonic() - self._last_flush

    def _ensure_split(self) -> None:
        if self._body.ensure_split():
            self._version += 1

    def _changed(self, from_row: int | None = None, rows_before: int | None = None) -> None:
        """The text changed (from content row `from_row` on, when known): lay out and repaint.

        Rows above `from_row` keep their rendered lines (a streamed reply changes only at its end). When the
        row count stays `rows_before` (most frames of a paced stream), only those rows are repainted: the
        layout, the list's settle pass and the scroll stay as they are."""
        self._version += 1
        if from_row is None or not self._drawn_width:
            self._text_rows.clear()
            self.refresh(layout=True)
        else:
            total = self.content_rows(self._drawn_width)
            rows = max(total, self.size.height) - from_row
            self.refresh(Region(0, from_row, self._drawn_width, max(rows, 1)), layout=total != rows_before)
        settle = getattr(self.parent, "settle_soon", None)
        if settle is not None:
            settle()

    # --- geometry -------------------------------------------------------------------------------------

    @property
    def is_split(self) -> bool:
        return self._body.split

    def _label_rows(self, width: int) -> int:
        return text_rows(self._label, width)

    def _note_rows(self, width: int) -> int:
        return text_rows(self._note, width)

    def content_rows(self, width: int) -> int:
        """The rows the message takes at `width`: exact for rendered blocks, estimated for the others."""
        width = max(width, 1)
        width_, version, rows = self._rows_cache
        if width_ == width and version == self._version:
            return rows
        if not self._body.split:
            rows = unsplit_rows(self._label, self._body.line_lengths(), self._note, width)
        else:
            tail = self._body.tail.rows(width) if self._body.tail is not None else 0
            rows = self._piece_starts(width)[-1] + tail + self._note_rows(width)
        self._rows_cache = (width, self._version, rows)
        return rows

    def _piece_starts(self, width: int) -> list[int]:
        """The first row of each piece, and where the tail starts (the last entry)."""
        key = (width, self._version)
        if self._layout_key != key:
            row = self._label_rows(width)
            starts = []
            for piece in self._body.pieces:
                starts.append(row)
                row += piece.rows(width)
            starts.append(row)
            self._starts = starts
            self._layout_key = key
        return self._starts

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return self.content_rows(width)

    def inexact_in(self, top: int, bottom: int, width: int, *, plain_ok: bool = False) -> list[tuple[int, int]]:
        """(first row, piece index) of the pieces in rows [top, bottom) not rendered by Rich (their height
        is an estimate); with `plain_ok`, not those drawn plain either.

        Index -1 stands for the whole unsplit message.
        """
        if not self._body.split:
            return [(0, -1)] if bottom > 0 else []
        starts = self._piece_starts(width)
        first = max(bisect_right(starts, top) - 1, 0)
        found = []
        for index in range(first, len(self._body.pieces)):
            start = starts[index]
            if start >= bottom:
                break
            piece = self._body.pieces[index]
            if not (piece.exact(width) or (plain_ok and piece.drawable(width))):
                found.append((start, index))
        return found

    def draw_plain_in(self, top: int, bottom: int, width: int) -> None:
        """Draw the pieces in rows [top, bottom) that have no lines yet as plain text (see `Piece.draw_plain`):
        the rows stay as estimated, and Rich renders them if they are still in view when the stream slows."""
        if not self._body.split:
            return
        starts = self._piece_starts(width)
        for index in range(max(bisect_right(starts, top) - 1, 0), len(self._body.pieces)):
            if starts[index] >= bottom:
                break
            piece = self._body.pieces[index]
            if not piece.drawable(width):
                piece.draw_plain(width, self._row_style)

    def make_exact(self, index: int, width: int) -> int:
        """Cut the message into blocks (index -1) or render one block; return the change in rows.

        The caller (the message list) has the message laid out and repainted.
        """
        before = self.content_rows(width)
        if index < 0:
            self._ensure_split()
        else:
            self._render_piece(self._body.pieces[index], width)
        self._version += 1
        return self.content_rows(width) - before

    def render_all(self, width: int) -> None:
        """Render every block at `width` (selection over the whole message)."""
        self._ensure_split()
        for piece in self._body.pieces:
            if not piece.exact(width):
                self._render_piece(piece, width)
        self._version += 1

    # --- rendering ------------------------------------------------------------------------------------

    @property
    def _row_style(self) -> Style:
        """`rich_style`, kept until the styles change: Textual computes it by walking every ancestor, and
        each drawn row needs it (a streamed reply draws a screen of rows per frame)."""
        if self._style is None:
            self._style = self.rich_style
        return self._style

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._style = None

    def _size_updated(self, size: Size, virtual_size: Size, container_size: Size, layout: bool = True) -> bool:
        """Textual repaints every row of a widget whose size changed; a streamed reply grows a row at a time
        at its end, so only the rows from the old end on are repainted (the text's own changes are marked
        by `_changed`). Pinned by ``tests/tui/test_textual_pins.py``."""
        old = self._size
        taller_or_shorter = old.width == size.width and old.height > 0 and old.height != size.height
        if not taller_or_shorter:
            return super()._size_updated(size, virtual_size, container_size, layout)
        self._size = size  # Textual marks the whole widget dirty only when this differs
        # (and setting `virtual_size` as a reactive would repaint it all: a leaf has no layout to redo)
        super()._size_updated(size, virtual_size, container_size, False)
        gutter = self.styles.gutter.height
        first = max(min(old.height, size.height) - gutter - 1, 0)
        self._set_dirty(Region(0, first, size.width, abs(size.height - old.height) + gutter + 2))
        return True

    @property
    def code_theme(self) -> str:
        if self._fixed_theme is not None:
            return self._fixed_theme
        try:
            dark = self.app.current_theme.dark
        except Exception:  # no running app yet
            dark = True
        return DARK_CODE_THEME if dark else LIGHT_CODE_THEME

    def _theme_changed(self, theme: Theme) -> None:
        if self.code_theme != self._theme:
            for piece in self._body.pieces:
                piece.strips, piece.strips_width = None, -1
            if self._body.tail is not None:
                self._body.tail.strips = None
            self._changed()

    def _render_piece(self, piece: Piece, width: int) -> None:
        theme = self.code_theme
        self._theme = theme
        console = self.app.console
        options = self.app.console_options.update(width=width, height=None, highlight=False)
        lines = console.render_lines(render_block(piece.block, theme), options, style=self._row_style, pad=True)
        piece.strips = [Strip(line, width) for line in lines]
        piece.strips_width = width
        piece.plain = False
        piece.renders += 1
        if piece is not self._body.tail:
            self.block_renders += 1

    def _text_strips(self, kind: str, text: str, width: int) -> list[Strip]:
        key = (kind, text, width)
        strips = self._text_rows.get(key)
        if strips is None:
            style = self.get_component_rich_style(f"message-view--{kind}")
            options = self.app.console_options.update(width=width, height=None, highlight=False)
            lines = self.app.console.render_lines(Text(visible(text), style=style), options,
                                                  style=self._row_style, pad=True)
            strips = [Strip(line, width) for line in lines]
            self._text_rows[key] = strips
        return strips

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        self._drawn_width = width
        strip = self._line(y, width)
        strip = strip.crop_extend(0, width, self._row_style)
        selection = self.text_selection
        if selection is not None:
            strip = self._highlight(strip, selection, y)
        return strip.apply_offsets(0, y)

    def warm_rows(self, first: int, last: int, width: int) -> None:
        """Prepare rows [first, last) as `render_line` draws them, while the user is idle: a row's selection
        offsets (Textual pickles one style per segment) cost more than rendering it, and a PageUp onto
        prepared rows finds them in the strips' caches."""
        if self._streaming or width != self.size.width:
            return
        style = self._row_style
        for y in range(max(first, 0), min(last, self.content_rows(width))):
            self._line(y, width).crop_extend(0, width, style).apply_offsets(0, y)

    def _line(self, y: int, width: int) -> Strip:
        self._ensure_split()
        label_rows = self._label_rows(width)
        if y < label_rows:
            return self._text_strips("label", self._label, width)[y]
        starts = self._piece_starts(width)
        if y >= starts[-1]:
            y -= starts[-1]
            tail = self._body.tail
            if tail is not None:
                if not tail.exact(width):
                    self._render_piece(tail, width)
                    self._tail_rows_check(tail, width)
                assert tail.strips is not None
                if y < len(tail.strips):
                    return tail.strips[y]
                y -= len(tail.strips)
            note = self._text_strips("note", self._note, width) if self._note else []
            return note[y] if y < len(note) else Strip.blank(width, self._row_style)
        index = bisect_right(starts, y) - 1
        piece = self._body.pieces[index]
        if not piece.drawable(width):
            # Drawn before the message list settled it (a resize, a jump): render now, lay out again.
            self.late_renders += 1
            estimate = piece.rows(width)
            self._render_piece(piece, width)
            if len(piece.strips or ()) != estimate:
                self._version += 1
                self.call_later(self.refresh, layout=True)
                settle = getattr(self.parent, "settle_soon", None)
                if settle is not None:
                    settle()
        assert piece.strips is not None
        row = y - starts[index]
        return piece.strips[row] if row < len(piece.strips) else Strip.blank(width, self._row_style)

    def _tail_rows_check(self, tail: Piece, width: int) -> None:
        assert tail.strips is not None
        if len(tail.strips) != tail.estimate or tail.estimate_width != width:
            tail.estimate, tail.estimate_width = len(tail.strips), width
            self._version += 1
            self.call_later(self.refresh, layout=True)

    def _highlight(self, strip: Strip, selection: Selection, y: int) -> Strip:
        span = selection.get_span(y)
        if span is None:
            return strip
        start, end = span
        if end == -1:
            end = strip.cell_length
        style = self.screen.get_component_rich_style("screen--selection")
        before, selected, after = strip.divide([start, end, strip.cell_length])
        return Strip.join([before, selected.apply_style(style), after])

    # --- selection ------------------------------------------------------------------------------------

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        if selection.start is None and selection.end is None:
            return self.text, "\n"  # select-all: the reply as sent, nothing to render
        width = self.size.width
        self.render_all(width)
        last = selection.end.y if selection.end is not None else self.content_rows(width) - 1
        lines = [self._line(y, width).text.rstrip() for y in range(last + 1)]
        return selection.extract("\n".join(lines)), "\n"

    def refresh_rows(self, first: int, count: int) -> None:
        self.refresh(Region(0, first, self.size.width, count))
