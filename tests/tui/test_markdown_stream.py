"""Block splitting and text safety (through the previous widget, `previous_renderer.StreamingMarkdown`, which
renders every block with the app's `render_block`), and that widget's incremental rendering."""

from __future__ import annotations

import random
from collections import Counter

import previous_renderer as ms
import pytest
from previous_renderer import CSS_FILE, MarkdownBlock, StreamingMarkdown
from rich.console import Console, ConsoleOptions
from rich.segment import Segment
from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.geometry import Region

from chatapp.tui.widgets import markdown_render
from chatapp.tui.widgets.markdown_blocks import Block, BlockSplitter

REPLY = """# Streaming test

Intro paragraph with `inline code`, **bold** and a [link](https://example.com).
A second line of the same paragraph.

## Steps
1. First step
2. Second step

3. Third step, after a blank line
   with a continuation line

   and a second paragraph in the item
4. Fourth step

- bullet one
- bullet two

```python
def hello(name: str) -> str:

    # a blank line above, inside the fence
    return f"hello {name}"
```

| Column | Value |
|--------|------:|
| alpha  |     1 |
| beta   |    22 |

~~~~
a tilde fence holding a backtick fence:
```
still inside
```
~~~~

> a quote
### Last heading
Closing words.
"""


def split(text: str, rng: random.Random, most: int = 7) -> list[str]:
    """Cut text into pieces of 1..most characters."""
    pieces, i = [], 0
    while i < len(text):
        n = rng.randint(1, most)
        pieces.append(text[i : i + n])
        i += n
    return pieces


def blocks_of(text: str, pieces: list[str] | None = None, **kwargs: int) -> list[Block]:
    splitter = BlockSplitter(**kwargs)
    blocks: list[Block] = []
    for piece in pieces if pieces is not None else [text]:
        blocks += splitter.feed(piece)
    return blocks + splitter.finish()


# --- block splitting -----------------------------------------------------------------------------


def test_blocks_follow_markdown_structure() -> None:
    blocks = blocks_of(REPLY)
    texts = [b.text for b in blocks]
    assert texts[0] == "# Streaming test"
    assert texts[1].startswith("Intro paragraph") and texts[1].endswith("same paragraph.")
    assert texts[2] == "## Steps"  # a heading is a block at its newline
    assert texts[3] == "1. First step\n2. Second step"
    # The item's indented continuation after a blank line stays with its item.
    assert texts[4] == (
        "3. Third step, after a blank line\n   with a continuation line\n\n"
        "   and a second paragraph in the item\n4. Fourth step"
    )
    assert texts[5] == "- bullet one\n- bullet two"
    code = blocks[6]
    assert code.kind == "code" and code.language == "python" and code.first and code.last
    assert code.text == (
        'def hello(name: str) -> str:\n\n    # a blank line above, inside the fence\n    return f"hello {name}"'
    )
    assert texts[7].startswith("| Column | Value |") and texts[7].endswith("|    22 |")
    assert blocks[8].kind == "code"
    assert blocks[8].text == "a tilde fence holding a backtick fence:\n```\nstill inside\n```"
    assert texts[9] == "> a quote"
    assert texts[10] == "### Last heading"
    assert texts[11] == "Closing words."
    assert len(blocks) == 12
    assert [b.gap for b in blocks] == [False] + [True] * 11


def test_fence_interrupting_a_paragraph_and_unclosed_fence() -> None:
    blocks = blocks_of("Here it is:\n```js\nlet a = 1;\n\nlet b = 2;")
    assert [(b.kind, b.text) for b in blocks] == [
        ("markdown", "Here it is:"),
        ("code", "let a = 1;\n\nlet b = 2;"),
    ]
    assert blocks[1].language == "js"


def test_blocks_do_not_depend_on_how_text_was_split() -> None:
    whole = blocks_of(REPLY, code_chunk_lines=3, list_chunk_lines=2)
    rng = random.Random(7)
    for _ in range(30):
        assert blocks_of(REPLY, split(REPLY, rng), code_chunk_lines=3, list_chunk_lines=2) == whole


def test_crlf_split_across_deltas_is_one_newline() -> None:
    assert blocks_of("", ["para one\r", "\ncontinues\r", "\n\r", "\npara two\r"]) == blocks_of(
        "para one\ncontinues\n\npara two"
    )


