"""llama.cpp's own HTTP server for one GGUF model, on 127.0.0.1, behind a per-run API key.

The server runs in a helper process (`chatapp.providers.llamacpp_host`), started and watched from a
background thread, because `xllamacpp.Server()` holds the GIL for the whole model load (1.4 s on the
packaged model, measured): in a thread of our own process it would freeze the TUI. The helper also
keeps llama.cpp's logs off the terminal (they go to a pipe; the last lines explain load failures)
and keeps an abort inside llama.cpp from killing chatapp.

Everything the user can get wrong is checked here before llama.cpp sees it (missing file, not a
GGUF, not enough memory), so each failure becomes one readable `ProviderError(UNAVAILABLE)`.
The helper exits when its stdin closes, so it never outlives chatapp, even after a SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import IO, Literal

from chatapp.domain import ErrorKind, ProviderError
from chatapp.providers.gguf import GGUFError, GGUFInfo, check_magic, read_info

State = Literal["idle", "loading", "ready", "failed"]

DEFAULT_MAX_CONTEXT = 8192  # cap on the trained length: a 128k window would allocate GBs of KV cache
FALLBACK_CONTEXT = 4096  # when the header does not say
_STOP_TIMEOUT = 5.0
_STDERR_LINES = 60
_LOG_LINE = re.compile(r"^[\d.]+\s+([EWI])\s+(?:\w+\s+)?(.*)$")  # "0.00.007.346 E srv    load_model: ..."
_FUNCTION_PREFIX = re.compile(r"^\w+: ")


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """What to run. `model_path` None means: ask the `locate` callable (the embedded model)."""

    model_path: Path | None
    context_window: int | None = None
    threads: int | None = None
    chat_template: str | None = None
    alias: str | None = None


@dataclass(frozen=True, slots=True)
class ServerStatus:
    """A snapshot for the status line and `chatapp doctor`."""

    state: State
    model_path: Path | None
    file_size: int | None
    context_window: int | None
    chat_template: str | None  # where the template came from, in words
    load_seconds: float | None
    error: str | None
    url: str | None


@dataclass(frozen=True, slots=True)
class _Launch:
    """Settings resolved against the file: what the helper is told."""

    path: Path
    size: int
    context_window: int
    template: str | None
    use_jinja: bool
    template_source: str


def gemma_template() -> str:
    """Gemma's chat format as Jinja (see gemma_template.jinja for why chatapp carries its own)."""
    return resources.files("chatapp.providers").joinpath("gemma_template.jinja").read_text(encoding="utf-8")


