"""A local server speaking the Hugging Face Hub's file protocol as `huggingface_hub` uses it.

Point `HF_ENDPOINT` at `hub.url`. It answers:

- `GET /api/models/OWNER/REPO/tree/REVISION` (the file list `HfApi.list_repo_tree` reads),
- `HEAD /OWNER/REPO/resolve/REVISION/FILE` with `X-Repo-Commit`, `ETag` and `Content-Length`
  (what `hf_hub_download` needs before it downloads),
- `GET` of the same path, honouring `Range: bytes=N-` (a resumed download gets 206 from N).

Files are served from disk. Scripted faults: `stall_after(n)` makes the next GET send `n` bytes
and then hold the connection open without sending more until released (a transfer the user
interrupts); every request is logged with its method, path and Range header.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

COMMIT = "0123456789abcdef0123456789abcdef01234567"
_CHUNK = 1 << 16


@dataclass
class Logged:
    method: str
    path: str
    range: str | None


@dataclass
class FakeHub:
    repos: dict[str, dict[str, Path]] = field(default_factory=dict)  # "owner/repo" -> {filename: file}
    log: list[Logged] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stall_bytes: int | None = None
        self.stalled = threading.Event()  # set once a stalled transfer has sent its bytes
        self._release = threading.Event()
        self._etags: dict[Path, str] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, repo: str, filename: str, path: Path) -> None:
        self.repos.setdefault(repo, {})[filename] = path

    def stall_after(self, count: int) -> None:
        """The next download sends `count` bytes, then waits until `release()` (or the client leaves)."""
        self._stall_bytes = count
        self.stalled.clear()
        self._release.clear()

    def release(self) -> None:
        self._release.set()

    def gets(self) -> list[Logged]:
        return [entry for entry in self.log if entry.method == "GET" and "/resolve/" in entry.path]

    def etag(self, path: Path) -> str:
        if path not in self._etags:
            digest = hashlib.sha256()
            with path.open("rb") as file:
                while block := file.read(1 << 20):
                    digest.update(block)
            self._etags[path] = digest.hexdigest()
        return self._etags[path]

    def take_stall(self) -> int | None:
        count, self._stall_bytes = self._stall_bytes, None
        return count

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

        def _answer(self, body: bool) -> None:
            hub.log.append(Logged(self.command, self.path, self.headers.get("Range")))
            try:
                path = self.path.split("?", 1)[0]
                tree = re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(/.*)?", path)
                resolve = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
                if tree:
                    self._tree(tree.group(1))
                elif resolve:
                    self._file(resolve.group(1), resolve.group(3), body)
                else:
                    self._status(404, "Entry not found")
            except (BrokenPipeError, ConnectionResetError):
                pass
            except Exception as exc:  # reported to the test, which fails on it
                hub.errors.append(f"{type(exc).__name__}: {exc}")
                raise

        def _status(self, code: int, message: str, error_code: str | None = None) -> None:
            payload = json.dumps({"error": message}).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("X-Repo-Commit", COMMIT)
            if error_code:
                self.send_header("X-Error-Code", error_code)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        def _tree(self, repo: str) -> None:
            files = hub.repos.get(repo)
            if files is None:
                self._status(404, "Repository not found", "RepoNotFound")
                return
            listing = [{"type": "file", "path": name, "size": path.stat().st_size, "oid": hub.etag(path)[:40]}
                       for name, path in files.items()]
            payload = json.dumps(listing).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _file(self, repo: str, filename: str, body: bool) -> None:
            files = hub.repos.get(repo)
            if files is None:
                self._status(404, "Repository not found", "RepoNotFound")
                return
            path = files.get(filename)
            if path is None:
                self._status(404, "Entry not found", "EntryNotFound")
                return
            size = path.stat().st_size
            start = 0
            wanted = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
            if body and wanted:
                start = int(wanted.group(1))
            self.send_response(206 if start else 200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size - start))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", f'"{hub.etag(path)}"')
            self.send_header("X-Repo-Commit", COMMIT)
            self.end_headers()
            if body:
                self._send(path, start, hub.take_stall())

        def _send(self, path: Path, start: int, stall: int | None) -> None:
            sent = 0
            with path.open("rb") as file:
                file.seek(start)
                while block := file.read(_CHUNK):
                    if stall is not None and sent + len(block) > stall:
                        block = block[: stall - sent]
                        self.wfile.write(block)
                        self.wfile.flush()
                        hub.stalled.set()
                        hub._release.wait(60)
                        self.close_connection = True
                        return
                    self.wfile.write(block)
                    sent += len(block)

    return Handler
