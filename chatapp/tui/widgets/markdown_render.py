"""How every Markdown block is drawn: `render_block` turns one block (`markdown_blocks.Block`) into a Rich
renderable. The message widget (`message_view.MessageView`) calls it for the blocks in the viewport only;
`block_rows` counts the rows it takes with the same parse (`parse_safe`).

Safety: every complete line goes through `chatapp.textsafe.visible` in the splitter (after line endings
are normalised on the accumulated text, so a CRLF split across two deltas stays one newline), and again
after the Markdown parser has decoded entities (``&#x202e;``). Text only ever reaches Rich as a
``Markdown`` or ``Syntax`` renderable, never as console markup, so ``[/]`` and ``[@click=app.quit]`` show
literally. Links become terminal hyperlinks (OSC 8), never Textual ``@click`` actions, and a link's text
is followed by where it goes.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.padding import Padding
from rich.segment import Segment

from chatapp.textsafe import visible
from chatapp.tui.widgets.markdown_blocks import Block

__all__ = ["DARK_CODE_THEME", "LIGHT_CODE_THEME", "parse_safe", "render_block"]

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token
    from rich.markdown import Markdown

DARK_CODE_THEME = "monokai"
LIGHT_CODE_THEME = "friendly"


def _safe_markdown(markup: str, code_theme: str) -> RenderableType:
    """Rich ``Markdown`` with control characters made visible after entity decoding too.

    Imported here, not at module level: the Markdown parser (~35 ms) is not needed for the first paint.
    """
    markdown = _markdown(markup, code_theme)
    _sanitize_tokens(markdown.parsed)
    return markdown


_RICH_MARKDOWN_FIELDS = frozenset({
    "markup", "parsed", "code_theme", "justify", "style", "hyperlinks", "inline_code_lexer", "inline_code_theme",
})


@cache
def _shared_parser() -> MarkdownIt:
    from markdown_it import MarkdownIt

    return MarkdownIt().enable("strikethrough").enable("table")


@cache
def _rich_fields_match() -> bool:
    from rich.markdown import Markdown

    return frozenset(vars(Markdown(""))) == _RICH_MARKDOWN_FIELDS


def _markdown(markup: str, code_theme: str) -> Markdown:
    """A Rich ``Markdown`` parsed with one shared markdown-it parser.

    Rich builds a new parser for every document: 0.6 ms of the 0.9 ms a short block costs. Blocks
    share one here, filling in the fields Rich's constructor sets; if a Rich release changes those
    fields, Rich's own constructor is used instead.
    """
    from rich.markdown import Markdown

    if not _rich_fields_match():
        return Markdown(markup, code_theme=code_theme)
    markdown = Markdown.__new__(Markdown)
    markdown.markup = markup
    markdown.parsed = _shared_parser().parse(markup)
    markdown.code_theme = code_theme
    markdown.justify = None
    markdown.style = "none"
    markdown.hyperlinks = True
    markdown.inline_code_lexer = None
    markdown.inline_code_theme = code_theme
    return markdown


def parse_safe(markup: str) -> list[Token]:
    """The shared parser's tokens for `markup`, sanitized and with link targets shown, as they are drawn."""
    tokens = _shared_parser().parse(markup)
    _sanitize_tokens(tokens)
    return tokens


def _sanitize_tokens(tokens: Iterable[Token]) -> None:
    for token in tokens:
        token.content = visible(token.content)
        token.info = visible(token.info)
        for key, value in token.attrs.items():
            if isinstance(value, str):
                token.attrs[key] = visible(value)
        if token.children:
            _sanitize_tokens(token.children)
            token.children = _show_link_targets(token.children)


def _show_link_targets(children: list[Token]) -> list[Token]:
    """A link's text is followed by where it goes (its host; the whole target for other schemes) unless the
    text already says so, so `[click me](https://evil...)` cannot hide its address. Only http and https
    targets stay links; anything else (`javascript:`, `file:`) becomes plain text."""
    from markdown_it.token import Token

    result: list[Token] = []
    label: str | None = None  # inside a link: what to show after it
    neutered = False
    words: list[str] = []
    for token in children:
        if token.type == "link_open":
            href = str(token.attrs.get("href", ""))
            scheme = urlsplit(href).scheme.lower()
            neutered = scheme not in ("http", "https")
            label = href if neutered else (urlsplit(href).hostname or href)
            words = []
            if neutered:
                continue
        elif token.type == "link_close" and label is not None:
            if not neutered:
                result.append(token)
            if label not in "".join(words):
                result.append(Token("text", "", 0, content=f" ({label})"))
            label = None
            continue
        elif label is not None and token.type in ("text", "code_inline"):
            words.append(token.content)
        result.append(token)
    return result


def render_block(block: Block, code_theme: str) -> RenderableType:
    """The Rich renderable for one block."""
    renderable: RenderableType
    if block.kind == "code":
        code = block.text.rstrip() if block.last else block.text
        padding = (1 if block.first else 0, 1, 1 if block.last else 0, 1)
        language = block.language.partition(" ")[0] or "text"
        from rich.syntax import Syntax

        renderable = Syntax(code, language, theme=code_theme, word_wrap=True, padding=padding)
    else:
        renderable = _Trimmed(_safe_markdown(block.text, code_theme))
    return Padding(renderable, (1, 0, 0, 0)) if block.gap else renderable


class _Trimmed:
    """A renderable without its leading and trailing blank lines.

    Rich's ``Markdown`` starts a list or a table with a blank line (in a whole document it separates
    them from what came before) and draws a table with blank top and bottom edges; the spacing between
    blocks is `Block.gap`. Lines with a background colour (code block padding) are kept.
    """

    def __init__(self, renderable: RenderableType) -> None:
        self.renderable = renderable

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines = console.render_lines(self.renderable, options)
        start, end = 0, len(lines)
        while start < end and _blank(lines[start]):
            start += 1
        while end > start and _blank(lines[end - 1]):
            end -= 1
        new_line = Segment.line()
        for line in lines[start:end]:
            yield from line
            yield new_line


def _blank(line: list[Segment]) -> bool:
    return all(not text.strip() and (style is None or style.bgcolor is None) for text, style, _ in line)
