"""Per-provider stats (requests, breaker, latency, tokens, cost), the scheduler's queues and the batch jobs
running in any process, refreshed live."""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static

from chatapp.service.stats_table import milliseconds
from chatapp.textsafe import visible

if TYPE_CHECKING:
    from chatapp.service import ChatService, Percentiles, SchedulerSnapshot, StatsSnapshot

REFRESH_SECONDS = 1.0

# Which columns stay when the screen is narrow, most useful first; shown in the table's own order.
COLUMN_PRIORITY = ("provider", "requests", "failed", "tokens in/out", "cost", "breaker", "ttft p50/p95/p99",
                   "retries", "fallbacks", "rate", "model", "ok", "latency p50/p95/p99")
_CELL_PADDING = 2  # DataTable pads each cell by one column on either side


def columns_that_fit(headers: tuple[str, ...], body: list[tuple[str, ...]], width: int) -> list[str]:
    """The columns to show in `width` cells: by COLUMN_PRIORITY while they fit, in `headers` order."""
    widths = {h: max(len(h), *(len(row[i]) for row in body)) + _CELL_PADDING if body else len(h) + _CELL_PADDING
              for i, h in enumerate(headers)}
    ranked = [h for h in COLUMN_PRIORITY if h in widths] + [h for h in headers if h not in COLUMN_PRIORITY]
    chosen: set[str] = set()
    used = 0
    for header in ranked:
        if used + widths[header] <= width or not chosen:
            chosen.add(header)
            used += widths[header]
    return [h for h in headers if h in chosen]


def scheduler_line(scheduler: SchedulerSnapshot | None) -> str:
    """One line: what runs and waits now, preemptions, and how long interactive jobs queued."""
    if scheduler is None:
        return "scheduler: not running"
    wait: Percentiles = scheduler.interactive_wait
    waited = f"p50 {milliseconds(wait.p50)} · p99 {milliseconds(wait.p99)}" if wait.count else "–"
    return (
        f"scheduler: interactive {scheduler.running_interactive} running, {scheduler.queued_interactive} queued"
        f" · background {scheduler.running_background} running, {scheduler.queued_background} queued"
        f" · batch {scheduler.running_batch} running, {scheduler.queued_batch} queued"
        f" · preemptions {scheduler.preemptions} · interactive wait {waited}"
    )


def cost_line(snapshot: StatsSnapshot) -> str:
    total = snapshot.total_cost_usd
    return "total cost: –" if total is None else f"total cost: ${total:.4f}"


class StatsScreen(ModalScreen[None]):
    """Dismisses with None."""

    CSS_PATH: ClassVar[list[str | PurePath]] = [Path(__file__).parent / "stats.tcss"]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close_stats", "Close", id="close_stats"),
        Binding("r", "refresh_stats", "Refresh", id="refresh_stats"),
    ]

    def __init__(self, service: ChatService) -> None:
        super().__init__()
        self.service = service

    def compose(self) -> ComposeResult:
        with Vertical(id="stats"):
            yield Label(Text("Provider stats"), id="stats-title")
            yield DataTable(id="stats-table", cursor_type="row", zebra_stripes=True)
            yield Static(id="stats-empty")
            yield Static(id="stats-scheduler")
            yield Static(id="stats-cost")
            yield Static(id="stats-batches")
            yield Static(Text("r refresh · esc close · live"), id="stats-help")

    @property
    def table(self) -> DataTable[Text]:
        return self.query_one("#stats-table", DataTable)

    def on_mount(self) -> None:
        self._columns: list[str] = []
        self.action_refresh_stats()
        self.set_interval(REFRESH_SECONDS, self.action_refresh_stats, name="stats-refresh")
        self.table.focus()

    def action_refresh_stats(self) -> None:
        """Read a snapshot and update the table in place, so the cursor and scroll stay put.

        On the event loop, not in a thread: the engine's counters are mutated there, and a snapshot is
        a read of a few in-memory deques plus one key from the store."""
        from chatapp.service.stats_table import HEADERS, rows  # loads the engine: kept off the first paint

        snapshot = self.service.stats()
        table = self.table
        body = {row[0]: row for row in rows(snapshot)}
        columns = columns_that_fit(HEADERS, list(body.values()), self._table_width())
        if columns != self._columns:  # the screen's width (or the figures' widths) changed the choice
            self._columns = columns
            table.clear(columns=True)
            for header in columns:
                table.add_column(Text(header), key=header)
        shown = [HEADERS.index(header) for header in columns]
        for key in [k for k in table.rows if k.value not in body]:
            table.remove_row(key)
        existing = {key.value for key in table.rows}
        for name, row in body.items():
            cells = [Text(visible(row[i])) for i in shown]
            if name in existing:
                for header, cell in zip(columns, cells, strict=True):
                    table.update_cell(name, header, cell)
            else:
                table.add_row(*cells, key=name)
        empty = self.query_one("#stats-empty", Static)
        empty.update(Text("no requests recorded yet"))
        empty.display = not body
        self.query_one("#stats-scheduler", Static).update(Text(visible(scheduler_line(snapshot.scheduler))))
        self.query_one("#stats-cost", Static).update(Text(visible(cost_line(snapshot))))
        batches = self.service.running_batches()
        self.query_one("#stats-batches", Static).update(
            Text(visible("\n".join(batches) if batches else "batch jobs: none running")))

    def _table_width(self) -> int:
        width = self.query_one("#stats", Vertical).scrollable_content_region.width
        return width if width > 0 else max(20, self.app.size.width * 95 // 100 - 4)

    def on_resize(self) -> None:
        self.action_refresh_stats()

    def action_close_stats(self) -> None:
        self.dismiss(None)
