"""llama.cpp's own HTTP server for one GGUF model, on 127.0.0.1, behind a per-run API key.

The server runs in a helper process (`chatapp.providers.llamacpp_host`), started and watched from a
background thread, because `xllamacpp.Server()` holds the GIL for the whole model load (1.4 s on the
packaged model, measured): in a thread of our own process it would freeze the TUI. The helper also
keeps llama.cpp's logs off the terminal (they go to a pipe; the last lines explain load failures)
and keeps an abort inside llama.cpp from killing chatapp.

Everything the user can get wrong is checked before llama.cpp sees it (missing file, not a GGUF,
not enough memory), so each failure becomes one readable `ProviderError(UNAVAILABLE)`.
The helper exits when its stdin closes, so it never outlives chatapp, even after a SIGKILL.

This module holds the state machine and its threads; `llamacpp_launch` resolves the settings against
the file (`ServerSettings` lives there), `llamacpp_process` spawns, reads and stops the helper.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from chatapp.domain import ErrorKind, LoadState, ProviderError
from chatapp.providers.llamacpp_launch import (
    DEFAULT_MAX_CONTEXT,
    FALLBACK_CONTEXT,
    Launch,
    ServerSettings,
    available_memory,
    check_builtin_template,
    gemma_template,
    helper_config,
    resolve_launch,
    vet_file,
)
from chatapp.providers.llamacpp_process import (
    HelperRun,
    exchange,
    load_failure,
    spawn_helper,
    start_log_drain,
    stop_process,
    stop_run,
    wait_exit,
)

__all__ = [
    "DEFAULT_MAX_CONTEXT",
    "FALLBACK_CONTEXT",
    "LlamaServer",
    "ServerSettings",
    "ServerStatus",
    "available_memory",
    "gemma_template",
]

_STOP_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class ServerStatus:
    """A snapshot for the status line and `chatapp doctor`."""

    state: LoadState
    model_path: Path | None
    file_size: int | None
    context_window: int | None
    chat_template: str | None  # where the template came from, in words
    load_seconds: float | None
    error: str | None
    url: str | None


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
        self._state: LoadState = LoadState.IDLE
        self._error: str | None = None
        self._load_seconds: float | None = None
        self._launch: Launch | None = None
        self._url: str | None = None
        self._run: HelperRun | None = None
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    # --- what the status line and the provider read ------------------------------------------

    @property
    def state(self) -> LoadState:
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
        return self._url if self._state is LoadState.READY else None

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
    def stop_sequences(self) -> tuple[str, ...]:
        """Stop sequences the model's prompt format needs on every request (known once the file has been read)."""
        return self._launch.stop if self._launch else ()

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
            if self._state in (LoadState.LOADING, LoadState.READY):
                return
            run = HelperRun()
            self._run = run
            self._state = LoadState.LOADING
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
            if not self._lock.wait_for(lambda: self._state is not LoadState.LOADING, timeout):
                raise ProviderError(ErrorKind.UNAVAILABLE, f"the model did not load within {timeout:.0f} s",
                                    provider=self.name)
            self._raise_unless_ready()

    async def ready(self) -> None:
        """Await the model (starting the load if needed). Cancelling the wait leaves the load running."""
        self.start()
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._state is LoadState.LOADING:
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
            stop_process(proc, timeout, kill_now=run.loading)
        if run.finalizer is not None:
            run.finalizer.detach()
        if run.thread is not None and run.thread is not threading.current_thread():
            run.thread.join(timeout)
        with self._lock:
            if self._run is None:
                self._set_state(LoadState.IDLE, None)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    # --- the background thread ------------------------------------------------------------------

    def _load(self, run: HelperRun) -> None:
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
            self._finish(run, LoadState.FAILED, exc.message)
            return
        except Exception as exc:  # a bug or an OS surprise must not kill the thread silently
            self._finish(run, LoadState.FAILED, f"could not start llama.cpp: {type(exc).__name__}: {exc}")
            return
        if url is None:
            return
        with self._lock:
            if self._run is run:
                self._url = url
                self._load_seconds = time.monotonic() - started
        self._finish(run, LoadState.READY, None)
        self._watch(run)

    def _prepare(self, run: HelperRun) -> Launch | None:
        """Locate and vet the file, spawn the helper (it imports xllamacpp while we read the header)."""
        path = self._locate() if self._locate is not None else self.settings.model_path
        assert path is not None
        path = path.expanduser()
        vet_file(path, self.name)
        if not self._spawn(run):
            return None
        return resolve_launch(self.settings, path, self._memory, self.name)

    def _spawn(self, run: HelperRun) -> bool:
        with self._lock:
            if run.closing:
                return False
            run.proc = spawn_helper(self.name)
            # Interpreter exit or a forgotten close(): stop the helper then too (atexit runs finalizers).
            run.finalizer = weakref.finalize(self, stop_run, run)
        start_log_drain(run, f"llamacpp-{self.name}-log")
        return True

    def _handshake(self, run: HelperRun, launch: Launch) -> str | None:
        proc = run.proc
        assert proc is not None
        reply = exchange(proc, helper_config(launch, self.settings, self.api_key))
        if run.closing:
            return None
        url = reply.get("url")
        if reply.get("ok") and isinstance(url, str):
            run.loading = False
            if not launch.use_jinja:
                check_builtin_template(url, self.api_key, launch, self.name)
            return url
        raise ProviderError(ErrorKind.UNAVAILABLE, load_failure(run, launch.path.name, reply), provider=self.name)

    def _watch(self, run: HelperRun) -> None:
        """Block until the helper exits; an exit we did not ask for marks the server failed."""
        message = wait_exit(run)
        if message is not None:
            self._finish(run, LoadState.FAILED, message)

    def _finish(self, run: HelperRun, state: LoadState, error: str | None) -> None:
        if state is LoadState.FAILED and run.proc is not None:
            stop_process(run.proc, 1.0, kill_now=True)
        with self._lock:
            if self._run is not run or run.closing:
                return
            self._set_state(state, error)

    # --- helpers (call with the lock held) ---------------------------------------------------------

    def _set_state(self, state: LoadState, error: str | None) -> None:
        self._state = state
        self._error = error
        self._lock.notify_all()
        waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody is waiting any more
                loop.call_soon_threadsafe(_resolve, future)

    def _raise_unless_ready(self) -> None:
        if self._state is LoadState.READY:
            return
        if self._state is LoadState.FAILED:
            raise ProviderError(ErrorKind.UNAVAILABLE, self._error or "the model failed to load", provider=self.name)
        raise ProviderError(ErrorKind.UNAVAILABLE, "the llama.cpp server was stopped", provider=self.name)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
