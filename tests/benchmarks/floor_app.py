"""The floor: a bare Textual app that streams a reply with httpx and paints the visible tail as plain text.

    OPENAI_BASE_URL=http://127.0.0.1:PORT/v1 python tests/benchmarks/floor_app.py

Enter sends one request; the screen shows the last lines of the reply as it arrives, repainted at most
20 times a second (chatapp's frame interval), with no Markdown, no store and no engine: the least any
Textual app can do for the same reply. `floor.py` runs it side by side with chatapp in tmux.
"""

from __future__ import annotations

import json
import os

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.widgets import Static

try:  # the HTTP client the SDKs use here
    import httpx2 as httpx
except ImportError:  # pragma: no cover
    import httpx  # type: ignore[no-redef]

FRAME_INTERVAL = 1 / 20


class Floor(App[None]):
    CSS = "Static { height: 1fr; }"
    BINDINGS = [("enter", "send", "Send"), ("ctrl+q", "quit", "Quit")]  # noqa: RUF012

    def __init__(self) -> None:
        super().__init__()
        self.pieces: list[str] = []
        self.dirty = False

    def compose(self) -> ComposeResult:
        yield Static(Text("floor ready"), id="view")

    def on_mount(self) -> None:
        self.set_interval(FRAME_INTERVAL, self.paint)

    def action_send(self) -> None:
        self.stream()

    def paint(self) -> None:
        if not self.dirty:
            return
        self.dirty = False
        view = self.query_one("#view", Static)
        height = max(view.size.height, 1)
        text = "".join(self.pieces)
        tail = text[-(height * view.size.width * 2) :].split("\n")[-height:]
        view.update(Text("\n".join(tail), no_wrap=True, overflow="crop"))

    @work(exclusive=True)
    async def stream(self) -> None:
        base = os.environ["OPENAI_BASE_URL"].rstrip("/")
        body = {"model": "floor", "stream": True, "messages": [{"role": "user", "content": "go"}]}
        headers = {"Authorization": f"Bearer {os.environ.get('OPENAI_API_KEY', 'sk-floor')}"}
        async with httpx.AsyncClient(timeout=60) as client, client.stream(
            "POST", f"{base}/chat/completions", json=body, headers=headers
        ) as response:
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                choices = json.loads(line[6:]).get("choices") or [{}]
                delta = choices[0].get("delta", {}).get("content")
                if delta:
                    self.pieces.append(delta)
                    self.dirty = True
        self.paint()


if __name__ == "__main__":
    Floor().run()
