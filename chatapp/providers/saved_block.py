"""Undo `chatapp models pull --save` when the model is removed.

`--save` appends a `[providers.NAME]` block naming the model's file. Left behind after `models rm`, that
block is still a configured provider, and a configured provider comes before pulled and packaged models
as the default: chatapp would start on a provider whose file is gone. The block is removed when it is
still exactly what `--save` wrote (those three keys, no comments) and nothing else in the file names the
provider; otherwise the file is left alone and the caller says what to change.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatapp.pulled_index import PulledModel, PullError

_SAVED_KEYS = {"kind", "model_path", "context_window"}


@dataclass(frozen=True, slots=True)
class SavedBlock:
    config_file: Path
    header: str  # "[providers.NAME]"
    removed: bool  # False: still there, edited or named elsewhere in the file
    reason: str = ""  # why it was kept


def forget_saved_block(config_file: Path, model: PulledModel) -> SavedBlock | None:
    """Remove the block `--save` wrote for `model` (see the module docstring). None when the file has no
    block for this model. Raises PullError (one line) when the file cannot be rewritten."""
    try:
        text = config_file.read_text(encoding="utf-8")
        parsed = tomllib.loads(text)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None  # chatapp itself reports a config it cannot read, at the next start
    header = f"[providers.{model.name}]"
    providers = parsed.get("providers")
    block = providers.get(model.name) if isinstance(providers, dict) else None
    if not isinstance(block, dict) or block.get("model_path") != model.path:
        return None
    lines = text.splitlines(keepends=True)
    span = _block_lines(lines, header)
    if span is None or set(block) - _SAVED_KEYS or any(
            line.lstrip().startswith("#") for line in lines[span[0]:span[1]]):
        return SavedBlock(config_file, header, removed=False, reason="it was edited")
    if _names(parsed, model.name):
        return SavedBlock(config_file, header, removed=False, reason=f"the file names {model.name!r} elsewhere")
    start, end = span
    if start > 0 and not lines[start - 1].strip() and (end == len(lines) or not lines[end].strip()):
        start -= 1  # the blank line `--save` put before the block
    _replace(config_file, "".join(lines[:start] + lines[end:]))
    return SavedBlock(config_file, header, removed=True)


def _block_lines(lines: list[str], header: str) -> tuple[int, int] | None:
    """[start, end) of the block: its header line, up to the next table header, trailing blank lines left out."""
    start = next((i for i, line in enumerate(lines) if line.strip() == header), None)
    if start is None:
        return None
    end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    return start, end


def _names(parsed: dict[str, Any], name: str) -> bool:
    """Does a setting outside the block refer to the provider (default, summaries, the fallback chain)?"""
    fallback = parsed.get("fallback")
    return (name in (parsed.get("default_provider"), parsed.get("summary_provider"))
            or (isinstance(fallback, list) and name in fallback))


def _replace(path: Path, text: str) -> None:
    """Write the new text beside the file and rename it over, keeping the file's mode (it may hold keys)."""
    try:
        mode = path.stat().st_mode & 0o777
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            os.fchmod(fd, mode)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise PullError(f"cannot rewrite {path}: {exc.strerror or exc}") from None
