"""What the message list holds besides mounted widgets: messages not built yet (`Deferred`), the gap that
stands in for them (`HistoryGap`), their estimated rows, and a spatial map fit for a list that tall."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from textual._spatial_map import SpatialMap
from textual.geometry import Size
from textual.layout import WidgetPlacement
from textual.strip import Strip
from textual.widget import Widget

from chatapp.tui.widgets.message_view import MessageView

Geometry = tuple[int, int, int, int, int]
"""A child's top margin, bottom margin, horizontal margins + gutter, top gutter, vertical gutter."""
DEFAULT_GEOMETRY: Geometry = (1, 0, 3, 0, 0)  # `.message`: margin-top 1, a border and padding of 1 aside


class HistoryGap(Widget):
    """Stands in for the older messages not mounted yet: blank, exactly as tall as their estimated rows."""

    DEFAULT_CSS = "HistoryGap { height: auto; }"

    def __init__(self, rows: Callable[[int], int]) -> None:
        super().__init__()
        self._rows = rows

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return self._rows(width)

    def render_line(self, y: int) -> Strip:
        return Strip.blank(self.size.width, self.rich_style)


_SPATIAL_ROWS = 2_000


def coarse_spatial_map(placements: list[WidgetPlacement]) -> SpatialMap[WidgetPlacement]:
    """The arrangement's spatial map in squares of `_SPATIAL_ROWS` rows instead of Textual's 20.

    Textual files each placement under every square it covers, on every layout; the history gap and a
    long reply cover tens of thousands of rows (thousands of squares), while the list holds only the
    few messages near the viewport, so a few tall squares answer its queries as well. Built as
    `DockArrangeResult.spatial_map` builds it (pinned by ``tests/tui/test_textual_pins.py``).
    """
    spatial: SpatialMap[WidgetPlacement] = SpatialMap(grid_width=100, grid_height=_SPATIAL_ROWS)
    spatial.insert((placement.region.grow(placement.margin), placement.offset, placement.fixed, placement.overlay,
                    placement) for placement in placements)
    return spatial


@runtime_checkable
class Deferred(Protocol):
    """A message not built as a widget yet (a long history's older messages are data until scrolled to)."""

    widget_type: type[Widget]
    widget: Widget | None
    """The widget once built."""

    def build(self) -> Widget: ...

    def estimated_rows(self, width: int) -> int: ...


Entry = Widget | Deferred


def estimated_rows(entry: Entry, width: int) -> int:
    """Content rows of a message (widget or not built yet) at `width`, without mounting it."""
    if isinstance(entry, MessageView):
        return entry.content_rows(width)
    estimate = getattr(entry, "estimated_rows", None)
    return int(estimate(width)) if callable(estimate) else 1


# (`isinstance` against a runtime-checkable protocol inspects its members on every call: a resize asks
# it of every unmounted message, so the cheap class check comes first.)
def kind_of(entry: Entry) -> type[Widget]:
    return type(entry) if isinstance(entry, Widget) else entry.widget_type


def built(entry: Entry) -> Widget:
    if isinstance(entry, Widget):
        return entry
    if entry.widget is None:
        entry.widget = entry.build()
    return entry.widget
