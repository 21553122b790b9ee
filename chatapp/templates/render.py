"""The restricted renderer.

Syntax: `{{name}}` or `{{ name }}` (spaces or tabs inside the braces), name = `[A-Za-z_][A-Za-z0-9_]*`.
There are no expressions, attributes, indexes, filters or format specs: the only thing a placeholder
can do is insert a string. `{{{{` writes a literal `{{` and `}}}}` a literal `}}`; any other `{{` is an
error (so a typo such as `{{ user.name }}` is reported, never sent). A lone `}}` is literal text.

Values are inserted literally in one pass: a value containing `{{x}}` stays `{{x}}`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from .errors import (
    InvalidVariable,
    LeftoverPlaceholder,
    MalformedPlaceholder,
    MissingVariable,
    PromptTooLarge,
    TemplateError,
    UnknownVariable,
)
from .model import RenderedPrompt, Template

NAME = r"[A-Za-z_][A-Za-z0-9_]*"
NAME_RE = re.compile(NAME)
MAX_PROMPT_CHARS = 100_000

_TOKEN = re.compile(r"(?P<open>\{\{\{\{)|(?P<close>\}\}\}\})|\{\{[ \t]*(?P<name>" + NAME + r")[ \t]*\}\}|(?P<bad>\{\{)")


@dataclass(frozen=True, slots=True)
class Placeholder:
    name: str
    offset: int


Segment = str | Placeholder


@lru_cache(maxsize=256)
def segments(text: str) -> tuple[Segment, ...]:
    """Split template text into literal strings and placeholders. Raises MalformedPlaceholder."""
    out: list[Segment] = []
    literal: list[str] = []
    pos = 0
    for match in _TOKEN.finditer(text):
        literal.append(text[pos : match.start()])
        pos = match.end()
        if match.group("open"):
            literal.append("{{")
        elif match.group("close"):
            literal.append("}}")
        elif match.group("name"):
            if any(literal):
                out.append("".join(literal))
            literal = []
            out.append(Placeholder(match.group("name"), match.start()))
        else:
            raise _malformed(text, match.start())
    literal.append(text[pos:])
    if any(literal):
        out.append("".join(literal))
    return tuple(out)


def placeholders(text: str) -> tuple[str, ...]:
    """Names used in the text, in order of first use."""
    return tuple(dict.fromkeys(s.name for s in segments(text) if isinstance(s, Placeholder)))


def _malformed(text: str, offset: int) -> MalformedPlaceholder:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    rest = text[offset : offset + 40].split("\n", 1)[0]
    end = rest.find("}}", 2)
    snippet = rest[: end + 2] if end != -1 else rest
    return MalformedPlaceholder(snippet, line, column)


def check_variables(template: Template, given: Mapping[str, str]) -> dict[str, str]:
    """Every declared variable's value (given, else default), or an error naming the culprit.

    Unknown names are reported first, since a misspelt name usually explains a missing one.
    A required variable given as an empty or blank string counts as missing.
    """
    declared = [v.name for v in template.variables]
    unknown = [name for name in given if name not in declared]
    if unknown:
        raise UnknownVariable(template.ref, unknown, declared)
    for name, value in given.items():
        if not isinstance(value, str):
            raise InvalidVariable(template.ref, name, f"value must be a string (got {type(value).__name__})")
    resolved: dict[str, str] = {}
    missing: list[str] = []
    for variable in template.variables:
        if variable.name in given:
            value = given[variable.name]
            if variable.required and not value.strip():
                missing.append(variable.name)
                continue
        elif variable.default is not None:
            value = variable.default
        else:
            missing.append(variable.name)
            continue
        if variable.choices and value not in variable.choices:
            allowed = ", ".join(repr(c) for c in variable.choices)
            raise InvalidVariable(template.ref, variable.name, f"must be one of {allowed} (got {value!r})")
        resolved[variable.name] = value
    if missing:
        raise MissingVariable(template.ref, missing)
    return resolved


def render(template: Template, variables: Mapping[str, str], *, max_chars: int = MAX_PROMPT_CHARS) -> RenderedPrompt:
    """Validate the variables, substitute them once, and check the result for leftovers and size."""
    values = check_variables(template, variables)
    try:
        parts = segments(template.text)
    except MalformedPlaceholder as exc:
        raise TemplateError(f"template {template.ref}: {exc}") from None
    leftover = [p.name for p in parts if isinstance(p, Placeholder) and p.name not in values]
    if leftover:
        raise LeftoverPlaceholder(template.ref, list(dict.fromkeys(leftover)))
    text = "".join(part if isinstance(part, str) else values[part.name] for part in parts)
    if len(text) > max_chars:
        largest = max(values, key=lambda name: len(values[name]), default=None)
        raise PromptTooLarge(template.ref, len(text), max_chars, largest)
    return RenderedPrompt(role=template.role, text=text, name=template.name, version=template.version, variables=values)
