"""The llama.cpp helper process (`chatapp.providers.llamacpp_host`) as seen from chatapp.

Spawning it, the one-line handshake, keeping the tail of its log (the last lines explain load
failures), explaining why it stopped, and stopping it: closing its stdin asks it to free the model
and exit, a kill is the fallback. `llamacpp_server.LlamaServer` owns the threads and the state.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import weakref
from collections import deque
from typing import IO, Any

from chatapp.domain import ErrorKind, ProviderError

STDERR_LINES = 60
_LOG_LINE = re.compile(r"^[\d.]+\s+([EWI])\s+(?:\w+\s+)?(.*)$")  # "0.00.007.346 E srv    load_model: ..."
_FUNCTION_PREFIX = re.compile(r"^\w+: ")


class HelperRun:
    """One attempt at running the helper; a new `start()` gets a new one, so late news is ignored."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.thread: threading.Thread | None = None
        self.stderr_thread: threading.Thread | None = None
        self.stderr: deque[str] = deque(maxlen=STDERR_LINES)
        self.finalizer: weakref.finalize[..., Any] | None = None
        self.closing = False
        self.loading = True


def spawn_helper(provider: str) -> subprocess.Popen[str]:
    try:
        return subprocess.Popen(
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
                            provider=provider) from None


def start_log_drain(run: HelperRun, name: str) -> None:
    """Read the helper's stderr in a daemon thread into `run.stderr`."""
    assert run.proc is not None
    stderr = threading.Thread(target=drain, args=(run.proc.stderr, run.stderr), daemon=True, name=name)
    stderr.start()
    run.stderr_thread = stderr


def exchange(proc: subprocess.Popen[str], config: dict[str, object]) -> dict[str, object]:
    """Send the config line; return the helper's reply (empty if it closed its stdout)."""
    assert proc.stdin is not None and proc.stdout is not None
    with contextlib.suppress(OSError, ValueError):  # the helper may have exited already: read why
        proc.stdin.write(json.dumps(config) + "\n")
        proc.stdin.flush()
    try:
        line = proc.stdout.readline()
    except (OSError, ValueError):  # closed under us by close()
        line = ""
    return parse_reply(line)


def load_failure(run: HelperRun, model_name: str, reply: dict[str, object]) -> str:
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
    detail = first_error(run.stderr)
    if isinstance(reply.get("error"), str) and "xllamacpp is not installed" in str(reply["error"]):
        return str(reply["error"])
    if detail is None and code is not None and code < 0:
        detail = f"the helper was killed by {signal_name(-code)}"
        if -code == getattr(signal, "SIGKILL", 9):
            detail += " (out of memory?)"
    if detail is None:
        detail = str(reply.get("error") or f"the helper exited (code {code})")
    return f"llama.cpp could not load {model_name}: {detail}"


def wait_exit(run: HelperRun) -> str | None:
    """Block until the helper exits; why it stopped, or None if we asked it to."""
    proc = run.proc
    assert proc is not None and proc.stdout is not None
    with contextlib.suppress(OSError, ValueError):
        while proc.stdout.readline():
            pass
    if run.closing:
        return None
    code = proc.wait()
    reason = f"killed by {signal_name(-code)}" if code < 0 else f"exit code {code}"
    detail = first_error(run.stderr)
    return f"the llama.cpp server stopped unexpectedly ({reason})" + (f": {detail}" if detail else "")


def drain(stream: IO[str] | None, into: deque[str]) -> None:
    """Keep the last lines of llama.cpp's log; reading also stops the pipe from filling up."""
    if stream is None:
        return
    with contextlib.suppress(OSError, ValueError):
        for line in stream:
            into.append(line.rstrip("\n"))


def first_error(lines: deque[str]) -> str | None:
    """llama.cpp's first error line is the specific one ("invalid magic", "failed to allocate")."""
    for line in list(lines):
        match = _LOG_LINE.match(line)
        if match and match.group(1) == "E":
            return _FUNCTION_PREFIX.sub("", match.group(2).strip(), count=1)
    return None


def parse_reply(line: str) -> dict[str, object]:
    try:
        value = json.loads(line) if line.strip() else {}
    except json.JSONDecodeError:
        return {"error": f"unexpected output from the helper: {line.strip()[:200]}"}
    return value if isinstance(value, dict) else {}


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def stop_run(run: HelperRun) -> None:
    if run.proc is not None:
        stop_process(run.proc, 2.0, kill_now=run.loading)


def stop_process(proc: subprocess.Popen[str], timeout: float, kill_now: bool) -> None:
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