def test_long_code_block_is_finished_in_chunks() -> None:
    code = "\n".join(f"x{i} = {i}" for i in range(40))
    splitter = BlockSplitter(code_chunk_lines=16)
    finished = splitter.feed(f"Intro\n\n```python\n{code}\n")
    assert [(b.kind, b.text.count("\n") + 1 if b.kind == "code" else b.text) for b in finished] == [
        ("markdown", "Intro"),
        ("code", 16),
        ("code", 16),
    ]
    tail = splitter.tail()
    assert tail is not None and tail.kind == "code" and tail.text.count("\n") + 1 == 8
    # At 32 lines the second chunk was not finished yet: one line is kept back, so that a fence
    # closing right at a chunk boundary does not leave an empty last chunk.
    assert [b.text.count("\n") + 1 for b in blocks_of("```\n" + "\n".join("x" * 32) + "\n```")] == [16, 16]
    assert [b.text.count("\n") + 1 for b in blocks_of("```\n" + "\n".join("x" * 33) + "\n```")] == [16, 16, 1]
    assert not tail.first and tail.last and not tail.gap
    rest = splitter.feed("```\nAfter.\n") + splitter.finish()
    chunks = [*finished[1:], rest[0]]
    assert "\n".join(b.text for b in chunks) == code
    assert [(b.first, b.last, b.gap, b.language) for b in chunks] == [
        (True, False, True, "python"),
        (False, False, False, "python"),
        (False, True, False, "python"),
    ]
    assert rest[1].text == "After." and rest[1].gap


def test_long_tight_list_is_cut_before_an_item_and_keeps_numbering() -> None:
    items = "\n".join(f"{n}. item {n}" for n in range(1, 8))
    blocks = blocks_of(items, list_chunk_lines=3)
    assert [b.text.splitlines()[0] for b in blocks] == ["1. item 1", "4. item 4", "7. item 7"]
    assert [b.gap for b in blocks] == [False, False, False]


def test_tail_shows_the_partial_line() -> None:
    splitter = BlockSplitter()
    assert splitter.feed("Hello wor") == []
    assert splitter.tail() == Block("markdown", "Hello wor", gap=False)
    assert splitter.feed("ld\n\nNext") == [Block("markdown", "Hello world", gap=False)]
    assert splitter.tail() == Block("markdown", "Next", gap=True)


# --- the widget ----------------------------------------------------------------------------------


class MarkdownApp(App[None]):
    CSS_PATH = CSS_FILE
    # As in the chat view: a scrollbar that appears would change the width and re-render every block.
    CSS = "VerticalScroll { scrollbar-gutter: stable; }"

    def compose(self) -> ComposeResult:
        yield VerticalScroll()


async def mount(app: App[None], widget: StreamingMarkdown) -> StreamingMarkdown:
    await app.query_one(VerticalScroll).mount(widget)
    return widget


def rendered(widget: StreamingMarkdown) -> list[list[Segment]]:
    """The lines of segments the widget's blocks paint, top to bottom."""
    lines: list[list[Segment]] = []
    for block in widget.query(MarkdownBlock):
        if block.display:
            width, height = block.size
            lines += [list(strip) for strip in block.render_lines(Region(0, 0, width, height))]
    return lines


def rendered_text(widget: StreamingMarkdown) -> list[str]:
    return ["".join(segment.text for segment in line).rstrip() for line in rendered(widget)]


async def stream(pilot, widget: StreamingMarkdown, pieces: list[str], pause_every: int = 0) -> None:
    for n, piece in enumerate(pieces, 1):
        widget.append(piece)
        if pause_every and n % pause_every == 0:
            await pilot.pause(0.04)  # let frames render mid-stream
    widget.finish()
    await widget.wait_finished()
    await pilot.pause()


async def test_streamed_in_odd_splits_renders_like_history() -> None:
    app = MarkdownApp()
    async with app.run_test(size=(90, 50)) as pilot:
        history = await mount(app, StreamingMarkdown(REPLY))
        streamed = await mount(app, StreamingMarkdown(streaming=True))
        await stream(pilot, streamed, split(REPLY, random.Random(1)), pause_every=25)
        await history.wait_finished()
        assert len(history.query(MarkdownBlock)) == 1  # history: one static child
        assert len(streamed.query(MarkdownBlock)) == len(blocks_of(REPLY))
        assert rendered_text(streamed) == rendered_text(history)
        text = "\n".join(rendered_text(history))
        for expected in ("Streaming test", "3 Third step", "• bullet one", "still inside", "alpha", "Closing"):
            assert expected in text
        assert streamed.text == REPLY


