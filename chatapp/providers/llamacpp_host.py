"""The helper process that hosts llama.cpp's HTTP server: `python -m chatapp.providers.llamacpp_host`.

Why a helper process rather than a thread: `xllamacpp.Server(params)` holds the GIL for the whole
model load (measured: a 5 ms ticker thread stalled for 1.4 s), so loading in a thread would freeze the
TUI's event loop. In a process of its own the load cannot stall chatapp, llama.cpp's logs go to a
pipe instead of the terminal the TUI owns, and an abort inside llama.cpp (out of memory) takes down
the helper, not the user's session.

Protocol (one JSON object per line):
- parent -> stdin: the config, {"model_path", "n_ctx", "threads", "chat_template", "use_jinja",
  "api_key", "alias"}; the API key travels here, never on the command line where `ps` shows it;
- stdout -> parent: {"ok": true, "url": ..., "load_seconds": ...} or {"ok": false, "error": ...};
- then the helper waits for EOF on stdin: the parent closing the pipe, or dying, stops the server.

Only the standard library and xllamacpp are imported here, so the helper starts fast.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from typing import Any, TextIO


def _reply(out: TextIO, message: dict[str, Any]) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


def _params(xllamacpp: Any, config: dict[str, Any]) -> Any:
    params = xllamacpp.CommonParams()
    params.model.path = config["model_path"]
    params.hostnames = ["127.0.0.1"]  # loopback only, whatever the library default becomes
    params.port = 0  # a free port chosen by the OS
    if config.get("api_key"):  # chatapp always sends one; a test runs a keyless server, as users often do
        params.api_keys = [config["api_key"]]
    params.n_ctx = int(config["n_ctx"])
    params.n_parallel = 1  # one reply at a time gets the whole window; the scheduler queues the rest
    params.verbosity = 1  # errors only, into our stderr pipe (0 silences even load errors)
    params.fit_params = False  # it loads the model a second time to size GPU offload: 1.2 s for nothing on CPU
    params.ui = False
    params.endpoint_slots = True
    if config.get("threads"):
        params.cpuparams.n_threads = int(config["threads"])
        params.cpuparams_batch.n_threads = int(config["threads"])
    params.use_jinja = bool(config.get("use_jinja", True))
    if config.get("chat_template"):
        params.chat_template = config["chat_template"]
    if config.get("alias"):
        params.model_alias = {config["alias"]}
    return params


def main(stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    # Ctrl+C in the parent's terminal is the parent's business; we stop when our stdin closes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import xllamacpp  # imported while the parent reads the model header
    except ImportError as exc:
        from chatapp.config import LOCAL_MODEL_INSTALL

        _reply(stdout, {"ok": False, "error": f"xllamacpp is not installed ({exc}): {LOCAL_MODEL_INSTALL}"})
        return 1
    line = stdin.readline()
    if not line:
        return 0  # the parent went away before sending the config
    config = json.loads(line)
    started = time.perf_counter()
    try:
        server = xllamacpp.Server(_params(xllamacpp, config))
    except Exception as exc:
        _reply(stdout, {"ok": False, "error": str(exc) or type(exc).__name__})
        return 1
    _reply(stdout, {"ok": True, "url": server.listening_address, "load_seconds": time.perf_counter() - started,
                    "pid": os.getpid()})
    for _ in stdin:  # block until EOF; lines are ignored
        pass
    del server  # joins llama.cpp's threads and frees the model
    return 0


def run() -> None:
    try:
        code = main()
    except BrokenPipeError:  # the parent died while we were loading
        code = 0
    except Exception as exc:  # reported to the parent, which turns it into a one-line error
        with contextlib.suppress(OSError):
            _reply(sys.stdout, {"ok": False, "error": f"{type(exc).__name__}: {exc}"})
        code = 1
    with contextlib.suppress(OSError):
        sys.stdout.flush()
    os._exit(code)  # skip interpreter teardown: the server is gone, nothing of ours is left to clean up


if __name__ == "__main__":
    run()
