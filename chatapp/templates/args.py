"""Parsing what a user types: `--var key=value` arguments and `name@version` references."""

from __future__ import annotations

from collections.abc import Iterable

from .errors import TemplateError, VariableArgError
from .render import NAME_RE


def parse_var_args(args: Iterable[str]) -> dict[str, str]:
    """`["topic=chess", "level=expert"]` -> `{"topic": "chess", "level": "expert"}`.

    Split at the first `=`; the key is stripped of surrounding spaces, the value kept as typed
    (it may contain `=` and may be empty). A key given twice is an error.
    """
    values: dict[str, str] = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        key = key.strip()
        if not sep or not key:
            raise VariableArgError(f"--var expects key=value (got {arg!r})")
        if not NAME_RE.fullmatch(key):
            raise VariableArgError(
                f"--var {arg!r}: {key!r} is not a variable name (letters, digits and _, not starting with a digit)"
            )
        if key in values:
            raise VariableArgError(f"--var: variable {key!r} is given twice")
        values[key] = value
    return values


def parse_ref(ref: str) -> tuple[str, int | None]:
    """`"tutor"` -> `("tutor", None)`, `"tutor@2"` -> `("tutor", 2)`, `"tutor@latest"` -> `("tutor", None)`."""
    name, sep, version = ref.strip().partition("@")
    if not name:
        raise TemplateError(f"template reference {ref!r} has no name")
    if not sep or version == "latest":
        return name, None
    if not (version.isascii() and version.isdigit()) or int(version) < 1:
        raise TemplateError(f"template reference {ref!r}: version must be a whole number from 1 (as in {name}@2)")
    return name, int(version)
