"""How many rows a finished block takes on screen at a width, computed without rendering it.

A message keeps its finished blocks as text and renders only those that touch the viewport; the rows
of all the others come from here. The rules are Rich's (rich 15), re-stated for counting:

* a paragraph or heading wraps word by word (a word is its leading spaces, the word and its trailing
  spaces; trailing spaces may overhang; a word wider than the line is folded by cells);
* top-level elements are separated by a blank line (not after a rule, always before a list, quote or
  table); the block's leading and trailing blank lines are trimmed (`markdown_render._Trimmed`);
* a bullet item is indented 3 columns, an ordered item by the width of the last number plus 2, a quote
  by 4; a rule is a line and a blank line;
* a table (``box.SIMPLE``, no edge padding, collapsed padding) has blank top and bottom edges and a
  line under the header; its column widths are Rich's: each column's widest cell, shrunk from the
  widest column down when the table is too wide, then evenly, then a cell wraps inside its column;
* code (``Syntax`` with word wrap) is padded by a row above the first chunk and below the last and by
  a column either side; tabs are 4 columns.

The parse is the renderer's (`markdown_render.parse_safe`: the shared markdown-it parser, control
characters made visible, link targets shown), so the text measured is the text drawn. What is not
modelled (images, raw HTML blocks inside lists) only makes an estimate wrong; the message list corrects
the scroll when it renders the block.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from rich.cells import cell_len, chop_cells

from chatapp.textsafe import visible

if TYPE_CHECKING:
    from markdown_it.token import Token

    from chatapp.tui.widgets.markdown_blocks import Block

_WORD = re.compile(r"\s*\S+\s*")
CODE_TAB_SIZE = 4


def _parse(text: str) -> list[Token]:
    from chatapp.tui.widgets.markdown_render import parse_safe

    return parse_safe(text)


@lru_cache(maxsize=2048)
def _elements_of(text: str) -> list[_Element]:
    """A block's elements (the parse does not depend on the width: a resize re-counts, it does not re-parse).
    Callers only read them."""
    return _elements(_parse(text))


def estimate_rows(block: Block, width: int) -> int:
    """Rows `markdown_render.render_block(block)` takes at `width` columns (gap included)."""
    width = max(width, 1)
    gap = 1 if block.gap else 0
    if block.kind == "code":
        code = block.text.rstrip() if block.last else block.text
        return gap + int(block.first) + code_rows(code, width - 2) + int(block.last)
    elements = _elements_of(block.text)
    return gap + _document_rows(elements, width)


def wrapped_rows(text: str, width: int) -> int:
    """Rows Rich's word wrap gives `text` (hard line breaks included) at `width` cells."""
    width = max(width, 1)
    rows = 0
    for line in text.split("\n"):
        if "\t" in line:
            line = line.expandtabs(8)
        rows += _line_rows(line, width)
    return rows


def code_rows(code: str, width: int) -> int:
    """Rows of a word-wrapped ``Syntax`` without its padding rows."""
    width = max(width, 1)
    lines = code.expandtabs(CODE_TAB_SIZE).split("\n")
    if not code.endswith("\n") and len(lines) > 1 and lines[-1] == "" and code:
        lines.pop()
    return sum(_line_rows(line, width) for line in lines)


def _line_rows(line: str, width: int) -> int:
    """One line of text: the number of rows Rich's ``divide_line`` makes of it."""
    if len(line) <= width and (line.isascii() or cell_len(line) <= width):
        return 1  # (a label's "·" is not ASCII: every unmounted reply asks this at each new width)
    breaks = 0
    offset = 0
    for start, length, full, word in _words(line):
        if width - offset >= length:
            offset += full
        elif length > width:
            chunks = chop_cells(word, width)
            breaks += len(chunks) - (0 if start else 1)
            offset = cell_len(chunks[-1])
        elif offset and start:
            breaks += 1
            offset = full
    return breaks + 1


@lru_cache(maxsize=1024)
def _words(line: str) -> tuple[tuple[int, int, int, str], ...]:
    """Each word of a line (its leading and trailing spaces included): where it starts, its cells without
    and with the trailing spaces, and its text. A resize re-wraps every line at the new width: the
    words are measured once."""
    return tuple((match.start(), cell_len(word.rstrip()), cell_len(word), word)
                 for match in _WORD.finditer(line) for word in (match.group(),))


# --- a small element tree built from markdown-it tokens ---------------------------------------------


@dataclass
class _Element:
    kind: str  # text, code, quote, list, item, table, hr, other
    text: str = ""
    children: list[_Element] = field(default_factory=list)
    ordered: bool = False
    start: int = 1
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


_CONTAINERS = {"blockquote_open": "quote", "bullet_list_open": "list", "ordered_list_open": "list",
               "list_item_open": "item"}


def _elements(tokens: Sequence[Token]) -> list[_Element]:
    root: list[_Element] = []
    stack: list[list[_Element]] = [root]
    table: _Element | None = None
    row: list[str] | None = None
    in_head = False
    for token in tokens:
        kind = token.type
        if table is not None:
            if kind == "table_close":
                stack[-1].append(table)
                table = None
            elif kind == "thead_open":
                in_head = True
            elif kind == "thead_close":
                in_head = False
            elif kind == "tr_open":
                row = []
            elif kind == "tr_close" and row is not None:
                if in_head:
                    table.header = row
                else:
                    table.rows.append(row)
                row = None
            elif kind == "inline" and row is not None:
                row.append(_inline_text(token))
            continue
        if kind in _CONTAINERS:
            element = _Element(_CONTAINERS[kind], ordered=kind == "ordered_list_open",
                               start=int(token.attrs.get("start", 1) or 1))
            stack[-1].append(element)
            stack.append(element.children)
        elif kind in ("blockquote_close", "bullet_list_close", "ordered_list_close", "list_item_close"):
            stack.pop()
        elif kind == "inline":
            stack[-1].append(_Element("text", _inline_text(token)))
        elif kind in ("fence", "code_block"):
            stack[-1].append(_Element("code", visible(token.content).rstrip()))
        elif kind == "hr":
            stack[-1].append(_Element("hr"))
        elif kind == "table_open":
            table = _Element("table")
        elif kind == "html_block":
            stack[-1].append(_Element("other"))
    return root


