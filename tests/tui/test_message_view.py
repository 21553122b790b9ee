"""MessageView and MessageList: the screen shows what the previous renderer showed, while rendering only
the blocks in the viewport; estimates match Rich; scrolling corrects estimate errors invisibly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import previous_renderer
import pytest
from previous_renderer import StreamingMarkdown
from rich.console import Console
from rich.text import Text
from sample_texts import MIXED, realistic
from textual.app import App, ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.geometry import Offset
from textual.pilot import Pilot
from textual.selection import Selection
from textual.widgets import Static
from tui_helpers import wait_for

from chatapp.domain import MessageStatus
from chatapp.tui.widgets import message_list, message_pieces, message_view
from chatapp.tui.widgets.block_rows import estimate_rows
from chatapp.tui.widgets.markdown_blocks import BlockSplitter
from chatapp.tui.widgets.markdown_render import render_block
from chatapp.tui.widgets.message import AssistantMessage, UserMessage
from chatapp.tui.widgets.message_list import MessageList

TUI = Path(message_view.__file__).parent.parent
CSS_PATHS = [TUI / "app.tcss", previous_renderer.CSS_FILE, TUI / "widgets" / "message_view.tcss"]
OLD_LABEL_CSS = ".message-label { color: $text-muted; text-style: italic; }"
LABEL = "openai · gpt-4o-mini"


class PreviousAssistant(Vertical):
    """The previous reply widget (label Static + StreamingMarkdown), the reference for screen text."""

    def __init__(self, text: str) -> None:
        super().__init__(classes="message assistant")
        self._text = text

    def compose(self) -> ComposeResult:
        yield Static(Text(LABEL), classes="message-label")
        yield StreamingMarkdown(self._text)


class Conversation(App[None]):
    CSS_PATH = CSS_PATHS  # type: ignore[assignment]
    CSS = OLD_LABEL_CSS

    def __init__(self, replies: list[str], *, previous: bool) -> None:
        super().__init__()
        self.replies = replies
        self.previous = previous

    def compose(self) -> ComposeResult:
        yield VerticalScroll(id="messages") if self.previous else MessageList(id="messages")

    def on_mount(self) -> None:
        messages = self.query_one("#messages", VerticalScroll)
        widgets = []
        for index, reply in enumerate(self.replies):
            widgets.append(UserMessage(f"question {index}"))
            if self.previous:
                widgets.append(PreviousAssistant(reply))
            else:
                widgets.append(AssistantMessage(reply, label=LABEL, status=MessageStatus.COMPLETE))
        messages.mount_all(widgets)
        messages.anchor()


def screen_text(app: App[None]) -> list[str]:
    """The text on screen without the scrollbar column (its thumb follows estimated heights)."""
    return [strip.text[:-2].rstrip() for strip in app.screen._compositor.render_strips()]


async def settle(pilot, app: App[None]) -> None:
    for _ in range(6):
        await pilot.pause(0.05)


async def screens(replies: list[str], size: tuple[int, int], *, previous: bool) -> dict[str, list[str]]:
    app = Conversation(replies, previous=previous)
    seen: dict[str, list[str]] = {}
    async with app.run_test(size=size) as pilot:
        messages = app.query_one("#messages", VerticalScroll)
        await settle(pilot, app)
        seen["bottom"] = screen_text(app)
        messages.scroll_home(animate=False)
        await settle(pilot, app)
        seen["top"] = screen_text(app)
        await pilot.resize_terminal(size[0] - 23, size[1])
        await settle(pilot, app)
        seen["top after resize"] = screen_text(app)
        messages.scroll_end(animate=False)
        await settle(pilot, app)
        seen["bottom after resize"] = screen_text(app)
    return seen


@pytest.mark.parametrize("width", [120, 80])
@pytest.mark.parametrize("name", ["realistic", "mixed"])
async def test_screen_text_is_the_previous_renderers(name: str, width: int) -> None:
    replies = [realistic(12), realistic(6)] if name == "realistic" else [MIXED, MIXED]
    previous = await screens(replies, (width, 36), previous=True)
    current = await screens(replies, (width, 36), previous=False)
    for place in previous:
        assert current[place] == previous[place], place


# --- estimates -------------------------------------------------------------------------------------------


def rich_rows(block, width: int) -> int:
    console = Console(width=width, color_system=None)
    return len(console.render_lines(render_block(block, "monokai"), console.options.update(height=None)))


@pytest.mark.parametrize("width", [114, 61])
def test_estimates_match_rich(width: int) -> None:
    splitter = BlockSplitter()
    blocks = splitter.feed(MIXED + "\n\n" + realistic(3)) + splitter.finish()
    pairs = [(estimate_rows(block, width), rich_rows(block, width)) for block in blocks]
    exact = sum(estimate == real for estimate, real in pairs)
    assert exact >= 0.9 * len(blocks), [(b.text[:40], p) for b, p in zip(blocks, pairs, strict=True) if p[0] != p[1]]
    estimated, real = sum(p[0] for p in pairs), sum(p[1] for p in pairs)
    assert abs(estimated - real) <= 0.02 * real


# --- only what is seen is rendered ------------------------------------------------------------------------


class OneList(App[None]):
    CSS_PATH = CSS_PATHS  # type: ignore[assignment]

    def __init__(self, replies: list[str]) -> None:
        super().__init__()
        self.replies = replies

    def compose(self) -> ComposeResult:
        yield MessageList(id="messages")

    def on_mount(self) -> None:
        messages = self.query_one(MessageList)
        messages.show_history([AssistantMessage(reply, label=LABEL, status=MessageStatus.COMPLETE)
                               for reply in self.replies])


async def test_a_long_history_opens_on_its_last_screen_and_mounts_only_near_it() -> None:
    replies = [realistic(4).replace("Step", f"Reply {n} step") for n in range(300)]
    app = OneList(replies)
    async with app.run_test(size=(100, 30)) as pilot:
        messages = app.query_one(MessageList)
        await settle(pilot, app)
        assert "Reply 299 step 4" in "\n".join(screen_text(app))
        views = list(app.query(AssistantMessage))
        assert len(views) <= 10 and messages.unmounted >= 290  # the rest wait behind the gap, as data
        assert sum(view.block_renders for view in views) <= 30
        # The gap is as tall as what it stands for: the scrollbar covers the whole conversation.
        mounted_rows = sum(view.outer_size.height + 1 for view in views)
        assert messages.virtual_size.height > 250 * mounted_rows // len(views)


@pytest.mark.parametrize("gap_error", [0, 3])
async def test_scrolling_up_mounts_older_messages_in_order_without_moving_the_text(
        monkeypatch: pytest.MonkeyPatch, gap_error: int) -> None:
    if gap_error:  # the gap's estimate of unmounted messages misses: mounting them must not move the text
        estimate = message_list.estimated_rows
        monkeypatch.setattr(message_list, "estimated_rows",
                            lambda widget, width: estimate(widget, width) + (0 if widget.is_mounted else gap_error))
    replies = [realistic(4).replace("Step", f"Reply {n} step") for n in range(300)]
    app = OneList(replies)
    async with app.run_test(size=(100, 30)) as pilot:
        messages = app.query_one(MessageList)
        await settle(pilot, app)
        start = messages.unmounted
        messages.release_anchor()
        for _ in range(10):
            before = screen_text(app)
            messages.scroll_to(y=messages.scroll_y - 12, animate=False, immediate=True)
            await settle(pilot, app)
            await pilot.pause()
            await settle(pilot, app)
            # Older messages arrived above (and their estimate was corrected): the text moved by the scroll only.
            assert offset_of(before, screen_text(app)) == 12
        assert messages.unmounted < start
        views = list(app.query(AssistantMessage))
        assert [view.text for view in views] == replies[len(replies) - len(views):]  # mounted above, in order
        assert len(views) < 60  # only what the user came near


async def test_a_jump_to_the_top_shows_the_first_message() -> None:
    replies = [realistic(2).replace("Step", f"Reply {n} step") for n in range(200)]
    app = OneList(replies)
    async with app.run_test(size=(100, 30)) as pilot:
        messages = app.query_one(MessageList)
        await settle(pilot, app)
        messages.release_anchor()
        messages.scroll_home(animate=False)
        await wait_for(lambda: messages.unmounted == 0, pilot, timeout=60)
        await settle(pilot, app)
        assert messages.scroll_y == 0  # the older messages mounted below the top did not move it
        assert "Reply 0 step 1" in "\n".join(screen_text(app))


async def test_streamed_reply_renders_at_most_a_screen_of_blocks() -> None:
    app = OneList([])
    async with app.run_test(size=(100, 30)) as pilot:
        view = AssistantMessage(label=LABEL)
        await app.query_one(MessageList).mount(view)
        reply = realistic(60)
        for index in range(0, len(reply), 400):
            view.append(reply[index : index + 400])
        view.set_status(MessageStatus.COMPLETE)
        await settle(pilot, app)
        assert view.block_renders <= 30
        assert "Step 60" in "\n".join(screen_text(app)) or "load_settings" in "\n".join(screen_text(app))


@asynccontextmanager
async def streaming_reply() -> AsyncIterator[tuple[Pilot[None], MessageList, AssistantMessage]]:
    """An empty list at 100x30 with a streaming reply mounted in it."""
    app = OneList([])
    async with app.run_test(size=(100, 30)) as pilot:
        messages = app.query_one(MessageList)
        view = AssistantMessage(label=LABEL)
        await messages.mount(view)
        yield pilot, messages, view


async def stream_in_frames(pilot, view: AssistantMessage, reply: str, chunk: int) -> list[list[str]]:
    """Append `reply` `chunk` characters a frame; return the screen after each frame."""
    seen = []
    for index in range(0, len(reply), chunk):
        view.append(reply[index : index + chunk])
        await pilot.pause(2 * view.FRAME_INTERVAL)
        seen.append(screen_text(pilot.app))
    return seen


async def test_blocks_that_only_pass_by_are_not_rendered_and_the_last_screen_is() -> None:
    reply = realistic(60)
    finished = OneList([reply])
    async with finished.run_test(size=(100, 30)) as pilot:
        await settle(pilot, finished)
        expected = screen_text(finished)
        on_one_screen = finished.query_one(AssistantMessage).block_renders
    async with streaming_reply() as (pilot, _, view):
        frames = await stream_in_frames(pilot, view, reply, 2_000)  # ~50 rows a frame on a 30-row screen
        assert any("## Step" in "\n".join(frame) for frame in frames)  # drawn plain while passing
        view.set_status(MessageStatus.COMPLETE)
        await settle(pilot, pilot.app)
        assert screen_text(pilot.app) == expected
        assert view.block_renders <= on_one_screen + 2


async def test_a_stream_that_pauses_after_a_burst_renders_what_it_shows() -> None:
    async with streaming_reply() as (pilot, _, view):
        frames = await stream_in_frames(pilot, view, realistic(30), 2_000)
        assert "## Step" in "\n".join(frames[-1])  # the burst's last frame: plain
        await pilot.pause(3 * MessageList.PREFETCH_DELAY)  # the model pauses; the reply is not finished
        assert not view.finished
        assert "## Step" not in "\n".join(screen_text(pilot.app))


async def test_a_reply_streaming_slower_than_a_screen_a_frame_is_rendered_as_it_goes() -> None:
    async with streaming_reply() as (pilot, _, view):
        frames = await stream_in_frames(pilot, view, realistic(3), 60)
        assert not any("## Step" in "\n".join(frame) for frame in frames)
        assert view.block_renders > 0


async def test_words_that_fit_on_the_tail_row_repaint_it_without_a_layout() -> None:
    async with streaming_reply() as (pilot, messages, view):
        await stream_in_frames(pilot, view, realistic(1) + "Then", 2_000)
        settles = messages.settles
        frames = await stream_in_frames(pilot, view, " a few words on the last row", 5)
        assert "Then a few words on the last row" in "\n".join(frames[-1])
        assert messages.settles - settles <= 1  # (the row count changed at most once: none of these wrap)


async def test_a_frame_that_adds_rows_lays_the_screen_out_once() -> None:
    async with streaming_reply() as (pilot, messages, view):
        await stream_in_frames(pilot, view, realistic(2), 2_000)
        settles = messages.settles
        frames = await stream_in_frames(pilot, view, "".join(f"\n\nParagraph {n}." for n in range(8)), 16)
        assert "Paragraph 6." in "\n".join(frames[-1])
        assert messages.settles - settles <= len(frames) * 3 // 2  # Textual alone lays out twice a frame


async def test_the_rows_a_page_up_shows_are_prepared_while_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    app = OneList([realistic(40)])
    async with app.run_test(size=(100, 30)) as pilot:
        messages = app.query_one(MessageList)
        await settle(pilot, app)
        await pilot.pause(2 * MessageList.PREFETCH_DELAY)
        offsets = 0
        from_meta = message_view.Style.from_meta

        def counting(meta):  # type: ignore[no-untyped-def]
            nonlocal offsets
            offsets += "offset" in meta
            return from_meta(meta)

        monkeypatch.setattr(message_view.Style, "from_meta", counting)
        before = screen_text(app)
        messages.scroll_page_up(animate=False)
        await pilot.pause(MessageList.PREFETCH_DELAY / 3)  # the frame, not the next idle prefetch
        assert screen_text(app) != before
        assert offsets == 0  # every row drawn was prepared (its selection offsets applied) before the key


# --- scrolling over wrong estimates -----------------------------------------------------------------------


def wrong_estimates(monkeypatch: pytest.MonkeyPatch) -> None:
    """Estimates that miss on most blocks, by up to 3 rows either way."""

    def estimate(block, width: int) -> int:
        real = estimate_rows(block, width)
        return max(1, real + (hash(block.text) % 7) - 3)

    monkeypatch.setattr(message_pieces, "estimate_rows", estimate)


@pytest.mark.parametrize("animate", [False, True])
async def test_half_page_steps_move_the_text_exactly(monkeypatch: pytest.MonkeyPatch, animate: bool) -> None:
    wrong_estimates(monkeypatch)
    app = OneList([realistic(30)])
    frames: list[tuple[float, list[str]]] = []
    async with app.run_test(size=(100, 30)) as pilot:
        messages = app.query_one(MessageList)
        await settle(pilot, app)
        original = app.screen._compositor_refresh

        def recorded() -> None:
            original()
            frames.append((messages.scroll_y, screen_text(app)))

        app.screen._compositor_refresh = recorded  # type: ignore[method-assign]
        step = messages.scrollable_content_region.height // 2
        for _ in range(12):
            before = screen_text(app)
            frames.clear()
            messages.scroll_to(y=messages.scroll_y - step, animate=animate, duration=0.2)
            await settle(pilot, app)
            await asyncio.sleep(0.3 if animate else 0)
            await settle(pilot, app)
            after = screen_text(app)
            # Every frame painted shows the old text moved down by a whole number of rows, never back.
            moves = [offset_of(before, text) for _, text in frames]
            assert all(move is not None for move in moves), "a frame showed text that is not the old text scrolled"
            assert moves == sorted(moves), f"text moved back: {moves}"
            assert offset_of(before, after) == step
        assert messages.shifts, "the estimates were wrong, so the scroll must have been corrected"


def offset_of(before: list[str], after: list[str]) -> int | None:
    """How far `before`'s lines moved down to appear in `after` (None: they do not match any shift)."""
    rows = len(before)
    for shift in range(rows):
        if after[shift:] == before[: rows - shift]:
            return shift
    return None


