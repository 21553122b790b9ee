"""Median time from process start to the first painted chat screen, in a real pseudo-terminal.

    python tests/benchmarks/startup.py [--runs 9] [--env-key]

Starts `python -m chatapp` in a pty (80x24) with empty XDG dirs, reads what it draws, and stops the
clock when the footer (the last thing the first frame paints) appears. `--env-key` sets a dummy
OPENAI_API_KEY so the OpenAI provider is the default instead of the embedded model.
"""

from __future__ import annotations

import argparse
import os
import pty
import select
import signal
import statistics
import struct
import sys
import tempfile
import time

MARKER = b"New chat"  # a footer binding description: present once the first frame is on screen
TIMEOUT = 20.0


def one_run(env: dict[str, str]) -> float:
    start = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:  # child
        os.execve(sys.executable, [sys.executable, "-m", "chatapp"], env)
    try:
        import fcntl
        import termios

        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        seen = b""
        while time.perf_counter() - start < TIMEOUT:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            seen += chunk
            if MARKER in seen:
                return time.perf_counter() - start
        raise RuntimeError(f"no first frame within {TIMEOUT} s; output tail: {seen[-400:]!r}")
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--env-key", action="store_true", help="default provider openai instead of embedded")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_"))}
        env.update(TERM="xterm-256color", XDG_CONFIG_HOME=f"{home}/config", XDG_DATA_HOME=f"{home}/data",
                   XDG_CACHE_HOME=f"{home}/cache", COLUMNS="80", LINES="24")
        if args.env_key:
            env["OPENAI_API_KEY"] = "sk-benchmark"
            env["OPENAI_BASE_URL"] = "http://127.0.0.1:9/v1"
        one_run(env)  # warm-up: byte-compiles, assembles the embedded model once
        times = [one_run(env) for _ in range(args.runs)]
    print(f"first paint: median {statistics.median(times) * 1000:.0f} ms, "
          f"min {min(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms over {args.runs} runs")


if __name__ == "__main__":
    main()
