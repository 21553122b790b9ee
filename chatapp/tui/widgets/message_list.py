"""The conversation's scrolling list; before each frame it makes the rows in the viewport exact.

Messages (`MessageView`) know their height only approximately until their blocks are rendered. The list
*settles* the viewport before Textual lays it out — in `arrange` (any layout: new text, a resize, new
messages) and when the scroll position changes (keys, wheel, a running smooth scroll): every block in
the viewport whose height is an estimate is rendered (a history message is first cut into blocks).
When a block above the text already on screen turns out taller or shorter than estimated, the scroll
position moves by the same number of rows — and so does the course of a running scroll animation — so
the text on screen never moves. At the bottom (anchored) the bottom rows are settled instead. When
messages are inserted above the first one (an opening conversation's older messages, mounted as the user
scrolls up to them), the scroll moves by the rows they add beyond their estimate, for the same reason.

Long histories are mounted lazily: opening a conversation mounts the newest messages that fill about
three screens; the older ones stay unmounted widgets (text as data) behind a `HistoryGap` as tall as
their estimated rows, so the scrollbar is true. When the viewport comes within two screens of the gap,
the messages just above are mounted (a jump into the gap mounts a chunk per frame). Textual lays out and
composites every mounted widget on every layout, so a thousand mounted messages cost ~0.1 s per frame:
mounting only what the user scrolls to keeps opening, paging and resizing proportional to the screen.

Textual internals this relies on, pinned by ``tests/tui/test_textual_pins.py``: the compositor calls
`arrange` with the content size before placing children; ``layout: stream`` re-places a child that is
listed in ``Screen._layout_widgets`` and reuses the others' placements; a scroll animation is a
``SimpleAnimation`` in ``App.animator._animations`` keyed by ``(id(widget), "scroll_y")`` whose
``start_value``/``end_value``/``final_value`` can be moved.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.containers import VerticalScroll
from textual.geometry import Size
from textual.layout import DockArrangeResult
from textual.timer import Timer
from textual.widget import Widget

from chatapp.tui.widgets.history_entries import (
    DEFAULT_GEOMETRY,
    Entry,
    Geometry,
    HistoryGap,
    built,
    coarse_spatial_map,
    estimated_rows,
    kind_of,
)
from chatapp.tui.widgets.message_view import MessageView

_MAX_ROUNDS = 200


class MessageList(VerticalScroll):
    """A vertical list of messages that renders only what the viewport shows."""

    FIRST_SCREENS: ClassVar[int] = 3
    """Screens of the newest history mounted when a conversation opens."""
    MARGIN_SCREENS: ClassVar[int] = 2
    """Older history is mounted when the viewport comes this many screens near it."""
    PREFETCH_DELAY: ClassVar[float] = 0.15
    """Seconds of quiet (no scroll, no new text) before the screens around the viewport are rendered."""
    HISTORY_CHUNK: ClassVar[int] = 40
    """Most older widgets mounted in one step (a jump far into the history takes a step per frame)."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._settling = False
        self._last_top: int | None = None  # the window top of the last settle
        self._last_width = -1
        self._first: Widget | None = None  # the first child at the last layout, and its row
        self._first_y = 0
        self._geometry: dict[Widget, Geometry] = {}  # margins and gutters per child
        self._kinds: dict[type[Widget], Geometry] = {}  # learned per widget type, for unmounted history
        self._older: list[Entry] = []  # history not mounted yet, oldest first, behind `_gap`
        self._gap: HistoryGap | None = None
        self._older_rows_cache = (-1, -1, 0)  # width, count, rows
        self._growing = False  # a step mounting older history is scheduled
        self._prefetch_timer: Timer | None = None
        self._top_child: tuple[Widget, int, int] | None = None  # at the viewport top: offset, height
        self.settles = 0
        self.shifts: list[int] = []
        """Scroll corrections made (tests and benchmarks read them)."""

    @property
    def is_following(self) -> bool:
        """Anchored at the bottom: new text scrolls into view."""
        return self._anchored and not self._anchor_released

    def arrange(self, size: Size, optimal: bool = False) -> DockArrangeResult:
        first = self._first_message()
        inserted_above = self._first is not None and first is not self._first and not self.is_following
        if size.width > 0 and size.height > 0 and self.is_attached and not inserted_above:
            self._settle(size.width, size.height, in_layout=True)
        result = super().arrange(size, optimal)
        placements = result.placements
        if result._spatial_map is None:
            result._spatial_map = coarse_spatial_map(placements)
        old_first, old_first_y = self._first, self._first_y
        self._first = None  # (recorded before the scroll moves: moving it can arrange again, nested)
        for placement in placements:
            if not isinstance(placement.widget, HistoryGap):
                self._first, self._first_y = placement.widget, placement.region.y
                break
        if inserted_above:
            # Older messages arrived above: what was on screen stays (and is settled already).
            # (A viewport inside the gap shows no text, only a place in the history: it stays where it is.)
            old_first_seen = old_first_y < round(self.scroll_y) + size.height
            for placement in placements:
                if placement.widget is old_first:
                    if placement.region.y != old_first_y and old_first_seen:
                        self._move_scroll(placement.region.y - old_first_y)
                        self._last_top = round(self.scroll_y)
                    break
        return result

    def _first_message(self) -> Widget | None:
        for child in self._nodes:
            if not isinstance(child, HistoryGap):
                return child
        return None

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if not self._settling and round(old_value) != round(new_value):
            region = self.scrollable_content_region
            if region.width > 0 and region.height > 0:
                self._settle(region.width, region.height, in_layout=False)

    # --- long histories -------------------------------------------------------------------------------

    def show_history(self, widgets: Sequence[Entry]) -> None:
        """Show a conversation's widgets (built as data: nothing is rendered yet), newest at the bottom.

        The newest widgets that fill `FIRST_SCREENS` screens are mounted now; the older ones wait behind a
        gap of their estimated height until the user scrolls near them (or `mount_through` asks for one).
        """
        self.follow()
        self._older = []
        height = max(self.scrollable_content_region.height, self.app.size.height, 10)
        width = max(self.scrollable_content_region.width or self.app.size.width - 3, 10)
        budget = height * self.FIRST_SCREENS
        start = len(widgets)
        rows = 0
        while start > 0 and rows < budget:
            start -= 1
            rows += self._outer_rows(widgets[start], width)
        newest, older = [built(entry) for entry in widgets[start:]], list(widgets[:start])
        if older:
            self._older = older
            self._older_rows_cache = (-1, -1, 0)
            self._gap = HistoryGap(self._older_rows)
            self.mount(self._gap)
        if newest:
            self.mount_all(newest)

    def clear(self) -> None:
        """Remove every message, mounted or waiting behind the gap."""
        self._older = []
        self._gap = None
        self.remove_children()

    def follow(self) -> None:
        """Stay at the bottom as text arrives (until the user scrolls up)."""
        self.anchor()

    def mount_through(self, entry: Entry) -> None:
        """Mount the older history down to `entry` (a step per frame), e.g. to scroll to a search hit."""
        for index, older in enumerate(self._older):
            if older is entry:
                self._grow(len(self._older) - index)
                return

    @property
    def unmounted(self) -> int:
        """History widgets not mounted yet (tests and benchmarks read it)."""
        return len(self._older)

    def _outer_rows(self, entry: Entry, width: int) -> int:
        """Rows `entry` takes with its top margin (messages have no bottom margin), mounted or not."""
        top, _, sides, _, gutter_height = self._kinds.get(kind_of(entry), DEFAULT_GEOMETRY)
        return top + gutter_height + estimated_rows(entry, max(width - sides, 1))

    def _older_rows(self, width: int) -> int:
        """The gap's height: the rows the unmounted history would take at `width`."""
        cached_width, count, rows = self._older_rows_cache
        if cached_width == width and count == len(self._older):
            return rows
        rows = sum(self._outer_rows(widget, width) for widget in self._older)
        self._older_rows_cache = (width, len(self._older), rows)
        return rows

    def _grow_soon(self) -> None:
        if not self._growing:
            self._growing = True
            self.call_later(self._grow_near_viewport)

    def _grow_near_viewport(self) -> None:
        self._growing = False
        gap = self._gap
        if gap is None or not self._older:
            return
        region = self.scrollable_content_region
        if gap.parent is not self or region.height <= 0:
            self._older = []
            return
        top = round(self.scroll_y) - self.MARGIN_SCREENS * region.height
        need = self._older_rows(region.width) - top
        if need <= 0:
            return
        count = 0
        rows = 0
        while count < len(self._older) and rows < need:
            count += 1
            rows += self._outer_rows(self._older[-count], region.width)
        self._grow(count)

    def _grow(self, count: int) -> None:
        """Mount the newest `count` of the older history (at most a chunk now, the rest a frame later)."""
        gap = self._gap
        if gap is None or gap.parent is not self or count <= 0:
            return
        chunk = min(count, self.HISTORY_CHUNK, len(self._older))
        entries, self._older = self._older[-chunk:], self._older[:-chunk]
        widgets = [built(entry) for entry in entries]
        # The gap shrinks by their estimate in the same step as they are mounted below it: the rows above
        # the first message stay the same unless the estimate was wrong (then `arrange` moves the scroll).
        self.mount_all(widgets, after=gap)
        if not self._older:
            gap.remove()
            self._gap = None
        elif count > chunk:
            self.call_after_refresh(self._grow, count - chunk)

    def settle_soon(self) -> None:
        """A message changed: the next layout settles the viewport (nothing to do now)."""

    def settle(self) -> None:
        """Make the viewport's rows exact now (after a jump made outside the scroll methods)."""
        region = self.scrollable_content_region
        if region.width > 0 and region.height > 0:
            self._settle(region.width, region.height, in_layout=False)

    # --- the settle pass ------------------------------------------------------------------------------

    def _placements(self, width: int) -> list[tuple[Widget, int, int, int]]:
        """(child, first content row, content width, bottom row) as ``layout: stream`` places them."""
        placed: list[tuple[Widget, int, int, int]] = []
        y = 0
        previous: int | None = None
        geometry = self._geometry
        if len(geometry) > len(self._nodes):
            geometry.clear()  # children were removed: forget them
        for child in self._nodes:
            if not child.display:
                continue
            known = geometry.get(child)
            if known is None:
                styles = child.styles
                margin, gutter = styles.margin, styles.gutter
                known = geometry[child] = (margin.top, margin.bottom, margin.left + margin.right + gutter.width,
                                           gutter.top, gutter.height)
                self._kinds.setdefault(type(child), known)
            top, bottom, sides, gutter_top, gutter_height = known
            y += top if previous is None else max(top, previous)
            previous = bottom
            if isinstance(child, HistoryGap):
                height = self._older_rows(width)
                placed.append((child, y, 0, y + height))
            elif isinstance(child, MessageView):
                inner = max(width - sides, 1)
                height = child.content_rows(inner) + gutter_height
                placed.append((child, y + gutter_top, inner, y + height))
            else:
                height = child.outer_size.height
                placed.append((child, y, 0, y + height))
            y += height
        return placed

    def on_resize(self) -> None:
        self._geometry.clear()

    def _size_updated(self, size: Size, virtual_size: Size, container_size: Size, layout: bool = True) -> bool:
        """Textual records a new virtual size (the list grew: a streamed reply's new row) through a layout
        reactive, which repaints the whole list and lays the screen out a second time. The layout that
        reports the size has placed the children and moved the anchored scroll already, so the size is
        recorded as it is during a scroll. Pinned by ``tests/tui/test_textual_pins.py``."""
        only_virtual = self._size == size and self._container_size == container_size
        return super()._size_updated(size, virtual_size, container_size, layout and not only_virtual)

    def _settle(self, width: int, height: int, *, in_layout: bool, reach: int = 0, prefetch: bool = True) -> None:
        if self._settling:
            return
        self._settling = True
        try:
            self._settle_rounds(width, height, in_layout, reach)
        finally:
            self._settling = False
        if prefetch and not reach:
            self._prefetch_later()

    def _prefetch_later(self) -> None:
        """Once scrolling and streaming pause, render the screen above and below the viewport too, so the
        next PageUp (or the wheel) finds its blocks ready instead of rendering them in its own frame."""
        if self._prefetch_timer is not None:
            self._prefetch_timer.stop()
        self._prefetch_timer = self.set_timer(self.PREFETCH_DELAY, self._prefetch, name="prefetch")

    def _prefetch(self) -> None:
        self._prefetch_timer = None
        region = self.scrollable_content_region
        if region.width <= 0 or region.height <= 0 or self._settling:
            return
        last = self._nodes[-1] if self._nodes else None
        if self.is_following and isinstance(last, MessageView) and not last.finished:
            # Following a stream: its frames settle the screen, and its end re-arms the prefetch. A stream
            # that paused after a burst gets what it shows plain rendered now.
            if last.quiet_for() < last.PASSING_QUIET:
                self._prefetch_later()
            else:
                self._settle(region.width, region.height, in_layout=False, prefetch=False)
            return
        self._settle(region.width, region.height, in_layout=False, reach=region.height)

    def _settle_rounds(self, width: int, height: int, in_layout: bool, reach: int = 0) -> None:
        following = self.is_following
        resized = width != self._last_width
        self._last_width = width
        shift = self._resize_shift(width) if resized and not following else 0
        top = 0
        anchor: int | None = None if resized else self._last_top
        changed: set[MessageView] = set()
        for _ in range(_MAX_ROUNDS):
            placed = self._placements(width)
            total = placed[-1][3] if placed else 0
            # A reply streaming a screen of rows a frame: what is on screen now is gone by the next frame.
            last = placed[-1][0] if placed else None
            passing = following and not reach and isinstance(last, MessageView) and last.passing_rows >= height
            if following:
                top = max(0, total - height)
            else:
                top = max(0, min(round(self.scroll_y) + shift, max(0, total - height)))
            bottom = top + height
            if anchor is None or not top <= anchor < bottom:
                anchor = top
            work: list[tuple[int, MessageView, int, int]] = []
            for child, first_row, inner, child_bottom in placed:
                if child_bottom <= top - reach:
                    continue
                if first_row >= bottom + reach:
                    break
                if isinstance(child, MessageView):
                    if passing:
                        child.draw_plain_in(top - first_row, bottom - first_row, inner)
                    for row, index in child.inexact_in(top - reach - first_row, bottom + reach - first_row, inner,
                                                       plain_ok=passing):
                        work.append((first_row + row, child, index, inner))
            if not work:
                break
            # One piece per round, top to bottom: positions below it change with it.
            row, view, index, inner = work[0]
            delta = view.make_exact(index, inner)
            changed.add(view)
            if delta and not following and row < anchor:
                shift += delta
                anchor += delta
        self.settles += 1
        if reach:
            for child, first_row, inner, child_bottom in placed:
                if isinstance(child, MessageView) and child_bottom > top - reach and first_row < bottom + reach:
                    child.warm_rows(top - reach - first_row, bottom + reach - first_row, inner)
        if changed:
            self._relayout(changed, in_layout)
        if shift and not following:
            self._move_scroll(shift)
        self._last_top = top
        self._remember_top_child(placed, top)
        near_gap = placed and isinstance(placed[0][0], HistoryGap) and top - self.MARGIN_SCREENS * height < placed[0][3]
        if self._older and near_gap:
            self._grow_soon()

    def _remember_top_child(self, placed: list[tuple[Widget, int, int, int]], top: int) -> None:
        for child, first_row, _, child_bottom in placed:
            if child_bottom > top:
                self._top_child = (child, top - first_row, child_bottom - first_row)
                return
        self._top_child = None

    def _resize_shift(self, width: int) -> int:
        """Rows to move the scroll after a width change, so the message at the top of the viewport stays
        there (at the same fraction of its height): everything above it re-wrapped."""
        if self._top_child is None:
            return 0
        child, offset, old_height = self._top_child
        for placed_child, first_row, _, child_bottom in self._placements(width):
            if placed_child is child:
                height = child_bottom - first_row
                target = first_row + (round(offset * height / old_height) if old_height > 0 else offset)
                return target - round(self.scroll_y)
        return 0

    def _relayout(self, views: set[MessageView], in_layout: bool) -> None:
        """Have the coming layout re-place the views whose height changed (a layout may be running: then
        the views' new sizes repaint them)."""
        self._clear_arrangement_cache()
        pending = self.screen._layout_widgets.setdefault(self, set())
        pending.update(views)
        if not in_layout:
            for view in views:
                view.refresh(layout=True)
            self.screen._layout_required = True
            self.screen.check_idle()

    def _move_scroll(self, shift: int) -> None:
        """Move the scroll position (and a running scroll's course) by `shift` rows, without clamping:
        the coming layout makes the content tall enough."""
        shift = max(shift, -round(self.scroll_y))  # never above the top
        self.shifts.append(shift)
        animation = self.app.animator._animations.get((id(self), "scroll_y"))
        if animation is not None and hasattr(animation, "end_value"):
            animation.start_value += shift  # type: ignore[attr-defined]
            animation.end_value += shift
            animation.final_value += shift  # type: ignore[attr-defined]
        new_y = self.scroll_y + shift
        self.set_reactive(VerticalScroll.scroll_y, new_y)
        self.set_reactive(VerticalScroll.scroll_target_y, self.scroll_target_y + shift)
        self.vertical_scrollbar._reactive_position = new_y  # type: ignore[attr-defined]
        self.refresh()