# --- text, selection, code blocks -------------------------------------------------------------------------


async def test_select_all_returns_the_reply_and_code_blocks_are_offered() -> None:
    reply = realistic(3) + "```\nunclosed\n"
    app = OneList([reply])
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app)
        view = app.query_one(AssistantMessage)
        app.screen._select_all_in_widget(view)
        assert app.screen.get_selected_text() == reply.rstrip("\n")
        blocks = view.code_blocks()
        assert [b.language for b in blocks] == ["python"] * 3 + [""]
        assert blocks[0].code.startswith("def load_settings(path: Path) -> Settings:")
        assert blocks[0].code.endswith("return Settings.from_mapping(raw)")
        assert blocks[-1].code == "unclosed"


async def test_a_selection_returns_the_text_under_it_and_rows_carry_their_offsets() -> None:
    app = OneList(["First paragraph here.\n\nSecond paragraph, with more words."])
    async with app.run_test(size=(100, 20)) as pilot:
        await settle(pilot, app)
        view = app.query_one(AssistantMessage)
        selected = view.get_selection(Selection.from_offsets(Offset(0, 1), Offset(6, 3)))
        assert selected == ("First paragraph here.\n\nSecond", "\n")
        assert next(iter(view.render_line(3))).style.meta["offset"] == (0, 3)  # what mouse selection maps
