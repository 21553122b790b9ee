"""Benchmark: render a streamed Markdown reply in `StreamingMarkdown`, token by token.

A headless app with an anchored VerticalScroll (as in the chat view) receives realistic Markdown
(headings, paragraphs, bullet and ordered lists, fenced Python, tables) one token-ish chunk at a time,
with ``await asyncio.sleep(0)`` between chunks (a stream as fast as the event loop allows), then
``finish()``; the clock stops when the last blocks are mounted and painted. Printed per size: total
seconds, microseconds per token, and the ratio of per-token cost at the largest size to the smallest.
The cost per token should stay flat (ratio near 1; target <= 1.5).

With ``--rate N`` the chunks are paced at N tokens/s instead (a steady stream, so that the widget
renders ~30 frames a second all along) and the figure is process CPU time per token: what a long
reply costs the machine while it streams.

    /work/.venv/bin/python tests/benchmarks/widget_render.py [--sizes 500 2000 10000] [--repeat 3]
    /work/.venv/bin/python tests/benchmarks/widget_render.py --rate 1000 --repeat 1
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import statistics
import sys
import time
from pathlib import Path

from textual.app import App, ComposeResult
from textual.containers import VerticalScroll

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tui"))  # the previous widget lives with the tests

from previous_renderer import CSS_FILE, MarkdownBlock, StreamingMarkdown

_WORDS = (  # noqa: SIM905 (a word list reads better as one string)
    "the a model token stream render block widget cache layout terminal reply user message context "
    "window provider retry budget latency frame buffer parse list table code function value result "
    "return error state event queue worker screen scroll anchor markdown heading paragraph python"
).split()


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(6, 18))]
    if rng.random() < 0.3:
        words[rng.randrange(len(words))] = f"`{rng.choice(_WORDS)}()`"
    if rng.random() < 0.2:
        words[rng.randrange(len(words))] = f"**{rng.choice(_WORDS)}**"
    return " ".join(words).capitalize() + "."


def _code(rng: random.Random) -> str:
    lines = ["```python"]
    for n in range(rng.randint(3, 6)):
        name = rng.choice(_WORDS)
        lines += [
            f"def {name}_{n}(items: list[int], limit: int = {rng.randint(1, 99)}) -> int:",
            f'    """Sum the {name} items up to a limit."""',
            "    total = 0",
            "    for item in items:",
            "        if item > limit:",
            "            break",
            f"        total += item * {rng.randint(2, 9)}  # {rng.choice(_WORDS)}",
            "    return total",
            "",
        ]
    lines[-1] = "```"
    return "\n".join(lines)


def _table(rng: random.Random) -> str:
    rows = ["| Name | Count | Notes |", "|------|------:|-------|"]
    rows += [
        f"| {rng.choice(_WORDS)} | {rng.randint(1, 999)} | {' '.join(rng.choices(_WORDS, k=4))} |"
        for _ in range(rng.randint(3, 7))
    ]
    return "\n".join(rows)


def make_markdown(tokens: int, seed: int = 1) -> list[str]:
    """Realistic Markdown cut into about `tokens` token-ish chunks."""
    rng = random.Random(seed)
    parts: list[str] = []
    chunks: list[str] = []
    section = 0
    while len(chunks) < tokens:
        section += 1
        parts = [f"## {section}. {_sentence(rng)[:-1]}"]
        parts += [" ".join(_sentence(rng) for _ in range(rng.randint(2, 5))) for _ in range(2)]
        parts.append("\n".join(f"- {_sentence(rng)}" for _ in range(rng.randint(3, 6))))
        parts.append("\n\n".join(f"{i}. {_sentence(rng)}" for i in range(1, rng.randint(3, 5))))
        parts.append(_code(rng))
        parts.append(_table(rng))
        parts.append(_sentence(rng))
        chunks += re.findall(r"\s*[^\s]{1,5}|\s+", "\n\n".join(parts) + "\n\n")
    return chunks[:tokens]


class BenchApp(App[None]):
    CSS_PATH = CSS_FILE
    CSS = "VerticalScroll { scrollbar-gutter: stable; }"

    def compose(self) -> ComposeResult:
        yield VerticalScroll()


async def run_once(tokens: int, rate: float = 0) -> tuple[float, int]:
    """Seconds to stream and render `tokens` tokens (CPU seconds if paced at `rate`), and blocks."""
    chunks = make_markdown(tokens)
    app = BenchApp()
    async with app.run_test(size=(100, 40)) as pilot:
        scroll = app.query_one(VerticalScroll)
        scroll.anchor()
        widget = StreamingMarkdown(streaming=True)
        await scroll.mount(widget)
        await pilot.pause()
        clock = time.process_time if rate else time.perf_counter
        start, begun = clock(), time.perf_counter()
        for n, chunk in enumerate(chunks, 1):
            widget.append(chunk)
            await asyncio.sleep(max(0.0, begun + n / rate - time.perf_counter()) if rate else 0)
        widget.finish()
        await widget.wait_finished()
        await pilot.pause()
        elapsed = clock() - start
        assert widget.text == "".join(chunks)
        blocks = len(widget.query(MarkdownBlock))
    return elapsed, blocks


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2_000, 10_000])
    parser.add_argument("--repeat", type=int, default=3, help="runs per size; the median is printed")
    parser.add_argument("--rate", type=float, default=0, help="pace the stream at this many tokens/s")
    args = parser.parse_args()
    per_token: dict[int, float] = {}
    await run_once(200)  # warm imports and caches
    unit = f"CPU at {args.rate:g} tokens/s" if args.rate else "wall clock, as fast as possible"
    print(f"StreamingMarkdown, {unit}, median of {args.repeat}")
    for size in args.sizes:
        runs = [await run_once(size, args.rate) for _ in range(args.repeat)]
        seconds = statistics.median(elapsed for elapsed, _ in runs)
        per_token[size] = seconds / size * 1e6
        print(f"{size:>6} tokens: {seconds:6.3f} s  {per_token[size]:7.1f} µs/token  ({runs[0][1]} blocks)")
    small, large = min(per_token), max(per_token)
    print(f"per-token ratio {large}/{small}: {per_token[large] / per_token[small]:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
