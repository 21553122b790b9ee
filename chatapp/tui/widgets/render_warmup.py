"""Warming the Markdown renderer before the first reply needs it."""

from __future__ import annotations

import io

from rich.console import Console

from chatapp.tui.widgets.markdown_blocks import BlockSplitter
from chatapp.tui.widgets.markdown_render import DARK_CODE_THEME, render_block


def warm_rendering() -> None:
    """Build, off the first reply's path, what its first render would build: the Markdown parser, Rich's
    Markdown and the Python lexer (pygments compiles its rules on first use: ~0.1 s). Blocking: for a
    worker thread; it renders into a console of its own."""
    splitter = BlockSplitter()
    blocks = splitter.feed("# Warm\n\nSome *text* and `code`.\n\n- an item\n\n```python\nx = 1\n```\n")
    console = Console(file=io.StringIO(), width=80, color_system="truecolor")
    for block in [*blocks, *splitter.finish()]:
        console.print(render_block(block, DARK_CODE_THEME))
