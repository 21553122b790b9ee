"""Textual behaviour that `MessageList` relies on beyond the documented API: an upgrade that changes any of
it fails here, not as text jumping on screen."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.geometry import Size
from textual.widget import Widget


class Rows(Widget):
    def __init__(self, rows: int) -> None:
        super().__init__()
        self.rows = rows

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return self.rows


class Recording(VerticalScroll):
    DEFAULT_CSS = "Recording { layout: stream; height: 1fr; } Rows { height: auto; }"

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[Size] = []

    def arrange(self, size: Size, optimal: bool = False):  # type: ignore[no-untyped-def]
        self.sizes.append(size)
        return super().arrange(size, optimal)


class Pinned(App[None]):
    def compose(self) -> ComposeResult:
        with Recording():
            for _ in range(40):
                yield Rows(3)


async def test_arrange_gets_the_content_size_before_children_are_placed() -> None:
    async with Pinned().run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        scroll = pilot.app.query_one(Recording)
        assert scroll.sizes and scroll.sizes[-1] == scroll.scrollable_content_region.size
        await pilot.resize_terminal(50, 20)
        await pilot.pause()
        assert scroll.sizes[-1] == scroll.scrollable_content_region.size


async def test_stream_layout_replaces_a_child_listed_in_layout_widgets_during_arrange() -> None:
    async with Pinned().run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        scroll = pilot.app.query_one(Recording)
        children = list(scroll.query(Rows))
        first_tenth = children[10].region.y
        children[3].rows = 6  # changed without a refresh: only the listing makes the layout see it
        scroll._clear_arrangement_cache()
        pilot.app.screen._layout_widgets.setdefault(scroll, set()).add(children[3])
        pilot.app.screen._layout_required = True
        pilot.app.screen.check_idle()
        await pilot.pause()
        await pilot.pause()
        assert children[3].region.height == 6
        assert children[10].region.y == first_tenth + 3


async def test_a_scroll_animation_can_be_moved() -> None:
    async with Pinned().run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        scroll = pilot.app.query_one(Recording)
        pilot.app.animation_level = "full"
        scroll.scroll_to(y=60, animate=True, duration=0.5, immediate=True)
        animation = pilot.app.animator._animations.get((id(scroll), "scroll_y"))
        assert animation is not None
        for name in ("start_value", "end_value", "final_value"):
            assert isinstance(getattr(animation, name), (int, float))
        animation.start_value += 5
        animation.end_value += 5
        animation.final_value += 5
        await pilot.pause(0.8)
        assert scroll.scroll_y == 65


async def test_scroll_position_can_be_set_without_clamping() -> None:
    async with Pinned().run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        scroll = pilot.app.query_one(Recording)
        beyond = scroll.max_scroll_y + 4
        scroll.set_reactive(VerticalScroll.scroll_y, beyond)
        scroll.vertical_scrollbar._reactive_position = beyond
        assert scroll.scroll_y == beyond


class StreamingReply(App[None]):
    CSS = "MessageView { height: auto; }"

    def compose(self) -> ComposeResult:
        from chatapp.tui.widgets.message_view import MessageView

        yield MessageView("", streaming=True, label="label")


async def test_a_streamed_reply_growing_at_its_end_repaints_only_its_end() -> None:
    """`MessageView._size_updated` relies on Textual marking a widget dirty only when `_size` differs, and on
    its styles cache keeping the rows a region refresh does not cover."""
    from chatapp.tui.widgets.message_view import MessageView

    app = StreamingReply()
    async with app.run_test(size=(80, 40)) as pilot:
        view = app.query_one(MessageView)
        view.append("".join(f"Paragraph {n} of the reply.\n\n" for n in range(12)))
        await pilot.pause(0.2)
        drawn: list[int] = []
        original = view.render_line

        def recording(y: int):  # type: ignore[no-untyped-def]
            drawn.append(y)
            return original(y)

        view.render_line = recording  # type: ignore[method-assign]
        height = view.size.height
        view.append("Paragraph 12 of the reply.\n\nParagraph 13")
        await pilot.pause(0.2)
        assert view.size.height > height  # it grew
        assert drawn, "the new rows were drawn"
        assert min(drawn) >= height - 4, f"rows above the end were drawn again: {sorted(set(drawn))}"


async def test_a_new_virtual_size_without_layout_updates_the_scrollbar_and_schedules_nothing() -> None:
    """`MessageList._size_updated` records a grown list's virtual size with ``layout=False``."""
    async with Pinned().run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        scroll = pilot.app.query_one(Recording)
        grown = scroll.virtual_size.with_height(scroll.virtual_size.height + 7)
        scroll._layout_required = scroll._repaint_required = False
        assert scroll._size_updated(scroll.size, grown, scroll.container_size, layout=False)
        assert scroll.virtual_size == grown
        assert scroll.vertical_scrollbar.window_virtual_size == grown.height
        assert not scroll._layout_required and not scroll._repaint_required
        scroll._size_updated(scroll.size, scroll.virtual_size.with_height(grown.height + 1), scroll.container_size)
        assert scroll._layout_required, "with layout=True Textual lays the screen out again (what the override avoids)"
