"""The conversation's scrolling list; before each frame it makes the rows in the viewport exact.

Messages (`MessageView`) know their height only approximately until their blocks are rendered. The list
*settles* the viewport before Textual lays it out — in `arrange` (any layout: new text, a resize, new
messages) and when the scroll position changes (keys, wheel, a running smooth scroll): every block in
the viewport whose height is an estimate is rendered (a history message is first cut into blocks).
When a block above the text already on screen turns out taller or shorter than estimated, the scroll
position moves by the same number of rows — and so does the course of a running scroll animation — so
the text on screen never moves. At the bottom (anchored) the bottom rows are settled instead. When
messages are inserted above the first one (an opening conversation's older messages, mounted after its
first screen), the scroll moves by the rows they add, for the same reason.

Textual internals this relies on, pinned by ``tests/tui/test_textual_pins.py``: the compositor calls
`arrange` with the content size before placing children; ``layout: stream`` re-places a child that is
listed in ``Screen._layout_widgets`` and reuses the others' placements; a scroll animation is a
``SimpleAnimation`` in ``App.animator._animations`` keyed by ``(id(widget), "scroll_y")`` whose
``start_value``/``end_value``/``final_value`` can be moved.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import ClassVar

from textual.containers import VerticalScroll
from textual.geometry import Size
from textual.layout import DockArrangeResult
from textual.widget import Widget

from chatapp.tui.widgets.message_view import MessageView

_MAX_ROUNDS = 200


class MessageList(VerticalScroll):
    """A vertical list of messages that renders only what the viewport shows."""

    FIRST_SCREEN: ClassVar[int] = 40
    """History widgets mounted at once when a conversation opens (the newest)."""
    HISTORY_CHUNK: ClassVar[int] = 100
    """Older history widgets mounted per step after that."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._settling = False
        self._last_top: int | None = None  # the window top of the last settle
        self._last_width = -1
        self._first: Widget | None = None  # the first child at the last layout, and its row
        self._first_y = 0
        self._geometry: dict[Widget, tuple[int, int, int, int, int]] = {}  # margins and gutters per child
        self.settles = 0
        self.shifts: list[int] = []
        """Scroll corrections made (tests and benchmarks read them)."""

    @property
    def is_following(self) -> bool:
        """Anchored at the bottom: new text scrolls into view."""
        return self._anchored and not self._anchor_released

    def arrange(self, size: Size, optimal: bool = False) -> DockArrangeResult:
        first = next(iter(self._nodes), None)
        inserted_above = self._first is not None and first is not self._first and not self.is_following
        if size.width > 0 and size.height > 0 and self.is_attached and not inserted_above:
            self._settle(size.width, size.height, in_layout=True)
        result = super().arrange(size, optimal)
        placements = result.placements
        if inserted_above:
            # Older messages arrived above: what was on screen stays (and is settled already).
            for placement in placements:
                if placement.widget is self._first:
                    if placement.region.y != self._first_y:
                        self._move_scroll(placement.region.y - self._first_y)
                        self._last_top = round(self.scroll_y)
                    break
        if placements:
            self._first, self._first_y = placements[0].widget, placements[0].region.y
        return result

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if not self._settling and round(old_value) != round(new_value):
            region = self.scrollable_content_region
            if region.width > 0 and region.height > 0:
                self._settle(region.width, region.height, in_layout=False)

    # --- long histories -------------------------------------------------------------------------------

    def show_history(self, widgets: Sequence[Widget]) -> None:
        """Show a conversation's widgets (built as data: nothing is rendered yet), newest at the bottom.

        The newest `FIRST_SCREEN` widgets are mounted now, for the first screen; older ones are mounted
        above them afterwards, `HISTORY_CHUNK` at a time, each chunk keeping the text on screen still.
        """
        self.follow()
        newest, older = list(widgets[-self.FIRST_SCREEN :]), list(widgets[: -self.FIRST_SCREEN])
        if newest:
            self.mount_all(newest)
        if older:
            self.call_after_refresh(self._start_older, older)  # after the first screen is painted

    def _start_older(self, older: list[Widget]) -> None:
        self.run_worker(self._mount_older(older), name="history", group="history", exclusive=True,
                        exit_on_error=False)

    def follow(self) -> None:
        """Stay at the bottom as text arrives (until the user scrolls up)."""
        self.anchor()

    async def _mount_older(self, older: list[Widget]) -> None:
        while older:
            chunk, older = older[-self.HISTORY_CHUNK :], older[: -self.HISTORY_CHUNK]
            first = next(iter(self._nodes), None)
            await (self.mount_all(chunk, before=first) if first is not None else self.mount_all(chunk))
            await asyncio.sleep(0.02)  # a frame for the user between chunks

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
            top, bottom, sides, gutter_top, gutter_height = known
            y += top if previous is None else max(top, previous)
            previous = bottom
            if isinstance(child, MessageView):
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

    def _settle(self, width: int, height: int, *, in_layout: bool) -> None:
        if self._settling:
            return
        self._settling = True
        try:
            self._settle_rounds(width, height, in_layout)
        finally:
            self._settling = False

    def _settle_rounds(self, width: int, height: int, in_layout: bool) -> None:
        following = self.is_following
        resized = width != self._last_width
        self._last_width = width
        shift = 0
        top = 0
        anchor: int | None = None if resized else self._last_top
        changed: set[MessageView] = set()
        for _ in range(_MAX_ROUNDS):
            placed = self._placements(width)
            total = placed[-1][3] if placed else 0
            if following:
                top = max(0, total - height)
            else:
                top = max(0, min(round(self.scroll_y) + shift, max(0, total - height)))
            bottom = top + height
            if anchor is None or not top <= anchor < bottom:
                anchor = top
            work: list[tuple[int, MessageView, int, int]] = []
            for child, first_row, inner, child_bottom in placed:
                if child_bottom <= top:
                    continue
                if first_row >= bottom:
                    break
                if isinstance(child, MessageView):
                    for row, index in child.inexact_in(top - first_row, bottom - first_row, inner):
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
        if changed:
            self._relayout(changed, in_layout)
        if shift and not following:
            self._move_scroll(shift)
        self._last_top = top

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
