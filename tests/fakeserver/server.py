"""The server: a thread on 127.0.0.1 that reads a request, logs it, takes the next script and answers it
in the request's wire format (see the package docstring)."""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from types import ModuleType
from typing import Any

from . import anthropic_wire, openai_wire
from .completion import Completion
from .script import DEFAULT_MODELS, Disconnect, Error, Queued, RecordedRequest, Reply, Script, Wire

_ENCODERS: dict[Wire, ModuleType] = {"openai": openai_wire, "anthropic": anthropic_wire}
_PHRASES = {429: "Rate limit exceeded", 529: "Overloaded"}


def refused_base_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens, so connecting fails with 'connection refused'."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def error_body(wire: Wire, status: int, message: str, type_: str | None = None, code: str | None = None) -> Any:
    """The body the real API sends for an error with this status."""
    if wire == "anthropic":
        return anthropic_wire.error_body(status, message, type_)
    return openai_wire.error_body(status, message, type_, code)


class FakeServer:
    """The scripted server; see the module docstring. Thread-safe; use as a context manager."""

    def __init__(
        self, *, api_key: str | None = None, default: Script | None = None, models: Sequence[str] = DEFAULT_MODELS
    ) -> None:
        self.api_key = api_key  # when set, requests without it get a 401 in the real shape
        self.default: Script = default or Reply()
        self.models = list(models)
        self.errors: list[BaseException] = []  # exceptions raised while answering (bugs, failing callables)
        self._requests: list[RecordedRequest] = []
        self._queue: list[Queued] = []
        self._lock = threading.Condition()
        self._closing = threading.Event()
        self._connections: set[socket.socket] = set()
        self._httpd = _HTTPServer(self)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), name="fakeserver", daemon=True)
        self._ids = itertools.count(1)
        from .batches import BatchDesk

        self.batch_api = BatchDesk(self)  # OpenAI Batch and Anthropic Message Batches

    # lifecycle
    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and drop every open connection, stalled ones included; returns promptly."""
        self._closing.set()
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join(5)
        self._httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            _shutdown(conn)

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # addresses
    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    # scripting
    def script(self, *scripts: Script, repeat: int = 1,
               match: str | Callable[[RecordedRequest], bool] | None = None) -> None:
        """Queue scripts, each for `repeat` consecutive requests; `match` ("openai", "anthropic", a path
        prefix, or a predicate of the request) limits them to those requests, others skip past them."""
        with self._lock:
            self._queue.extend(Queued(s, repeat, match) for s in scripts)

    @property
    def pending(self) -> int:
        """Scripted responses not yet consumed."""
        with self._lock:
            return sum(q.remaining for q in self._queue)

    def _next_script(self, request: RecordedRequest) -> Script:
        with self._lock:
            for queued in self._queue:
                if queued.applies_to(request):
                    queued.remaining -= 1
                    if queued.remaining <= 0:
                        self._queue.remove(queued)
                    return queued.script
        return self.default

    # request log
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least `count` requests have arrived; AssertionError on timeout."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._requests) >= count, timeout):
                raise AssertionError(f"expected {count} requests, got {len(self._requests)} in {timeout}s")
            return list(self._requests)

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            (self._connections.add if add else self._connections.discard)(conn)

    def _new_id(self) -> str:
        return f"{next(self._ids):06d}"


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, fake: FakeServer) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name, which can hang on a machine without DNS.
        TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):  # a client going away is normal here
            super().handle_error(request, client_address)


def _shutdown(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)


class _Aborted(Exception):
    """The connection was dropped on purpose (a cut, or the server is closing)."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    # dispatch
    @property
    def fake(self) -> FakeServer:
        return self.server.fake

    def _handle(self) -> None:
        request = self._read_request()
        self.fake._record(request)
        self._wire: Wire = request.wire or ("anthropic" if "anthropic-version" in request.headers else "openai")
        try:
            self._answer(request)
        except _Aborted:
            self.close_connection = True
        except OSError:  # the client went away
            self.close_connection = True
        except Exception as exc:
            self.fake.errors.append(exc)
            traceback.print_exc()
            self.close_connection = True

    def _read_request(self) -> RecordedRequest:
        path, _, query = self.path.partition("?")
        headers = {k.lower(): v for k, v in self.headers.items()}
        raw = self.rfile.read(int(headers.get("content-length") or 0)).decode("utf-8", "replace")
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        if path.endswith("/chat/completions"):
            wire: Wire | None = "openai"
        elif path.endswith("/messages"):
            wire = "anthropic"
        else:
            wire = None
        return RecordedRequest(self.command, path, query, headers, body, time.monotonic(), wire)

    def _answer(self, request: RecordedRequest) -> None:
        wire = self._wire
        if self.fake.batch_api.handles(self.command, request.path) and self._authorized(wire, request.headers):
            return self._send_json(*self.fake.batch_api.answer(request), {})
        is_completion = request.wire is not None and self.command == "POST"
        is_models = self.command == "GET" and request.path.endswith("/models")
        if not (is_completion or is_models):
            return self._send_error(wire, Error(404, f"Unknown request URL: {self.command} {request.path}"))
        if not self._authorized(wire, request.headers):
            message = "invalid x-api-key" if wire == "anthropic" else "Incorrect API key provided."
            return self._send_error(wire, Error(401, message))
        if is_models:
            return self._send_json(200, _ENCODERS[wire].models_body(self.fake.models), {})
        if problem := _invalid(wire, request.body):
            return self._send_error(wire, Error(400, problem))

        script = self.fake._next_script(request)
        self._sleep(script.latency)
        if isinstance(script, Disconnect):
            raise _Aborted
        if isinstance(script, Error):
            return self._send_error(wire, script)
        text = script.text(request) if callable(script.text) else script.text
        completion = Completion(wire, request, script, text, self.fake._new_id())
        if request.stream:
            self._stream(completion)
        else:
            self._send_json_reply(completion)

    def _authorized(self, wire: Wire, headers: Mapping[str, str]) -> bool:
        key = self.fake.api_key
        # Anthropic takes `x-api-key`, and also a Bearer token: SDK 2.x sends its api_key that way.
        bearer = headers.get("authorization") == f"Bearer {key}"
        return key is None or bearer or (wire == "anthropic" and headers.get("x-api-key") == key)

    # responses
    def _start(self, status: int, content_type: str, headers: Mapping[str, str], length: int | None) -> None:
        self.send_response(status, _PHRASES.get(status))
        self.send_header("content-type", content_type)
        if length is None:
            self.send_header("transfer-encoding", "chunked")
            self.send_header("cache-control", "no-cache")
        else:
            self.send_header("content-length", str(length))
        request_id = f"req_fake{self.fake._new_id()}"
        self.send_header("request-id" if self._wire == "anthropic" else "x-request-id", request_id)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _send_json(self, status: int, body: Any, headers: Mapping[str, str]) -> None:
        if not isinstance(body, bytes):
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        else:
            data = body
        self._start(status, "application/json", headers, len(data))
        self.wfile.write(data)

    def _send_error(self, wire: Wire, error: Error) -> None:
        headers = dict(error.headers)
        if error.retry_after is not None:
            headers["retry-after"] = f"{error.retry_after:g}"
        message = error.message or _PHRASES.get(error.status) or self.responses.get(error.status, ("Error",))[0]
        body = error.body if error.body is not None else error_body(wire, error.status, message, error.type, error.code)
        self._send_json(error.status, body, headers)

    def _send_json_reply(self, completion: Completion) -> None:
        reply = completion.reply
        data = json.dumps(_ENCODERS[completion.wire].json_body(completion)).encode()
        self._start(200, "application/json", reply.headers, len(data))
        if reply.accept_then_silent:
            self._sleep(reply.stall_seconds)
            raise _Aborted
        if reply.stall_after is not None:
            self._sleep(reply.stall_seconds)
        if reply.cut_after is not None:
            self.wfile.write(data[: len(data) // 2])
            raise _Aborted
        self.wfile.write(data)

    def _stream(self, completion: Completion) -> None:
        reply, frames = completion.reply, _ENCODERS[completion.wire].frames(completion)
        self._start(200, "text/event-stream; charset=utf-8", reply.headers, None)
        if reply.accept_then_silent:
            self._sleep(reply.stall_seconds)
            raise _Aborted
        self._write_chunks(frames.preamble)
        for index, delta in enumerate([*frames.deltas, None]):
            if reply.stall_after == index:
                self._sleep(reply.stall_seconds)
            if reply.raw_after is not None and reply.raw_after[0] == index:
                self._write_chunks([reply.raw_after[1]])  # malformed JSON, invalid UTF-8: whatever a test needs
            if reply.error_after == index:
                self._write_chunks([frames.error])
                return self._end_body()
            if reply.cut_after == index:
                raise _Aborted
            if delta is not None:
                if index:
                    self._sleep(reply.delay)
                self._write_chunks([delta])
        self._write_chunks(frames.finish)
        if not reply.no_terminator:
            self._write_chunks(frames.terminator)
        self._end_body()

    def _write_chunks(self, events: list[bytes]) -> None:
        for data in events:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _end_body(self) -> None:
        self.wfile.write(b"0\r\n\r\n")

    def _sleep(self, seconds: float) -> None:
        """Wait, unless the server closes meanwhile: then drop the connection."""
        if seconds > 0 and self.fake._closing.wait(seconds):
            raise _Aborted

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        finally:
            if self.close_connection:
                _shutdown(self.connection)


def _invalid(wire: Wire, body: Any) -> str | None:
    """What the real API would reject with a 400, in its words (roughly)."""
    if not isinstance(body, dict):
        return "We could not parse the JSON body of your request."
    for name in ("model", "messages") + (("max_tokens",) if wire == "anthropic" else ()):
        if name not in body:
            return _ENCODERS[wire].missing_field(name)
    return None
