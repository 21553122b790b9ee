"""The stats screen, mounted on its own in a tiny app, after turns against the scripted server."""

from functools import partial

import pytest
import tui_helpers
from rich.text import Text
from textual.app import App
from textual.widgets import DataTable, Static

from chatapp.config import load_settings
from chatapp.domain import MessageStatus, TurnFinished
from chatapp.service import ChatService
from chatapp.service.stats_table import HEADERS
from chatapp.tui.screens import stats
from chatapp.tui.screens.stats import StatsScreen

wait_for = partial(tui_helpers.wait_for, timeout=5.0)


@pytest.fixture
async def service(isolated_env, fake_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-tui-test")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_server.openai_base_url)
    service = ChatService.open(load_settings())
    yield service
    await service.aclose()


class Host(App[None]):
    def __init__(self, service: ChatService) -> None:
        super().__init__()
        self.service = service
        self.results: list[None] = []

    def on_mount(self) -> None:
        self.push_screen(StatsScreen(self.service), self.results.append)


async def one_turn(service: ChatService, text: str = "hello") -> None:
    events = [event async for event in service.send(None, text)]
    assert isinstance(events[-1], TurnFinished) and events[-1].status is MessageStatus.COMPLETE


def row(screen: StatsScreen, provider: str) -> dict[str, str]:
    table = screen.query_one("#stats-table", DataTable)
    cells = table.get_row(provider)
    assert all(isinstance(cell, Text) for cell in cells)
    return dict(zip((key.value for key in table.columns), (cell.plain for cell in cells), strict=True))


def text_of(screen: StatsScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def test_shows_the_provider_row_and_refreshes(service):
    await one_turn(service)
    app = Host(service)
    async with app.run_test(size=(200, 30)) as pilot:
        screen = pilot.app.screen
        assert isinstance(screen, StatsScreen)
        table = screen.query_one("#stats-table", DataTable)
        assert [column.label.plain for column in table.columns.values()] == list(HEADERS)
        assert table.row_count == 1
        first = row(screen, "openai")
        assert first["requests"] == "1" and first["ok"] == "1" and first["failed"] == "0"
        assert first["breaker"] == "closed"
        assert first["model"] == "gpt-4o-mini"
        assert first["latency p50/p95/p99"].endswith("ms")
        assert not screen.query_one("#stats-empty", Static).display
        scheduler = text_of(screen, "#stats-scheduler")
        assert "interactive 0 running, 0 queued" in scheduler and "preemptions 0" in scheduler
        assert "interactive wait p50" in scheduler
        assert text_of(screen, "#stats-cost").startswith("total cost: $")

        await one_turn(service, "again")  # no key pressed: the one-second timer picks it up
        await wait_for(lambda: row(screen, "openai")["requests"] == "2", pilot, timeout=3)
        assert table.row_count == 1

        await pilot.press("escape")
        await wait_for(lambda: app.results, pilot)
    assert app.results == [None]


@pytest.mark.parametrize("size", [(120, 40), (60, 20)])
async def test_columns_are_chosen_by_width(service, size):
    await one_turn(service)
    async with Host(service).run_test(size=size) as pilot:
        screen = pilot.app.screen
        await pilot.pause(0.1)
        table = screen.query_one("#stats-table", DataTable)
        shown = [column.label.plain for column in table.columns.values()]
        assert {"provider", "requests", "tokens in/out"} <= set(shown)
        if size[0] >= 120:
            assert {"cost", "rate", "failed"} <= set(shown)
        assert shown == [h for h in HEADERS if h in shown]
        assert table.virtual_size.width <= table.scrollable_content_region.width  # nothing off-screen
        help_line = screen.query_one("#stats-help", Static)
        assert "esc close" in str(help_line.render()) and help_line.size.width >= len(str(help_line.render()))


async def test_empty_at_first_then_r_refreshes(service, monkeypatch):
    monkeypatch.setattr(stats, "REFRESH_SECONDS", 60.0)  # only the key refreshes here
    async with Host(service).run_test(size=(160, 30)) as pilot:
        screen = pilot.app.screen
        table = screen.query_one("#stats-table", DataTable)
        assert table.row_count == 0
        assert "no requests recorded yet" in text_of(screen, "#stats-empty")
        assert "interactive wait –" in text_of(screen, "#stats-scheduler")
        await one_turn(service)
        await pilot.pause()
        assert table.row_count == 0
        await pilot.press("r")
        assert row(screen, "openai")["requests"] == "1"
        assert not screen.query_one("#stats-empty", Static).display


async def test_ctrl_o_in_the_chat_opens_the_stats_screen(isolated_env, fake_server, monkeypatch):
    from chatapp.tui.app import ChatApp
    from chatapp.tui.screens.stats import StatsScreen

    monkeypatch.setenv("OPENAI_API_KEY", "k")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_server.openai_base_url)
    service = ChatService.open(load_settings())
    async with ChatApp(service, service.target_for(None)).run_test() as pilot:
        await pilot.press("ctrl+o")
        await pilot.pause(0.2)
        assert isinstance(pilot.app.screen, StatsScreen)
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert not isinstance(pilot.app.screen, StatsScreen)


async def test_running_batch_jobs_are_listed(service, isolated_env, monkeypatch):
    import os

    from chatapp.store.batch_jobs import BatchJobs, ItemResult, ItemState

    monkeypatch.setattr(stats, "REFRESH_SECONDS", 60.0)
    async with Host(service).run_test(size=(160, 30)) as pilot:
        screen = pilot.app.screen
        assert text_of(screen, "#stats-batches") == "batch jobs: none running"
        assert "batch 0 running, 0 queued" in text_of(screen, "#stats-scheduler")
        jobs = BatchJobs.open(isolated_env.batch_database)  # as a `chatapp batch` in another process would
        job = jobs.create_job("bquick", mode="live", input_path=isolated_env.data_dir / "in.jsonl",
                              output_path=isolated_env.data_dir / "out.jsonl",
                              dead_letter_path=isolated_env.data_dir / "dead.jsonl", options={}, total=4)
        jobs.record(job.id, ItemResult(0, "a", ItemState.DONE, text="x", cost=0.5))
        assert job.pid == os.getpid()
        await pilot.press("r")
        assert text_of(screen, "#stats-batches") == (
            "batch bquick (live): 1/4 (25%), 0 failed, $0.5000 · chatapp batch status bquick")
        jobs.close()
