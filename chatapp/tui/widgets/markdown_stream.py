"""Rendering Markdown blocks with Rich (`render_block`), and the previous widget-per-block message.

`render_block` is how every block is drawn: the app's message widget (`message_view.MessageView`)
calls it for the blocks in the viewport only. `StreamingMarkdown` below is the previous design (a
widget per finished block, each rendered as it finishes); it is kept as the reference renderer that
``tests/tui/test_message_view.py`` compares the screen with, and for ``tests/benchmarks/widget_render.py``.

The previous design, as it was described:

Why this is hand-written rather than Textual's ``Markdown`` widget: that widget (even fed through
``MarkdownStream`` with coalesced writes) re-parses and re-lays-out a document that keeps growing, so
each write costs more than the last; DESIGN.md measured ~12 s for one 10,000-token reply. Here:

* The text is cut into top-level blocks as it arrives (`BlockSplitter`). A finished block is rendered
  once, as a Rich renderable inside its own `MarkdownBlock` (a ``Static``, whose lines Textual caches),
  and is never touched again. Only the live tail block is re-rendered.
* Deltas are coalesced: `StreamingMarkdown.append` only buffers; the buffer is parsed and the tail
  re-rendered at most `StreamingMarkdown.FRAME_INTERVAL` apart (30 fps), however fast deltas come.
* The tail stays small: `markdown_blocks.BlockSplitter` ends a block at a blank line or a heading,
  cuts fenced code every `CODE_CHUNK_LINES` lines and long tight lists before a top-level item
  (details and limits in that module).

Safety: every complete line goes through `chatapp.textsafe.visible` in the splitter (after line
endings are normalised on the accumulated text, so a CRLF split across two deltas stays one newline),
and again after the Markdown parser has decoded entities (``&#x202e;``). Text only ever reaches Rich
as a ``Markdown`` or ``Syntax`` renderable, never as console markup, so ``[/]`` and
``[@click=app.quit]`` show literally.
Links become terminal hyperlinks (OSC 8), never Textual ``@click`` actions.

Layout: the widget uses Textual's ``stream`` layout (see the .tcss), which keeps the placements of the
blocks above the tail, so a frame does not lay out every finished block again. Styles live in
``markdown_stream.tcss`` next to this module (`CSS_FILE`); add it to the app's ``CSS_PATH``.

Scrolling: put these widgets in a ``VerticalScroll`` and call its ``anchor()`` once; Textual then keeps
it at the bottom while the reply grows and lets go when the user scrolls up (and re-anchors at the
bottom). Give that container ``scrollbar-gutter: stable``: a scrollbar that appears narrows every
block, and each block renders again at the new width.

`StreamingMarkdown.text` is the raw text as received (escape sequences included), for copy and export.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from time import monotonic
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlsplit

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.padding import Padding
from rich.segment import Segment
from textual.app import ComposeResult
from textual.await_complete import AwaitComplete
from textual.theme import Theme
from textual.timer import Timer
from textual.widget import AwaitMount, Widget
from textual.widgets import Static

from chatapp.textsafe import visible
from chatapp.tui.widgets.markdown_blocks import CODE_CHUNK_LINES, LIST_CHUNK_LINES, Block, BlockSplitter

__all__ = [
    "CODE_CHUNK_LINES",
    "CSS_FILE",
    "LIST_CHUNK_LINES",
    "Block",
    "BlockSplitter",
    "MarkdownBlock",
    "StreamingMarkdown",
    "render_block",
]

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token
    from rich.markdown import Markdown

CSS_FILE = Path(__file__).with_suffix(".tcss")
"""The stylesheet for these widgets, for the app's ``CSS_PATH``."""

SEAL_EVERY = 16
"""Finished blocks merged into one widget at a time (see `MarkdownBlock.sealed`)."""
DARK_CODE_THEME = "monokai"
LIGHT_CODE_THEME = "friendly"


def _safe_markdown(markup: str, code_theme: str) -> RenderableType:
    """Rich ``Markdown`` with control characters made visible after entity decoding too.

    Imported here, not at module level: the Markdown parser (~35 ms) is not needed for the first paint.
    """
    markdown = _markdown(markup, code_theme)
    _sanitize_tokens(markdown.parsed)
    return markdown


_RICH_MARKDOWN_FIELDS = frozenset({
    "markup", "parsed", "code_theme", "justify", "style", "hyperlinks", "inline_code_lexer", "inline_code_theme",
})


