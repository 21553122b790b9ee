"""The user's conversations are theirs alone: the data dir 0700 and every database file 0600, whatever
the umask; looser modes left by older versions are tightened on open, with a notice."""

from __future__ import annotations

import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def private_dir(path: Path) -> list[str]:
    """Create `path` (and missing parents) 0700, or tighten it; raises OSError (FileExistsError when a file
    sits where the folder should be)."""
    notices: list[str] = []
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)  # raises FileExistsError if a file is in the way
        os.chmod(path, DIR_MODE)  # mkdir's mode is filtered by the umask; chmod is not
        return notices
    notices.extend(_tighten(path, DIR_MODE))
    return notices


def private_file(path: Path) -> list[str]:
    """Create `path` empty with mode 0600 if it is missing (SQLite gives its -wal and -shm the database's
    mode), or tighten it and its SQLite companions."""
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, FILE_MODE))
        os.chmod(path, FILE_MODE)
        return []
    notices: list[str] = []
    for candidate in (path, *(path.with_name(path.name + suffix) for suffix in SQLITE_COMPANIONS)):
        if candidate.exists():
            notices.extend(_tighten(candidate, FILE_MODE))
    return notices


def _tighten(path: Path, mode: int) -> list[str]:
    current = stat.S_IMODE(path.stat().st_mode)
    if not current & 0o077:
        return []
    os.chmod(path, current & ~0o077 | (mode & 0o700))
    return [f"{path} was readable by other users (mode {current:04o}); made it private ({mode:04o})"]


