"""Find the code blocks of a Markdown message, as raw text, for "copy code block"."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from markdown_it import MarkdownIt


@cache
def _parser() -> MarkdownIt:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark")


def code_blocks(markdown: str) -> list[str]:
    """The text of each fenced or indented code block, in order, exactly as written (no fence lines)."""
    return [token.content for token in _parser().parse(markdown) if token.type in ("fence", "code_block")]