def _inline_text(token: Token) -> str:
    parts: list[str] = []
    for child in token.children or ():
        kind = child.type
        if kind in ("text", "code_inline"):
            parts.append(visible(child.content))
        elif kind == "softbreak":
            parts.append(" ")
        elif kind == "hardbreak":
            parts.append("\n")
        elif kind == "image":
            parts.append(f"🌆 {visible(child.content)} ")
    return "".join(parts)


# --- counting ------------------------------------------------------------------------------------------


def _document_rows(elements: list[_Element], width: int) -> int:
    """Top-level elements with Rich's blank lines between them, leading/trailing blank lines trimmed."""
    pieces: list[tuple[int, int, int]] = []  # (rows, blank rows on top, blank rows at the bottom)
    previous_rule = False
    for index, element in enumerate(elements):
        container = element.kind in ("list", "quote", "table")
        if container or (index and not previous_rule):
            pieces.append((1, 1, 1))
        pieces.append(_rows(element, width))
        previous_rule = element.kind == "hr"
    total = sum(rows for rows, _, _ in pieces)
    return total - _blank_run(pieces) - _blank_run([(rows, below, above) for rows, above, below in reversed(pieces)])


def _blank_run(pieces: list[tuple[int, int, int]]) -> int:
    """Blank rows at the start of a sequence of pieces."""
    run = 0
    for rows, above, _below in pieces:
        if above >= rows:
            run += rows
            continue
        return run + above
    return run


def _rows(element: _Element, width: int) -> tuple[int, int, int]:
    """(rows, blank rows at the top, blank rows at the bottom) of one element."""
    kind = element.kind
    if kind == "text":
        return wrapped_rows(element.text, width), 0, 0
    if kind == "code":
        return code_rows(element.text, width - 2) + 2, 0, 0
    if kind == "hr":
        return 2, 0, 1
    if kind == "quote":
        return _children_rows(element.children, width - 4), 0, 0
    if kind == "list":
        indent = 3
        if element.ordered:
            indent = len(str(element.start + len(element.children))) + 2
        return sum(max(_children_rows(item.children, width - indent), 1) for item in element.children), 0, 0
    if kind == "table":
        return _table_rows(element, width), 1, 1
    return 0, 0, 0


def _children_rows(children: list[_Element], width: int) -> int:
    return sum(_rows(child, max(width, 1))[0] for child in children)


def _table_rows(table: _Element, width: int) -> int:
    columns = max(len(table.header), *(len(row) for row in table.rows)) if table.rows else len(table.header)
    if columns == 0:
        return 1
    grid = [table.header + [""] * (columns - len(table.header))]
    grid += [row[:columns] + [""] * (columns - len(row)) for row in table.rows]
    widths = _column_widths(grid, columns, max(width - (columns + 1), 1))
    pads = [0 if index == columns - 1 else 1 for index in range(columns)]
    heights = [max(wrapped_rows(cell, max(widths[i] - pads[i], 1)) for i, cell in enumerate(line)) for line in grid]
    return 1 + heights[0] + 1 + sum(heights[1:]) + 1


def _column_widths(grid: list[list[str]], columns: int, available: int) -> list[int]:
    pads = [0 if index == columns - 1 else 1 for index in range(columns)]
    maxima = []
    for index in range(columns):
        most = 0
        for line in grid:
            cell = line[index]
            longest = max((cell_len(part) for part in cell.split("\n")), default=0)
            most = max(most, min(min(longest, available) + pads[index], available))
        maxima.append(min(most, available))
    widths = [most or 1 for most in maxima]
    if sum(widths) > available:
        widths = _collapse(widths, available)
        if sum(widths) > available:
            widths = _reduce(sum(widths) - available, [1] * columns, widths, widths)
        widths = [min(most, width) for most, width in zip(maxima, widths, strict=True)]
    return widths


def _collapse(widths: list[int], available: int) -> list[int]:
    """Shrink the widest columns first, as Rich's ``Table._collapse_widths`` does."""
    total = sum(widths)
    excess = total - available
    while total and excess > 0:
        widest = max(widths)
        second = max((width for width in widths if width != widest), default=0)
        difference = widest - second
        ratios = [1 if width == widest else 0 for width in widths]
        if not difference:
            break
        widths = _reduce(excess, ratios, [min(excess, difference)] * len(widths), widths)
        total = sum(widths)
        excess = total - available
    return widths


def _reduce(total: int, ratios: list[int], maximums: list[int], values: list[int]) -> list[int]:
    ratios = [ratio if most else 0 for ratio, most in zip(ratios, maximums, strict=True)]
    remaining_ratio = sum(ratios)
    if not remaining_ratio:
        return values[:]
    remaining = total
    result = []
    for ratio, most, value in zip(ratios, maximums, values, strict=True):
        if ratio and remaining_ratio > 0:
            taken = min(most, round(ratio * remaining / remaining_ratio))
            result.append(value - taken)
            remaining -= taken
            remaining_ratio -= ratio
        else:
            result.append(value)
    return result
