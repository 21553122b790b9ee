"""Open the SQLite database in WAL mode and bring its schema up to date.

WAL keeps every committed row through a process kill; `synchronous=NORMAL` is durable against
application crashes, which is what a chat client needs, at a fraction of FULL's fsync cost.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from chatapp.store.migrations import SCHEMA_VERSION
from chatapp.store.migrations import migrate as migrate_schema
from chatapp.store.private_files import private_dir, private_file


class StoreError(Exception):
    """The database cannot be opened, read or written: worded for one line on stderr."""


class DatabaseNewer(StoreError):
    """The database is from a newer chatapp."""


LOCK_TIMEOUT_SECONDS = 10.0
SALVAGE_ADVICE = ("`chatapp doctor --salvage` copies what is readable into a fresh database and sets the damaged "
                  "one aside")
# SQLite's primary result codes (the low byte of sqlite_errorcode).
_BUSY, _LOCKED, _READONLY, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 5, 6, 8, 11, 13, 14, 26


class DataDirReadOnly(StoreError):
    """The data dir cannot be written, and the command needs to save."""


@dataclass
class Opened:
    connection: sqlite3.Connection
    notices: list[str] = field(default_factory=list)  # said once to the user: tightened modes, a fresh start
    read_only: str | None = None  # the one line saying why nothing can be saved, when opened to read only


def connect(path: Path, lock_timeout: float = LOCK_TIMEOUT_SECONDS) -> Opened:
    """Open (creating it private) and migrate the database. A damaged file is moved aside untouched and a
    fresh one started, with a notice; anything else that stops the open raises StoreError. In a data dir
    that cannot be written the database is opened to read only, untouched (`Opened.read_only` says why)."""
    reason = unwritable(path.parent)
    if reason is not None:
        line = (f"the data dir {path.parent} is not writable ({reason}): chatapp can read it (`ls`, `show`, "
                "`export`) but cannot save anything; make it writable, or point XDG_DATA_HOME elsewhere")
        if not path.exists():
            raise DataDirReadOnly(line)
        return Opened(_open_read_only(path, lock_timeout), [], line)
    notices: list[str] = []
    try:
        notices += private_dir(path.parent)
        notices += private_file(path)
    except FileExistsError:
        raise StoreError(f"{path.parent} is a file, not a folder: move it away so chatapp can keep its data "
                         "there") from None
    except OSError as exc:
        raise StoreError(f"cannot create {path}: {exc.strerror or exc}") from None
    try:
        return Opened(_open(path, lock_timeout), notices)
    except DatabaseNewer as exc:
        raise DatabaseNewer(f"{path}: {exc}") from None
    except sqlite3.DatabaseError as exc:
        if not is_damage(exc):
            raise StoreError(describe_failure(path, exc, lock_timeout)) from None
        moved = set_aside(path)
        notices.append(f"{path} is damaged ({exc}): moved it aside untouched to {moved.name} and started a fresh "
                       f"database (`sqlite3 {moved} .recover` may rescue its text)")
        private_file(path)
        try:
            return Opened(_open(path, lock_timeout), notices)
        except sqlite3.DatabaseError as again:
            raise StoreError(describe_failure(path, again, lock_timeout)) from None


def unwritable(folder: Path) -> str | None:
    """Why `folder` cannot be written to, or None when it can (or does not exist yet)."""
    if not folder.is_dir() or os.access(folder, os.W_OK):
        return None
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return "read-only file system"
    except OSError:
        pass
    return "permission denied"


def _open_read_only(path: Path, lock_timeout: float) -> sqlite3.Connection:
    """Read without writing a byte. A WAL database needs its -shm, which a read-only folder cannot get:
    then the file is read as it stands (`immutable`), without what an unclean exit left in its -wal."""
    failure: sqlite3.DatabaseError | None = None
    for query in ("mode=ro", "immutable=1"):
        conn = sqlite3.connect(f"{path.as_uri()}?{query}", uri=True, isolation_level=None, check_same_thread=True,
                               timeout=lock_timeout)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            conn.close()
            if is_damage(exc):
                raise StoreError(describe_failure(path, exc, lock_timeout)) from None
            failure = exc
            continue
        if version > SCHEMA_VERSION:
            conn.close()
            raise DatabaseNewer(f"{path}: the database's schema ({version}) is newer than this chatapp "
                                f"understands ({SCHEMA_VERSION}): upgrade chatapp, or point XDG_DATA_HOME elsewhere")
        if version < SCHEMA_VERSION:
            conn.close()
            raise DataDirReadOnly(f"{path} needs an upgrade to this chatapp's schema, and its folder is not "
                                  "writable: make it writable and run chatapp once")
        conn.execute("PRAGMA query_only=ON")
        conn.execute(f"PRAGMA busy_timeout={int(lock_timeout * 1000)}")
        conn.row_factory = sqlite3.Row
        return conn
    assert failure is not None
    raise StoreError(describe_failure(path, failure, lock_timeout))


def _open(path: Path, lock_timeout: float) -> sqlite3.Connection:
    # Only the event-loop thread may use the connection: a thread racing close() crashed the process.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=True, timeout=lock_timeout)
    try:
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA busy_timeout={int(lock_timeout * 1000)}")
        conn.execute("PRAGMA secure_delete=ON")  # deleted text is overwritten, not left in free pages
        migrate(conn, path)
    except BaseException:
        conn.close()
        raise
    conn.row_factory = sqlite3.Row
    return conn


def is_damage(exc: BaseException) -> bool:
    """A damaged file (not a lock, a full disk or a permission): SQLITE_CORRUPT or SQLITE_NOTADB."""
    return isinstance(exc, sqlite3.DatabaseError) and _code(exc) in (_CORRUPT, _NOTADB)


def is_busy(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.DatabaseError) and _code(exc) in (_BUSY, _LOCKED)


def is_full(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.DatabaseError) and _code(exc) == _FULL


def _code(exc: sqlite3.DatabaseError) -> int:
    return (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF


def describe_failure(path: Path, exc: sqlite3.DatabaseError, lock_timeout: float = LOCK_TIMEOUT_SECONDS) -> str:
    """One line that says what is wrong with the database and what to do."""
    code = _code(exc)
    if code in (_BUSY, _LOCKED):
        return (f"{path} is locked: another process has held its write lock for more than {lock_timeout:g} s; "
                "close the other chatapp (or whatever holds it) and try again")
    if code == _FULL:
        return f"disk full: cannot write to {path}; free some space and try again"
    if code in (_READONLY, _CANTOPEN):
        return f"cannot write to {path} ({exc}): check the folder's and the file's permissions"
    if code in (_CORRUPT, _NOTADB):
        return f"{path} is damaged ({exc}); nothing was changed: {SALVAGE_ADVICE}"
    return f"{path}: {exc}"


def quick_check(conn: sqlite3.Connection, limit: int = 5) -> list[str]:
    """SQLite's `PRAGMA quick_check`: every page read once, no index cross-check (`integrity_check`'s
    O(N log N) part). Up to `limit` problems; empty when the file is sound."""
    try:
        rows = [row[0] for row in conn.execute(f"PRAGMA quick_check({int(limit)})")]
    except sqlite3.DatabaseError as exc:
        if not is_damage(exc):
            raise
        return [str(exc)]
    return [] if rows == ["ok"] else rows


def failure_line(path: Path, exc: BaseException, lock_timeout: float = LOCK_TIMEOUT_SECONDS) -> str | None:
    """The one line for a store failure (raised at open or mid-use); None for any other exception."""
    if isinstance(exc, StoreError):
        return str(exc)
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.IntegrityError):
        return describe_failure(path, exc, lock_timeout)
    return None


def set_aside(path: Path) -> Path:
    """Rename the damaged database (and its -wal, whose frames may hold the latest text) to
    `NAME.corrupt-<UTC time>`: the bytes are never modified."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    path.rename(target)
    for suffix in ("-wal", "-shm"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            companion.rename(target.with_name(target.name + suffix))
    return target


def migrate(conn: sqlite3.Connection, path: Path | None = None) -> None:
    """Bring the schema up to date (chatapp/store/migrations.py: one transaction, a backup copy first)."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise DatabaseNewer(f"the database's schema ({version}) is newer than this chatapp understands "
                            f"({SCHEMA_VERSION}): upgrade chatapp, or point XDG_DATA_HOME elsewhere")
    migrate_schema(conn, path)