@cache
def _shared_parser() -> MarkdownIt:
    from markdown_it import MarkdownIt

    return MarkdownIt().enable("strikethrough").enable("table")


@cache
def _rich_fields_match() -> bool:
    from rich.markdown import Markdown

    return frozenset(vars(Markdown(""))) == _RICH_MARKDOWN_FIELDS


def _markdown(markup: str, code_theme: str) -> Markdown:
    """A Rich ``Markdown`` parsed with one shared markdown-it parser.

    Rich builds a new parser for every document: 0.6 ms of the 0.9 ms a short block costs. Blocks
    share one here, filling in the fields Rich's constructor sets; if a Rich release changes those
    fields, Rich's own constructor is used instead.
    """
    from rich.markdown import Markdown

    if not _rich_fields_match():
        return Markdown(markup, code_theme=code_theme)
    markdown = Markdown.__new__(Markdown)
    markdown.markup = markup
    markdown.parsed = _shared_parser().parse(markup)
    markdown.code_theme = code_theme
    markdown.justify = None
    markdown.style = "none"
    markdown.hyperlinks = True
    markdown.inline_code_lexer = None
    markdown.inline_code_theme = code_theme
    return markdown


def parse_safe(markup: str) -> list[Token]:
    """The shared parser's tokens for `markup`, sanitized and with link targets shown, as they are drawn."""
    tokens = _shared_parser().parse(markup)
    _sanitize_tokens(tokens)
    return tokens


def _sanitize_tokens(tokens: Iterable[Token]) -> None:
    for token in tokens:
        token.content = visible(token.content)
        token.info = visible(token.info)
        for key, value in token.attrs.items():
            if isinstance(value, str):
                token.attrs[key] = visible(value)
        if token.children:
            _sanitize_tokens(token.children)
            token.children = _show_link_targets(token.children)


def _show_link_targets(children: list[Token]) -> list[Token]:
    """A link's text is followed by where it goes (its host; the whole target for other schemes) unless the
    text already says so, so `[click me](https://evil...)` cannot hide its address. Only http and https
    targets stay links; anything else (`javascript:`, `file:`) becomes plain text."""
    from markdown_it.token import Token

    result: list[Token] = []
    label: str | None = None  # inside a link: what to show after it
    neutered = False
    words: list[str] = []
    for token in children:
        if token.type == "link_open":
            href = str(token.attrs.get("href", ""))
            scheme = urlsplit(href).scheme.lower()
            neutered = scheme not in ("http", "https")
            label = href if neutered else (urlsplit(href).hostname or href)
            words = []
            if neutered:
                continue
        elif token.type == "link_close" and label is not None:
            if not neutered:
                result.append(token)
            if label not in "".join(words):
                result.append(Token("text", "", 0, content=f" ({label})"))
            label = None
            continue
        elif label is not None and token.type in ("text", "code_inline"):
            words.append(token.content)
        result.append(token)
    return result


def render_block(block: Block, code_theme: str) -> RenderableType:
    """The Rich renderable for one block."""
    renderable: RenderableType
    if block.kind == "code":
        code = block.text.rstrip() if block.last else block.text
        padding = (1 if block.first else 0, 1, 1 if block.last else 0, 1)
        language = block.language.partition(" ")[0] or "text"
        from rich.syntax import Syntax

        renderable = Syntax(code, language, theme=code_theme, word_wrap=True, padding=padding)
    else:
        renderable = _Trimmed(_safe_markdown(block.text, code_theme))
    return Padding(renderable, (1, 0, 0, 0)) if block.gap else renderable


class _Trimmed:
    """A renderable without its leading and trailing blank lines.

    Rich's ``Markdown`` starts a list or a table with a blank line (in a whole document it separates
    them from what came before) and draws a table with blank top and bottom edges; the spacing between
    blocks is `Block.gap`. Lines with a background colour (code block padding) are kept.
    """

    def __init__(self, renderable: RenderableType) -> None:
        self.renderable = renderable

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines = console.render_lines(self.renderable, options)
        start, end = 0, len(lines)
        while start < end and _blank(lines[start]):
            start += 1
        while end > start and _blank(lines[end - 1]):
            end -= 1
        new_line = Segment.line()
        for line in lines[start:end]:
            yield from line
            yield new_line


def _blank(line: list[Segment]) -> bool:
    return all(not text.strip() and (style is None or style.bgcolor is None) for text, style, _ in line)


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
