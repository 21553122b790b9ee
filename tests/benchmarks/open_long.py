"""Opening a long conversation, and what the view costs after that (headless, 120x40).

    python tests/benchmarks/open_long.py [--messages 1000] [--words 1000]

Builds a conversation of `--messages` messages (every second one a reply of about `--words` words of the
realistic Markdown reply) in a fresh database, then in a fresh process opens it in the app and prints:
seconds from opening to the first screen painted (with the last reply's text on it), peak RSS of the
process, CPU for one PageUp after that, CPU for a resize, and the seconds select-all takes over a
10,000-token reply. Then the same PageUp and resize in a bare Textual app (a line widget showing plain
text, an Input and a Footer): what Textual itself costs for them in this harness.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "tui"))

from sample_texts import REALISTIC_UNIT  # noqa: E402

_KEYS_AND_RESIZE = r"""
async def keys_and_resize(pilot):
    # CPU seconds for a key bound to nothing (what a key press and the pause cost by themselves), a PageUp
    # and a resize to 100 columns.
    import time
    cpu = time.process_time()
    await pilot.press("f19")
    await pilot.pause(0.05)
    idle_key = time.process_time() - cpu
    cpu = time.process_time()
    await pilot.press("pageup")
    await pilot.pause(0.05)
    page_up = time.process_time() - cpu
    cpu = time.process_time()
    await pilot.resize_terminal(100, 40)
    await pilot.pause(0.05)
    return idle_key, page_up, time.process_time() - cpu
"""

_MEASURE = r"""
import asyncio, resource, sys, time
started = time.perf_counter()
from chatapp.config import load_settings
from chatapp.service import ChatService
from chatapp.tui.app import ChatApp
from chatapp.tui.widgets.message import AssistantMessage
from chatapp.tui.widgets.message_list import MessageList

async def main():
    service = ChatService.open(load_settings())
    conversation = service.latest_conversation()
    opened = time.perf_counter()
    app = ChatApp(service, service.target_for(None), conversation.id)
    async with app.run_test(size=(120, 40)) as pilot:
        while True:
            views = app.screen.query(AssistantMessage)
            strips = app.screen._compositor.render_strips()
            if views and any("Step" in strip.text or "load_settings" in strip.text for strip in strips):
                break
            await asyncio.sleep(0.005)
        first_screen = time.perf_counter() - opened
        messages = app.screen.query_one(MessageList)
        # Measure the view, not the start-up work that follows the first screen: the SDK warming in a
        # thread and the context gauge counting the whole conversation.
        while not any(worker.name == "warm-provider" for worker in app.workers):
            await asyncio.sleep(0.01)
        await app.workers.wait_for_complete()
        await pilot.pause(0.3)
        idle_key, page_up, resize = await keys_and_resize(pilot)
        last = app.screen.query(AssistantMessage).last()
        tick = time.perf_counter()
        app.screen._select_all_in_widget(last)
        text = app.screen.get_selected_text()
        select_all = time.perf_counter() - tick
        assert text and len(text) > 1000
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        splits = sum(view.is_split for view in app.screen.query(AssistantMessage))
        renders = sum(view.block_renders for view in app.screen.query(AssistantMessage))
        print(f"first screen {first_screen:.2f} s (imports {opened - started:.2f} s before it), "
              f"peak RSS {rss:.0f} MiB, PageUp {page_up * 1000:.1f} ms CPU (an unbound key {idle_key * 1000:.1f} ms), "
              f"resize {resize * 1000:.1f} ms CPU, "
              f"select-all {select_all * 1000:.1f} ms over {len(text):,} chars; "
              f"{splits} replies cut into blocks, {renders} Rich block renders")
    service.close()

asyncio.run(main())
"""


_BARE = r"""
import asyncio, sys, time
from rich.segment import Segment
from textual.app import App
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Footer, Input

class Lines(ScrollView, can_focus=True):
    BINDINGS = [("pageup", "page_up_now")]  # chatapp's PageUp scrolls without animation too

    def action_page_up_now(self):
        self.scroll_page_up(animate=False)

    def __init__(self, lines):
        super().__init__()
        self.lines = lines
        self.virtual_size = Size(120, len(lines))

    def render_line(self, y):
        index = self.scroll_offset.y + y
        text = self.lines[index] if index < len(self.lines) else ""
        return Strip([Segment(text)]).crop_extend(0, self.size.width, None)

class Bare(App):
    BINDINGS = [("ctrl+q", "quit", "Quit"), ("f2", "quit", "Next provider"), ("f3", "quit", "Models")]

    def compose(self):
        yield Lines(sys.stdin.read().splitlines())
        yield Input()
        yield Footer()

async def main():
    app = Bare()
    async with app.run_test(size=(120, 40)) as pilot:
        view = app.query_one(Lines)
        view.focus()
        view.scroll_end(animate=False)
        await pilot.pause(0.5)
        idle_key, page_up, resize = await keys_and_resize(pilot)
        print(f"a bare Textual app (a line widget of plain text, an Input, a Footer), same steps: "
              f"PageUp {page_up * 1000:.1f} ms CPU (an unbound key {idle_key * 1000:.1f} ms), "
              f"resize {resize * 1000:.1f} ms CPU")

asyncio.run(main())
"""


def reply(words: int) -> str:
    units = []
    count = 0
    while count < words:
        unit = REALISTIC_UNIT.format(n=len(units) + 1)
        units.append(unit)
        count += len(unit.split())
    return "".join(units)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--words", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, XDG_CONFIG_HOME=f"{home}/config", XDG_DATA_HOME=f"{home}/data",
                   XDG_CACHE_HOME=f"{home}/cache", OPENAI_API_KEY="sk-open", OPENAI_BASE_URL="http://127.0.0.1:9/v1",
                   PYTHONPATH=str(TESTS.parent))
        os.environ.update(env)
        from chatapp.config import load_settings
        from chatapp.domain import MessageStatus, Role
        from chatapp.store.conversations import Store

        store = Store.open(load_settings().paths.database)
        conversation = store.create_conversation("openai", "gpt-4o-mini", title="long")
        text = reply(args.words)
        last = reply(7500)  # ~10,000 tokens: the select-all figure
        for index in range(args.messages // 2):
            store.add_message(conversation.id, Role.USER, f"question {index}")
            content = last if index == args.messages // 2 - 1 else text
            store.add_message(conversation.id, Role.ASSISTANT, content, MessageStatus.COMPLETE, "openai", "gpt-4o-mini")
        store.close()
        words = (args.messages // 2 - 1) * len(text.split()) + len(last.split())
        print(f"{args.messages} messages, {words:,} words")
        subprocess.run([sys.executable, "-c", _KEYS_AND_RESIZE + _MEASURE], env=env, check=False)
        subprocess.run([sys.executable, "-c", _KEYS_AND_RESIZE + _BARE], env=env, check=False, input=text * 4,
                       text=True)


if __name__ == "__main__":
    main()