async def test_ordered_list_numbering_continues_across_blocks() -> None:
    app = MarkdownApp()
    async with app.run_test(size=(60, 20)) as pilot:
        widget = await mount(app, StreamingMarkdown(streaming=True))
        await stream(pilot, widget, ["1. one\n", "\n2. two\n\n", "3. three\n"])
        items = [line.split() for line in rendered_text(widget) if line.strip()]
        assert items == [["1", "one"], ["2", "two"], ["3", "three"]]  # Rich draws "1 one"


async def test_finished_blocks_are_rendered_once(monkeypatch: pytest.MonkeyPatch) -> None:
    renders: Counter[int] = Counter()
    original = ms._RenderOnce.__rich_console__

    def counting(self: ms._RenderOnce, console: Console, options: ConsoleOptions):
        if options.max_width != self._width:
            renders[id(self)] += 1
        return original(self, console, options)

    monkeypatch.setattr(ms._RenderOnce, "__rich_console__", counting)
    app = MarkdownApp()
    async with app.run_test(size=(80, 30)) as pilot:
        widget = await mount(app, StreamingMarkdown(streaming=True))
        rng = random.Random(3)
        head, rest = REPLY[:200], REPLY[200:]
        for piece in split(head, rng):
            widget.append(piece)
        await pilot.pause(0.1)
        finished = [b for b in widget.query(MarkdownBlock) if not b.has_class("-tail")]
        assert len(finished) >= 3
        contents = [b.content for b in finished]
        counts = [renders[id(c)] for c in contents]
        assert counts == [1] * len(finished)
        tail = widget.query_one(".-tail", MarkdownBlock)
        tail_builds = tail.builds
        for n, piece in enumerate(split(rest, rng), 1):
            widget.append(piece)
            if n % 10 == 0:
                await pilot.pause(0.04)
        await pilot.pause(0.1)
        assert tail.builds > tail_builds  # the tail did re-render meanwhile...
        assert [b.content for b in finished] == contents  # ...the finished blocks were not touched
        assert [renders[id(c)] for c in contents] == counts
        assert all(b.builds == 1 for b in finished)


async def test_deltas_are_coalesced_per_frame() -> None:
    app = MarkdownApp()
    async with app.run_test(size=(80, 30)) as pilot:
        widget = await mount(app, StreamingMarkdown(streaming=True))
        await pilot.pause()
        tail = widget.query_one(".-tail", MarkdownBlock)
        builds = tail.builds
        for word in ("word " * 2000).split(" "):
            widget.append(word + " ")  # no yield to the event loop in between: one frame
        await pilot.pause(0.1)
        assert tail.builds - builds <= 2
        assert "word word" in "\n".join(rendered_text(widget))


ESCAPES = (
    "Clipboard \x1b]52;c;SGVsbG8=\x07 clear \x1b[2J title \x1b]0;pwned\x07 csi \x9b31m bell \x07 del \x7f\n\n"
    "`inline \x1b[31m code` and **bold \x1b]0;t\x07**\n\n"
    "```\ncode \x1b]52;c;eA==\x07 block \x9b2J\n```\n\n"
    "| a | b |\n|---|---|\n| \x1b[2J | \x9b1m |\n\n"
    "- item \x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\\n\n"
    "[x](http://example.com/\x1b]0;t\x07) entity &#x202e; bidi \u202e here\r\nCR\rdone\n"
)


@pytest.mark.parametrize("streaming", [True, False])
async def test_escape_sequences_are_shown_not_sent(streaming: bool) -> None:
    app = MarkdownApp()
    async with app.run_test(size=(100, 40)) as pilot:
        if streaming:
            widget = await mount(app, StreamingMarkdown(streaming=True))
            # Two-character pieces cut through the middle of every escape sequence and the CRLF.
            await stream(pilot, widget, [ESCAPES[i : i + 2] for i in range(0, len(ESCAPES), 2)], 40)
        else:
            widget = await mount(app, StreamingMarkdown(ESCAPES))
            await widget.wait_finished()
            await pilot.pause()
        lines = rendered(widget)
        for line in lines:
            for segment in line:
                assert not any(0x80 <= ord(c) <= 0x9F or (ord(c) < 0x20) for c in segment.text), segment
                assert "\u202e" not in segment.text
                style = segment.style
                if style is not None and style.link:
                    assert all(ord(c) >= 0x20 and not 0x7F <= ord(c) <= 0x9F for c in style.link)
                assert style is None or "@click" not in style.meta
        text = "\n".join(rendered_text(widget))
        assert "␛]52;c;SGVsbG8=␇" in text
        assert "␛[2J" in text and "␛]0;pwned␇" in text and "\\x9b31m" in text and "␡" in text
        assert "<U+202E>" in text  # both the literal override and the decoded entity
        assert widget.text == ESCAPES  # raw text kept as received, for export


