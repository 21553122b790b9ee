"""The previous message widget (a widget per finished block), kept as the reference renderer: the screen
text of `chatapp.tui.widgets.message_view.MessageView` is compared with it (``test_message_view.py``), and
``tests/benchmarks/widget_render.py`` measures it. The app no longer uses it.

The design, as it was described:

Why this is hand-written rather than Textual's ``Markdown`` widget: that widget (even fed through
``MarkdownStream`` with coalesced writes) re-parses and re-lays-out a document that keeps growing, so
each write costs more than the last; DESIGN.md measured ~12 s for one 10,000-token reply. Here:

* The text is cut into top-level blocks as it arrives (`BlockSplitter`). A finished block is rendered
  once, as a Rich renderable inside its own `MarkdownBlock` (a ``Static``, whose lines Textual caches),
  and is never touched again. Only the live tail block is re-rendered.
* Deltas are coalesced: `StreamingMarkdown.append` only buffers; the buffer is parsed and the tail
  re-rendered at most `StreamingMarkdown.FRAME_INTERVAL` apart, however fast deltas come.
* Layout: the widget uses Textual's ``stream`` layout (see ``previous_renderer.tcss``), which keeps the
  placements of the blocks above the tail, so a frame does not lay out every finished block again.

`StreamingMarkdown.text` is the raw text as received (escape sequences included).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from time import monotonic
from typing import ClassVar

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from textual.app import ComposeResult
from textual.await_complete import AwaitComplete
from textual.theme import Theme
from textual.timer import Timer
from textual.widget import AwaitMount, Widget
from textual.widgets import Static

from chatapp.tui.widgets.markdown_blocks import Block, BlockSplitter
from chatapp.tui.widgets.markdown_render import DARK_CODE_THEME, LIGHT_CODE_THEME, render_block

CSS_FILE = Path(__file__).with_suffix(".tcss")
"""The stylesheet for these widgets."""

SEAL_EVERY = 16
"""Finished blocks merged into one widget at a time (see `MarkdownBlock.sealed`)."""


class _RenderOnce:
    """A renderable's segments, memoised per width.

    Textual renders a ``Static``'s Rich renderable once to measure its height and again to paint it;
    with this a block costs one render (a finished block: once per width, ever).
    """

    def __init__(self, renderable: RenderableType) -> None:
        self.renderable = renderable
        self._width = -1
        self._segments: list[Segment] = []

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if options.max_width != self._width:
            # Blocks have a natural height: ignore the height Textual may pass (Padding would pad to it).
            self._segments = list(console.render(self.renderable, options.update(height=None)))
            self._width = options.max_width
        return self._segments

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.renderable)


class MarkdownBlock(Static):
    """Finished blocks (or the live tail) of a `StreamingMarkdown`, rendered as Rich renderables."""

    def __init__(self, blocks: Sequence[Block], code_theme: str, *, classes: str | None = None,
                 renderable: _RenderOnce | None = None) -> None:
        self.blocks = tuple(blocks)
        self.code_theme = code_theme
        self.builds = 1
        """How many times the renderable was built (tests check finished blocks stay at 1)."""
        self.once = renderable or self._renderable()
        super().__init__(self.once, markup=False, classes=classes)

    @classmethod
    def sealed(cls, parts: Sequence[MarkdownBlock]) -> MarkdownBlock:
        """One widget for several finished blocks, reusing what each has rendered already.

        Textual re-arranges every child widget on each layout refresh, so a reply of hundreds of
        blocks would cost more per frame as it grows; sealing keeps the widget count bounded.
        """
        once = _RenderOnce(Group(*(part.once for part in parts)))
        blocks = [block for part in parts for block in part.blocks]
        return cls(blocks, parts[0].code_theme, renderable=once)

    def _renderable(self) -> RenderableType:
        if len(self.blocks) == 1:
            return _RenderOnce(render_block(self.blocks[0], self.code_theme))
        return _RenderOnce(Group(*(render_block(block, self.code_theme) for block in self.blocks)))

    def show(self, blocks: Sequence[Block], code_theme: str | None = None) -> None:
        """Replace the blocks (or the code theme) and re-render."""
        self.blocks = tuple(blocks)
        self.code_theme = code_theme or self.code_theme
        self.builds += 1
        self.update(self._renderable())


class StreamingMarkdown(Widget):
    """One Markdown message: built from complete text, or streamed with `append` and `finish`.

    Args:
        markdown: The text (a history message), or what a stream holds so far.
        streaming: More text will come through `append`, until `finish`. If false the text is
            complete and is rendered once, as one static child, with no live tail.
        code_theme: Pygments theme for code; by default one that suits the app theme's dark/light.
    """

    FRAME_INTERVAL: ClassVar[float] = 1 / 20
    """Minimum seconds between two renders of the live tail."""

    def __init__(
        self,
        markdown: str = "",
        *,
        streaming: bool = False,
        code_theme: str | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._raw: list[str] = [markdown] if markdown else []
        self._pending: list[str] = list(self._raw)
        self._finishing = not streaming
        self._fixed_theme = code_theme
        self._splitter = BlockSplitter()
        self._tail: MarkdownBlock | None = None
        self._tail_block: Block | None = None
        self._timer: Timer | None = None
        self._flush_queued = False
        self._last_flush = 0.0
        self._ready = False  # on_mount ran: timers may be set
        self._rendered = asyncio.Event()
        self._unsealed: list[MarkdownBlock] = []  # finished single-block widgets not yet sealed

    @property
    def text(self) -> str:
        """The raw Markdown received so far (as the model sent it, for copy and export)."""
        if len(self._raw) > 1:
            self._raw[:] = ["".join(self._raw)]
        return self._raw[0] if self._raw else ""

    @property
    def finished(self) -> bool:
        """`finish` was called (or the widget was built from complete text)."""
        return self._finishing

    @property
    def code_theme(self) -> str:
        """The Pygments theme used for code blocks."""
        if self._fixed_theme is not None:
            return self._fixed_theme
        try:
            dark = self.app.current_theme.dark
        except Exception:  # no running app yet
            dark = True
        return DARK_CODE_THEME if dark else LIGHT_CODE_THEME

    def append(self, text: str) -> None:
        """Add a streamed delta. Cheap: rendering happens at most once per frame."""
        if self._finishing:
            raise RuntimeError("append() after finish()")
        if text:
            self._raw.append(text)
            self._pending.append(text)
            self._schedule()

    def finish(self) -> None:
        """The stream ended: render what is left as finished blocks."""
        if not self._finishing:
            self._finishing = True
            self._schedule(now=True)

    async def wait_finished(self) -> None:
        """Wait until `finish` has been processed and the last blocks are mounted and painted."""
        await self._rendered.wait()

    def compose(self) -> ComposeResult:
        theme = self.code_theme
        blocks = self._splitter.feed("".join(self._pending))
        self._pending.clear()
        if self._finishing:
            blocks += self._splitter.finish()
            if blocks:
                yield MarkdownBlock(blocks, theme)
            return
        for block in blocks:
            yield MarkdownBlock([block], theme)
        self._tail = MarkdownBlock([], theme, classes="-tail")
        self._show_tail(self._splitter.tail())
        yield self._tail

    def on_mount(self) -> None:
        self._ready = True
        if self._fixed_theme is None:
            self.app.theme_changed_signal.subscribe(self, self._theme_changed)
        if self._pending or (self._finishing and self._tail is not None):
            self._schedule(now=True)
        elif self._finishing:
            self.call_after_refresh(self._rendered.set)

    def _theme_changed(self, theme: Theme) -> None:
        code_theme = self.code_theme
        for block in self.query(MarkdownBlock):
            if block.code_theme != code_theme and block.blocks:
                block.show(block.blocks, code_theme)

    def _schedule(self, *, now: bool = False) -> None:
        if not self._ready or self._tail is None or self._flush_queued:
            return  # compose or on_mount picks the text up; or a flush is coming anyway
        wait = self._last_flush + self.FRAME_INTERVAL - monotonic()
        if now or wait <= 0:
            if self._timer is not None:
                self._timer.stop()
                self._timer = None
            self._flush_queued = True
            self.call_later(self._flush)
        elif self._timer is None:
            self._timer = self.set_timer(max(wait, 0.001), self._flush, name="markdown-frame")

    def _flush(self) -> None:
        """Parse the buffered deltas, mount newly finished blocks, re-render the tail."""
        self._timer = None  # (a pending timer was stopped when a flush was queued instead)
        self._flush_queued = False
        self._last_flush = monotonic()
        tail = self._tail
        if tail is None:
            return
        blocks = self._splitter.feed("".join(self._pending))
        self._pending.clear()
        finishing = self._finishing
        if finishing:
            blocks += self._splitter.finish()
        theme = self.code_theme
        mounted = None
        if blocks:
            fresh = [MarkdownBlock([block], theme) for block in blocks]
            mounted = self.mount_all(fresh, before=tail)
            self._unsealed.extend(fresh)
            self._seal()
        if finishing:
            self._tail = None
            self.call_later(self._settle, mounted, tail.remove())
        else:
            self._show_tail(self._splitter.tail())

    def _seal(self) -> None:
        """Merge the oldest finished blocks into one widget once enough have piled up."""
        while len(self._unsealed) >= 2 * SEAL_EVERY:
            group, self._unsealed = self._unsealed[:SEAL_EVERY], self._unsealed[SEAL_EVERY:]
            self.mount(MarkdownBlock.sealed(group), before=group[0])
            for part in group:
                part.remove()

    def _show_tail(self, block: Block | None) -> None:
        assert self._tail is not None
        if block == self._tail_block:
            return
        self._tail_block = block
        if block is None:
            self._tail.display = False
            return
        self._tail.show([block], self.code_theme)
        self._tail.display = True

    async def _settle(self, mounted: AwaitMount | None, removed: AwaitComplete) -> None:
        if mounted is not None:
            await mounted
        await removed
        self.call_after_refresh(self._rendered.set)
