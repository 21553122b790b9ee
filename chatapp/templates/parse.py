"""One TOML file -> one Template, or a TemplateParseError naming the file, line and key.

```toml
name = "tutor"                 # required: letters, digits, _ . - (no @ or spaces)
version = 2                    # whole number >= 1; default 1
role = "system"                # "system" (default) or "user"
description = "A patient tutor"
text = "You are a patient tutor of {{topic}}. Answer at {{level}} level."   # required
provider = "anthropic"         # optional hints
model = "claude-sonnet-4-5"
temperature = 0.3
[variables.topic]              # every placeholder must be declared, every declared variable used
required = true                # the default when there is no `default`
description = "subject"
[variables.level]
default = "beginner"           # a default makes it optional; `required = false` alone means ""
choices = ["beginner", "expert"]
[ab]                           # on the latest version: split new conversations between versions
versions = [1, 2]
weights = [1, 1]               # optional, default equal
```
Surrounding whitespace of `text` is stripped. Unknown keys are errors (they are usually typos).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chatapp.domain import Role

from .errors import MalformedPlaceholder, TemplateParseError, close_matches
from .model import ABSplit, Template, Variable
from .render import NAME_RE, placeholders

MAX_FILE_BYTES = 256 * 1024
TEMPLATE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
TOP_KEYS = (
    "name", "version", "role", "description", "text", "variables", "provider", "model", "temperature", "ab", "stdin",
)
VARIABLE_KEYS = ("required", "default", "description", "choices")
AB_KEYS = ("versions", "weights")


def load_file(path: Path, *, builtin: bool = False, max_bytes: int = MAX_FILE_BYTES) -> Template:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise TemplateParseError(f"file is {size:,} bytes (limit {max_bytes:,})", path=path)
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise TemplateParseError(f"cannot read: {exc.strerror or exc}", path=path) from None
    except UnicodeDecodeError as exc:
        raise TemplateParseError(f"not UTF-8 text (byte {exc.start})", path=path) from None
    return parse_text(text, path=path, builtin=builtin)


def parse_text(text: str, *, path: Path | None = None, builtin: bool = False) -> Template:
    import tomllib  # here, not at import time: templates are read on first use

    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = re.search(r"\s*\(at line (\d+), column \d+\)", message)
        if match:
            raise TemplateParseError(message[: match.start()], path=path, line=int(match.group(1))) from None
        raise TemplateParseError(message, path=path) from None
    return parse_template(raw, path=path, source=text, builtin=builtin)


def parse_template(
    raw: Mapping[str, Any], *, path: Path | None = None, source: str = "", builtin: bool = False
) -> Template:
    return _Parser(path, source).parse(raw, builtin)


class _Parser:
    def __init__(self, path: Path | None, source: str) -> None:
        self.path = path
        self.lines = source.splitlines()

    def error(self, key: str, problem: str) -> TemplateParseError:
        return TemplateParseError(f"{key}: {problem}", path=self.path, line=self._line_of(key))

    def _line_of(self, dotted: str) -> int | None:
        """Best effort: the line of `leaf =` inside `[section]`, or of the `[dotted]` header."""
        section, _, leaf = dotted.rpartition(".")
        current = ""
        for number, line in enumerate(self.lines, start=1):
            stripped = line.strip()
            if stripped.startswith("["):
                current = stripped.strip("[] ").replace(" ", "")
                if current == dotted:
                    return number
            elif current == section and re.match(rf"{re.escape(leaf)}\s*=", stripped):
                return number
        return None

    def parse(self, raw: Mapping[str, Any], builtin: bool) -> Template:
        self._no_unknown_keys(raw, TOP_KEYS, "")
        name = raw.get("name")
        if name is None:
            raise self.error("name", "required")
        if not isinstance(name, str) or not TEMPLATE_NAME_RE.fullmatch(name):
            raise self.error(
                "name", f"must be 1-64 letters, digits, _ . - starting with a letter or digit (got {name!r})"
            )
        version = raw.get("version", 1)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise self.error("version", f"must be a whole number from 1 (got {version!r})")
        role = raw.get("role", "system")
        if role not in ("system", "user"):
            raise self.error("role", f'must be "system" or "user" (got {role!r})')
        text = raw.get("text")
        if text is None:
            raise self.error("text", "required")
        if not isinstance(text, str) or not text.strip():
            raise self.error("text", "must be a non-empty string")
        text = text.strip()
        temperature = raw.get("temperature")
        if temperature is not None and (
            isinstance(temperature, bool) or not isinstance(temperature, int | float) or not 0 <= temperature <= 2
        ):
            raise self.error("temperature", f"must be a number from 0 to 2 (got {temperature!r})")
        variables = self._variables(raw.get("variables", {}))
        self._check_placeholders(text, variables)
        stdin = self._string(raw, "stdin")
        if stdin is not None and stdin not in {v.name for v in variables}:
            raise self.error("stdin", f"must name a declared variable (got {stdin!r})")
        return Template(
            name=name,
            version=version,
            role=Role(role),
            text=text,
            description=self._string(raw, "description") or "",
            variables=variables,
            provider=self._string(raw, "provider"),
            model=self._string(raw, "model"),
            temperature=float(temperature) if temperature is not None else None,
            ab=self._ab(raw["ab"]) if "ab" in raw else None,
            stdin=stdin,
            path=self.path,
            builtin=builtin,
        )

    def _no_unknown_keys(self, table: Mapping[str, Any], known: tuple[str, ...], prefix: str) -> None:
        for key in table:
            if key not in known:
                close = close_matches(key, known, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"expected one of: {', '.join(known)}"
                raise self.error(prefix + key, f"unknown key ({hint})")

    def _string(self, table: Mapping[str, Any], key: str, prefix: str = "") -> str | None:
        value = table.get(key)
        if value is not None and not isinstance(value, str):
            raise self.error(prefix + key, f"must be a string (got {value!r})")
        return value

    def _variables(self, table: Any) -> tuple[Variable, ...]:
        if not isinstance(table, dict):
            raise self.error("variables", "must be a table of [variables.NAME] tables")
        out = []
        for name, spec in table.items():
            key = f"variables.{name}"
            if not NAME_RE.fullmatch(name):
                raise self.error(key, "variable names are letters, digits and _, not starting with a digit")
            if not isinstance(spec, dict):
                raise self.error(key, "must be a table (write [variables.NAME] with required/default)")
            self._no_unknown_keys(spec, VARIABLE_KEYS, key + ".")
            required = spec.get("required")
            if required is not None and not isinstance(required, bool):
                raise self.error(f"{key}.required", f"must be true or false (got {required!r})")
            default = self._string(spec, "default", key + ".")
            if required and default is not None:
                raise self.error(f"{key}.default", "a required variable cannot have a default")
            if required is False and default is None:
                default = ""
            choices = spec.get("choices", [])
            if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
                raise self.error(f"{key}.choices", "must be a list of strings")
            if choices and default is not None and default not in choices:
                raise self.error(f"{key}.default", f"{default!r} is not one of the choices")
            description = self._string(spec, "description", key + ".") or ""
            out.append(Variable(name, default, description, tuple(choices)))
        return tuple(out)

    def _check_placeholders(self, text: str, variables: tuple[Variable, ...]) -> None:
        try:
            used = placeholders(text)
        except MalformedPlaceholder as exc:
            raise self.error("text", str(exc)) from None
        declared = [v.name for v in variables]
        undeclared = [name for name in used if name not in declared]
        if undeclared:
            hints = [
                f"{name!r} (did you mean {close[0]!r}?)"
                if (close := close_matches(name, declared, n=1))
                else repr(name)
                for name in undeclared
            ]
            raise self.error("text", f"uses undeclared variable(s) {', '.join(hints)}: add a [variables.NAME] table")
        unused = [name for name in declared if name not in used]
        if unused:
            listed = ", ".join(repr(n) for n in unused)
            raise self.error(f"variables.{unused[0]}", f"declared but not used in text: {listed}")

    def _ab(self, table: Any) -> ABSplit:
        if not isinstance(table, dict):
            raise self.error("ab", "must be a table with versions = [...] and optional weights = [...]")
        self._no_unknown_keys(table, AB_KEYS, "ab.")
        versions = table.get("versions")
        if (
            not isinstance(versions, list)
            or not versions
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in versions)
        ):
            raise self.error("ab.versions", "must be a non-empty list of version numbers, e.g. [1, 2]")
        if len(set(versions)) != len(versions):
            raise self.error("ab.versions", "lists a version more than once")
        weights = table.get("weights", [1] * len(versions))
        if (
            not isinstance(weights, list)
            or len(weights) != len(versions)
            or not all(isinstance(w, int | float) and not isinstance(w, bool) and w >= 0 for w in weights)
        ):
            raise self.error("ab.weights", f"must be {len(versions)} numbers >= 0, one per version")
        if sum(weights) <= 0:
            raise self.error("ab.weights", "at least one weight must be above zero")
        return ABSplit(tuple((v, float(w)) for v, w in zip(versions, weights, strict=True)))