def available_memory() -> int | None:
    """MemAvailable in bytes (Linux), or None where we cannot tell cheaply."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class LlamaServer:
    """One llama.cpp server process: `start()` returns at once, `ready()` / `wait_ready()` wait for it.

    `state` goes idle -> loading -> ready, or -> failed with `error` set; `close()` brings it back to
    idle. `start()` after a failure tries again (the user may have fixed the file).
    Thread-safe: the load runs in a daemon thread; waiters on any event loop are woken from it.
    """

    def __init__(
        self,
        name: str,
        settings: ServerSettings,
        *,
        locate: Callable[[], Path] | None = None,
        memory: Callable[[], int | None] = available_memory,
    ) -> None:
        if settings.model_path is None and locate is None:
            raise ValueError("LlamaServer needs a model_path or a locate callable")
        self.name = name
        self.settings = settings
        self.api_key = secrets.token_urlsafe(32)
        self._locate = locate
        self._memory = memory
        self._lock = threading.Condition()
        self._state: State = "idle"
        self._error: str | None = None
        self._load_seconds: float | None = None
        self._launch: _Launch | None = None
        self._url: str | None = None
        self._run: _Run | None = None
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    # --- what the status line and the provider read ------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def error(self) -> str | None:
        return self._error

    @property
    def load_seconds(self) -> float | None:
        """Seconds from `start()` to a server answering, including locating and vetting the file."""
        return self._load_seconds

    @property
    def root_url(self) -> str | None:
        """`http://127.0.0.1:PORT` while ready (llama.cpp's own endpoints: /health, /slots, /v1/messages)."""
        return self._url if self._state == "ready" else None

    @property
    def base_url(self) -> str | None:
        """The OpenAI-compatible base URL while ready."""
        url = self.root_url
        return f"{url}/v1" if url else None

    @property
    def context_window(self) -> int | None:
        """The window the server was started with (known once the file has been read)."""
        return self._launch.context_window if self._launch else self.settings.context_window

    @property
    def pid(self) -> int | None:
        run = self._run
        return run.proc.pid if run and run.proc else None

    def status(self) -> ServerStatus:
        launch = self._launch
        return ServerStatus(
            state=self._state,
            model_path=launch.path if launch else self.settings.model_path,
            file_size=launch.size if launch else None,
            context_window=self.context_window,
            chat_template=launch.template_source if launch else None,
            load_seconds=self._load_seconds,
            error=self._error,
            url=self.root_url,
        )

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Begin loading in the background unless loading or ready already. Never blocks."""
        with self._lock:
            if self._state in ("loading", "ready"):
                return
            run = _Run()
            self._run = run
            self._state = "loading"
            self._error = None
            self._load_seconds = None
            self._url = None
        thread = threading.Thread(target=self._load, args=(run,), name=f"llamacpp-{self.name}", daemon=True)
        run.thread = thread
        thread.start()

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until ready (starting if needed); ProviderError(UNAVAILABLE) on failure or timeout."""
        self.start()
        with self._lock:
            if not self._lock.wait_for(lambda: self._state != "loading", timeout):
                raise ProviderError(ErrorKind.UNAVAILABLE, f"the model did not load within {timeout:.0f} s",
                                    provider=self.name)
            self._raise_unless_ready()

    async def ready(self) -> None:
        """Await the model (starting the load if needed). Cancelling the wait leaves the load running."""
        self.start()
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._state == "loading":
                future: asyncio.Future[None] = loop.create_future()
                entry = (loop, future)
                self._waiters.append(entry)
            else:
                self._raise_unless_ready()
                return
        try:
            await future
        finally:
            with self._lock, contextlib.suppress(ValueError):
                self._waiters.remove(entry)
        with self._lock:
            self._raise_unless_ready()

    def close(self, timeout: float = _STOP_TIMEOUT) -> None:
        """Stop the server (blocking, bounded by `timeout`); the state returns to idle."""
        with self._lock:
            run = self._run
            self._run = None
            if run is None:
                return
            run.closing = True
            proc = run.proc
        if proc is not None:
            _stop_process(proc, timeout, kill_now=run.loading)
        if run.finalizer is not None:
            run.finalizer.detach()
        if run.thread is not None and run.thread is not threading.current_thread():
            run.thread.join(timeout)
        with self._lock:
            if self._run is None:
                self._set_state("idle", None)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    # --- the background thread ------------------------------------------------------------------

    def _load(self, run: _Run) -> None:
        started = time.monotonic()
        try:
            launch = self._prepare(run)
            if launch is None:
                return
            with self._lock:
                if run.closing:
                    return
                self._launch = launch
            url = self._handshake(run, launch)
        except ProviderError as exc:
            self._finish(run, "failed", exc.message)
            return
        except Exception as exc:  # a bug or an OS surprise must not kill the thread silently
            self._finish(run, "failed", f"could not start llama.cpp: {type(exc).__name__}: {exc}")
            return
        if url is None:
            return
        with self._lock:
            if self._run is run:
                self._url = url
                self._load_seconds = time.monotonic() - started
        self._finish(run, "ready", None)
        self._watch(run)

    def _prepare(self, run: _Run) -> _Launch | None:
        """Locate and vet the file, spawn the helper (it imports xllamacpp while we read the header)."""
        path = self._locate() if self._locate is not None else self.settings.model_path
        assert path is not None
        path = path.expanduser()
        try:
            check_magic(path)
        except GGUFError as exc:
            raise ProviderError(ErrorKind.UNAVAILABLE, str(exc), provider=self.name) from None
        if not self._spawn(run):
            return None
        try:
            info = read_info(path)
        except GGUFError as exc:
            raise ProviderError(ErrorKind.UNAVAILABLE, str(exc), provider=self.name) from None
        size = path.stat().st_size
        n_ctx = _context_window(self.settings.context_window, info)
        self._check_memory(path, size, info, n_ctx)
        template, use_jinja, source = self._template(info)
        return _Launch(path, size, n_ctx, template, use_jinja, source)

    def _spawn(self, run: _Run) -> bool:
        with self._lock:
            if run.closing:
                return False
            try:
                run.proc = subprocess.Popen(
                    [sys.executable, "-m", "chatapp.providers.llamacpp_host"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    encoding="utf-8",
                    errors="replace",
                    bufsize=1,
                    close_fds=True,
                    # Out of the terminal's process group: Ctrl+C is for chatapp, which stops us.
                    start_new_session=os.name == "posix",
                )
            except OSError as exc:
                raise ProviderError(ErrorKind.UNAVAILABLE, f"cannot start the llama.cpp helper: {exc}",
                                    provider=self.name) from None
            # Interpreter exit or a forgotten close(): stop the helper then too (atexit runs finalizers).
            run.finalizer = weakref.finalize(self, _stop_run, run)
        stderr = threading.Thread(target=_drain, args=(run.proc.stderr, run.stderr), daemon=True,
                                  name=f"llamacpp-{self.name}-log")
        stderr.start()
        run.stderr_thread = stderr
        return True

    def _check_memory(self, path: Path, size: int, info: GGUFInfo, n_ctx: int) -> None:
        available = self._memory()
        if available is None:
            return
        needed = size + (info.kv_cache_bytes(n_ctx) or 0)
        if needed > available:
            raise ProviderError(
                ErrorKind.UNAVAILABLE,
                f"not enough memory for {path.name}: it needs about {needed / 2**30:.1f} GiB with a "
                f"{n_ctx}-token window, {available / 2**30:.1f} GiB available",
                provider=self.name,
            )

    def _template(self, info: GGUFInfo) -> tuple[str | None, bool, str]:
        """(template text or built-in name, use Jinja, where it came from)."""
        override = self.settings.chat_template
        if override:
            if "{%" in override or "{{" in override:
                return override, True, "from the config"
            candidate = Path(override).expanduser()
            if candidate.suffix in (".jinja", ".j2", ".txt") or os.sep in override:
                try:
                    return candidate.read_text(encoding="utf-8"), True, f"from {candidate}"
                except (OSError, UnicodeDecodeError) as exc:
                    raise ProviderError(ErrorKind.UNAVAILABLE, f"cannot read chat template {candidate}: {exc}",
                                        provider=self.name) from None
            return override, False, f"llama.cpp built-in '{override}'"
        if info.has_chat_template:
            return None, True, "from the GGUF file"
        if info.architecture and info.architecture.startswith("gemma"):
            return gemma_template(), True, "Gemma (chatapp's own; the GGUF has none)"
        return None, True, "llama.cpp default (ChatML; the GGUF has none)"

    def _handshake(self, run: _Run, launch: _Launch) -> str | None:
        proc = run.proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        config = {
            "model_path": str(launch.path),
            "n_ctx": launch.context_window,
            "threads": self.settings.threads,
            "chat_template": launch.template,
            "use_jinja": launch.use_jinja,
            "api_key": self.api_key,
            "alias": self.settings.alias,
        }
        with contextlib.suppress(OSError, ValueError):  # the helper may have exited already: read why
            proc.stdin.write(json.dumps(config) + "\n")
            proc.stdin.flush()
        try:
            line = proc.stdout.readline()
        except (OSError, ValueError):  # closed under us by close()
            line = ""
        if run.closing:
            return None
        reply = _parse(line)
        if reply.get("ok") and isinstance(reply.get("url"), str):
            run.loading = False
            if not launch.use_jinja:
                self._check_builtin_template(reply["url"], launch)
            return reply["url"]
        raise ProviderError(ErrorKind.UNAVAILABLE, self._load_failure(run, launch, reply), provider=self.name)

    def _check_builtin_template(self, url: str, launch: _Launch) -> None:
        """llama.cpp accepts any template name at load and fails every request (HTTP 500) later: ask now."""
        body = json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode()
        request = urllib.request.Request(f"{url}/apply-template", data=body, method="POST", headers={
            "Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
        try:
            with opener.open(request, timeout=10):
                return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
        except OSError:
            return  # not the template's fault; the first real request will report it
        raise ProviderError(
            ErrorKind.UNAVAILABLE,
            f"llama.cpp has no built-in chat template named {launch.template!r}: give a llama.cpp template "
            "name (chatml, llama3, ...), Jinja text, or the path of a .jinja file",
            provider=self.name,
        )

    def _load_failure(self, run: _Run, launch: _Launch, reply: dict[str, object]) -> str:
        """One line: which file, and llama.cpp's own first error line when it logged one."""
        proc = run.proc
        code: int | None = None
        if proc is not None:
            try:
                code = proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
        if run.stderr_thread is not None:
            run.stderr_thread.join(timeout=2)
        detail = _first_error(run.stderr)
        if isinstance(reply.get("error"), str) and "xllamacpp is not installed" in str(reply["error"]):
            return str(reply["error"])
        if detail is None and code is not None and code < 0:
            detail = f"the helper was killed by {_signal_name(-code)}"
            if -code == getattr(signal, "SIGKILL", 9):
                detail += " (out of memory?)"
        if detail is None:
            detail = str(reply.get("error") or f"the helper exited (code {code})")
        return f"llama.cpp could not load {launch.path.name}: {detail}"

    def _watch(self, run: _Run) -> None:
        """Block until the helper exits; an exit we did not ask for marks the server failed."""
        proc = run.proc
        assert proc is not None and proc.stdout is not None
        with contextlib.suppress(OSError, ValueError):
            while proc.stdout.readline():
                pass
        if run.closing:
            return
        code = proc.wait()
        reason = f"killed by {_signal_name(-code)}" if code < 0 else f"exit code {code}"
        detail = _first_error(run.stderr)
        self._finish(run, "failed", f"the llama.cpp server stopped unexpectedly ({reason})"
                     + (f": {detail}" if detail else ""))

    def _finish(self, run: _Run, state: State, error: str | None) -> None:
        if state == "failed" and run.proc is not None:
            _stop_process(run.proc, 1.0, kill_now=True)
        with self._lock:
            if self._run is not run or run.closing:
                return
            self._set_state(state, error)

    # --- helpers (call with the lock held) ---------------------------------------------------------

    def _set_state(self, state: State, error: str | None) -> None:
        self._state = state
        self._error = error
        self._lock.notify_all()
        waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody is waiting any more
                loop.call_soon_threadsafe(_resolve, future)

    def _raise_unless_ready(self) -> None:
        if self._state == "ready":
            return
        if self._state == "failed":
            raise ProviderError(ErrorKind.UNAVAILABLE, self._error or "the model failed to load", provider=self.name)
        raise ProviderError(ErrorKind.UNAVAILABLE, "the llama.cpp server was stopped", provider=self.name)


class _Run:
    """One attempt at running the helper; a new `start()` gets a new one, so late news is ignored."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.thread: threading.Thread | None = None
        self.stderr_thread: threading.Thread | None = None
        self.stderr: deque[str] = deque(maxlen=_STDERR_LINES)
        self.finalizer: weakref.finalize | None = None
        self.closing = False
        self.loading = True


def _context_window(configured: int | None, info: GGUFInfo) -> int:
    if configured:
        return configured
    if info.context_length:
        return min(info.context_length, DEFAULT_MAX_CONTEXT)
    return FALLBACK_CONTEXT


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _drain(stream: IO[str] | None, into: deque[str]) -> None:
    """Keep the last lines of llama.cpp's log; reading also stops the pipe from filling up."""
    if stream is None:
        return
    with contextlib.suppress(OSError, ValueError):
        for line in stream:
            into.append(line.rstrip("\n"))


def _first_error(lines: deque[str]) -> str | None:
    """llama.cpp's first error line is the specific one ("invalid magic", "failed to allocate")."""
    for line in list(lines):
        match = _LOG_LINE.match(line)
        if match and match.group(1) == "E":
            return _FUNCTION_PREFIX.sub("", match.group(2).strip(), count=1)
    return None


def _parse(line: str) -> dict[str, object]:
    try:
        value = json.loads(line) if line.strip() else {}
    except json.JSONDecodeError:
        return {"error": f"unexpected output from the helper: {line.strip()[:200]}"}
    return value if isinstance(value, dict) else {}


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _stop_run(run: _Run) -> None:
    if run.proc is not None:
        _stop_process(run.proc, 2.0, kill_now=run.loading)


def _stop_process(proc: subprocess.Popen[str], timeout: float, kill_now: bool) -> None:
    """Close the helper's stdin (it then frees the model and exits); kill it if it does not."""
    if proc.poll() is not None:
        return
    if kill_now:  # still inside llama.cpp's load, which cannot be interrupted politely
        with contextlib.suppress(OSError):
            proc.kill()
    else:
        with contextlib.suppress(OSError, ValueError):
            if proc.stdin is not None:
                proc.stdin.close()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
