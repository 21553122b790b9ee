"""Template errors. Every message is one line, fit for stderr or a TUI notice, and names what is wrong."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path


def close_matches(word: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    import difflib

    return difflib.get_close_matches(word, list(candidates), n=n, cutoff=0.6)


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(repr(name) for name in names)


class TemplateError(Exception):
    """Base class for everything this package raises on purpose."""


class TemplateParseError(TemplateError):
    """A template file (or table) that cannot be used. `detail` is the message without the path."""

    def __init__(self, detail: str, *, path: Path | None = None, line: int | None = None) -> None:
        self.detail = f"line {line}: {detail}" if line else detail
        self.path = path
        self.line = line
        super().__init__(f"{path}: {self.detail}" if path else self.detail)


class MalformedPlaceholder(TemplateError):
    """`{{` that starts neither a placeholder `{{name}}` nor the escape `{{{{`."""

    def __init__(self, snippet: str, line: int, column: int) -> None:
        self.snippet = snippet
        self.line = line
        self.column = column
        super().__init__(
            f"malformed placeholder {snippet!r} at line {line}, column {column} of the text: "
            "placeholders are {{name}} (letters, digits and _, not starting with a digit); "
            "write {{{{ for a literal {{"
        )


class UnknownTemplate(TemplateError):
    """No template of that name; the message lists close names (or what exists)."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        known = sorted(set(known))
        self.name = name
        self.suggestions = tuple(close_matches(name, known))
        if self.suggestions:
            hint = f"did you mean: {', '.join(self.suggestions)}?"
        elif known:
            hint = f"available: {', '.join(known)}"
        else:
            hint = "no templates are installed"
        super().__init__(f"unknown template {name!r} ({hint})")


class UnknownVersion(UnknownTemplate):
    """The template exists but not in that version."""

    def __init__(self, name: str, version: int, versions: Iterable[int]) -> None:
        self.name = name
        self.version = version
        self.versions = tuple(sorted(versions))
        self.suggestions = ()
        listed = ", ".join(str(v) for v in self.versions)
        TemplateError.__init__(self, f"template {name!r} has no version {version} (versions: {listed})")


class VariableError(TemplateError):
    """A variable problem found before any request is made. `template` is the `name@version` ref."""

    def __init__(self, message: str, template: str) -> None:
        self.template = template
        super().__init__(message)


class MissingVariable(VariableError):
    def __init__(self, template: str, names: Sequence[str]) -> None:
        self.names = tuple(names)
        self.name = self.names[0]
        plural = "s" if len(self.names) > 1 else ""
        super().__init__(f"missing required variable{plural} {_quoted(self.names)} for template {template}", template)


class UnknownVariable(VariableError):
    def __init__(self, template: str, names: Sequence[str], declared: Sequence[str]) -> None:
        self.names = tuple(names)
        self.name = self.names[0]
        self.declared = tuple(declared)
        plural = "s" if len(self.names) > 1 else ""
        hints = []
        for name in self.names:
            close = close_matches(name, declared, n=1)
            if close:
                hints.append(f"{name!r} -> did you mean {close[0]!r}?")
        known = _quoted(self.declared) if self.declared else "none"
        hint = "; ".join(hints) if hints else f"it takes: {known}"
        super().__init__(f"unknown variable{plural} {_quoted(self.names)} for template {template} ({hint})", template)


class InvalidVariable(VariableError):
    """A value outside the variable's declared `choices`, or not a string."""

    def __init__(self, template: str, name: str, message: str) -> None:
        self.name = name
        super().__init__(f"variable {name!r} for template {template}: {message}", template)


class LeftoverPlaceholder(TemplateError):
    """The rendered prompt would still contain a placeholder (a template built in code, not parsed)."""

    def __init__(self, template: str, names: Sequence[str]) -> None:
        self.template = template
        self.names = tuple(names)
        super().__init__(
            f"template {template} would leave placeholder(s) {_quoted(self.names)} unfilled: "
            "they are not declared variables"
        )


class PromptTooLarge(TemplateError):
    def __init__(self, template: str, size: int, limit: int, largest: str | None) -> None:
        self.template = template
        self.size = size
        self.limit = limit
        self.largest = largest
        where = f"; the largest variable is {largest!r}" if largest else ""
        super().__init__(f"rendered prompt for template {template} is {size:,} characters (limit {limit:,}){where}")


class VariableArgError(TemplateError):
    """A `--var` argument that is not `key=value`."""