MARKUP = "Literal [/] and [@click=app.quit]click me[/] and [bold red]red[/bold red] and [link=x]y[/link]\n\n- [/]\n"


@pytest.mark.parametrize("streaming", [True, False])
async def test_console_markup_is_shown_literally(streaming: bool) -> None:
    app = MarkdownApp()
    async with app.run_test(size=(100, 20)) as pilot:
        if streaming:
            widget = await mount(app, StreamingMarkdown(streaming=True))
            await stream(pilot, widget, split(MARKUP, random.Random(5)), 5)
        else:
            widget = await mount(app, StreamingMarkdown(MARKUP))
            await widget.wait_finished()
            await pilot.pause()
        text = "\n".join(rendered_text(widget))
        assert "Literal [/] and [@click=app.quit]click me[/] and [bold red]red[/bold red]" in text
        assert all(
            segment.style is None or "@click" not in segment.style.meta for line in rendered(widget) for segment in line
        )
        await pilot.click(MarkdownBlock, offset=(30, 0))
        await pilot.pause()
        assert app.is_running and app.return_code is None


async def test_links_are_hyperlinks_not_actions() -> None:
    app = MarkdownApp()
    async with app.run_test(size=(80, 10)) as pilot:
        widget = await mount(app, StreamingMarkdown("[quit](app.quit) and [js](javascript:alert(1))"))
        await widget.wait_finished()
        await pilot.pause()
        links = {seg.style.link for line in rendered(widget) for seg in line if seg.style and seg.style.link}
        assert links == set()  # only http/https targets are links (issue 13); markdown-it drops javascript:
        await pilot.click(MarkdownBlock, offset=(1, 0))
        await pilot.pause()
        assert app.is_running


async def test_anchored_scroll_follows_the_stream() -> None:
    app = MarkdownApp()
    async with app.run_test(size=(80, 20)) as pilot:
        scroll = app.query_one(VerticalScroll)
        scroll.anchor()
        widget = await mount(app, StreamingMarkdown(streaming=True))
        await stream(pilot, widget, split(REPLY * 3, random.Random(2), 12), pause_every=20)
        assert scroll.max_scroll_y > 0
        assert scroll.scroll_y == scroll.max_scroll_y


async def test_code_theme_follows_app_theme() -> None:
    app = MarkdownApp()
    async with app.run_test(size=(80, 30)) as pilot:
        app.theme = "textual-dark"
        widget = await mount(app, StreamingMarkdown("```python\nx = 1\n```\n"))
        fixed = await mount(app, StreamingMarkdown("```python\nx = 1\n```\n", code_theme="vim"))
        await pilot.pause()
        block = widget.query_one(MarkdownBlock)
        assert block.code_theme == markdown_render.DARK_CODE_THEME
        app.theme = "textual-light"
        await pilot.pause()
        assert block.code_theme == markdown_render.LIGHT_CODE_THEME
        assert fixed.query_one(MarkdownBlock).code_theme == "vim"


async def test_append_after_finish_is_an_error() -> None:
    app = MarkdownApp()
    async with app.run_test() as pilot:
        widget = await mount(app, StreamingMarkdown(streaming=True))
        widget.append("hello")
        widget.finish()
        await widget.wait_finished()
        await pilot.pause()
        with pytest.raises(RuntimeError):
            widget.append(" more")
        assert widget.finished and rendered_text(widget)[0] == "hello"


def test_shared_parser_renders_like_rich_markdown():
    """The shared-parser shortcut must fill in exactly the fields Rich's own constructor sets."""
    from rich.console import Console
    from rich.markdown import Markdown

    assert markdown_render._rich_fields_match()
    text = ("# Title\n\nSome **bold**, `code` and a [link](https://example.com).\n\n- a\n- b\n\n"
            "| k | v |\n|---|---|\n| 1 | 2 |\n")
    console = Console(width=60, record=True, color_system=None)
    ours = markdown_render._markdown(text, "monokai")
    assert set(vars(ours)) == set(vars(Markdown(text)))
    console.print(ours)
    mine = console.export_text()
    console.print(Markdown(text))
    assert console.export_text() == mine
