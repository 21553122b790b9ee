"""chatapp against a floor, side by side in real terminals (tmux, 120x40), same server, same reply.

    python tests/benchmarks/floor.py [--sizes 500 2000 10000] [--runs 3] [--rate 100 --rate-tokens 1000]
    python tests/benchmarks/floor.py --last-word-runs 20

The floor is `floor_app.py`: a bare Textual app that streams with httpx and paints the visible tail as
plain text. Both apps run in their own tmux session on a private tmux server, fed by the scripted server
in its own process. Each run starts a fresh app, waits until it is idle, presses Enter (chatapp: types
"go" first) and polls the pane every 5 ms until the reply's last word is on screen.

Prints, per size, the median seconds from Enter to the last word on screen for each app and their ratio
(target ≤ 2), and for the paced reply (`--rate-tokens` at `--rate` tok/s) the median CPU seconds each
app's process used from Enter to the last word, and their ratio (target ≤ 1.25).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
sys.path.insert(0, str(TESTS))
sys.path.insert(0, str(TESTS / "tui"))

from fakeserver import split_tokens  # noqa: E402
from sample_texts import REALISTIC_UNIT  # noqa: E402

MARKER = "zqxfinal"
SOCKET = f"chatapp-floor-{os.getpid()}"

_SERVER = """
import sys
sys.path.insert(0, {tests!r})
from fakeserver import FakeServer, Reply
server = FakeServer()
server.start()
print(server.openai_base_url, flush=True)
for line in sys.stdin:  # "tokens rate" per line: the next reply to send
    tokens, rate = line.split()
    text = open({reply_file!r} + "." + tokens).read()
    server.script(Reply(text, delay=1 / float(rate) if float(rate) else 0.0))
"""


def reply_text(tokens: int) -> str:
    """The realistic reply (heading + paragraph + list + Python block, repeated) of about `tokens` tokens."""
    units: list[str] = []
    count = 0
    while count < tokens:
        unit = REALISTIC_UNIT.format(n=len(units) + 1)
        units.append(unit)
        count += len(split_tokens(unit))
    return "".join(units) + f"The last word is {MARKER}\n"


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", "-L", SOCKET, *args], capture_output=True, text=True, check=False).stdout


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for_screen(session: str, needle: str, timeout: float) -> float:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if needle in tmux("capture-pane", "-p", "-t", session):
            return time.perf_counter()
        time.sleep(0.005)
    raise TimeoutError(f"{needle!r} not on screen in {session} after {timeout} s")


def one_run(app: str, tokens: int, rate: float, server: subprocess.Popen[str],
            env: dict[str, str]) -> tuple[float, float]:
    session = f"{app}-{tokens}"
    if app == "floor":
        command, ready = f"{sys.executable} {TESTS / 'benchmarks' / 'floor_app.py'}", "floor ready"
    else:
        command, ready = f"{sys.executable} -m chatapp", "Message"
    exports = " ".join(f"{key}={value}" for key, value in env.items())
    pid_text = ""
    for _ in range(5):  # (the tmux server quits with its last session: a new one can race with that)
        tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "40", f"exec env {exports} {command}")
        pid_text = tmux("display", "-p", "-t", session, "#{pane_pid}").strip()
        if pid_text:
            break
        time.sleep(0.2)
    try:
        pid = int(pid_text)
        wait_for_screen(session, ready, 30)
        time.sleep(1.5)  # let after-first-paint work (SDK warm-up) finish
        assert server.stdin is not None
        server.stdin.write(f"{tokens} {rate}\n")
        server.stdin.flush()
        time.sleep(0.05)
        if app != "floor":
            tmux("send-keys", "-t", session, "-l", "go")
            time.sleep(0.2)
        cpu_before = cpu_seconds(pid)
        started = time.perf_counter()
        tmux("send-keys", "-t", session, "Enter")
        seen = wait_for_screen(session, MARKER, 120)
        return seen - started, cpu_seconds(pid) - cpu_before
    finally:
        tmux("kill-session", "-t", session)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 10_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--rate-tokens", type=int, default=1000)
    parser.add_argument("--last-word-runs", type=int, default=0,
                        help="only count, over N runs of chatapp with a 2,000-token reply, how often the last word "
                             "reached the screen")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        reply_file = f"{home}/reply"
        for size in {*args.sizes, args.rate_tokens, 2000}:
            Path(f"{reply_file}.{size}").write_text(reply_text(size))
        server = subprocess.Popen([sys.executable, "-c", _SERVER.format(tests=str(TESTS), reply_file=reply_file)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert server.stdout is not None
        base_url = server.stdout.readline().strip()
        env = {"XDG_CONFIG_HOME": f"{home}/config", "XDG_DATA_HOME": f"{home}/data",
               "XDG_CACHE_HOME": f"{home}/cache", "OPENAI_API_KEY": "sk-floor", "OPENAI_BASE_URL": base_url,
               "PYTHONPATH": str(ROOT), "TERM": "xterm-256color"}
        try:
            if args.last_word_runs:
                seen = 0
                for _ in range(args.last_word_runs):
                    try:
                        one_run("chatapp", 2000, 0, server, env)
                        seen += 1
                    except TimeoutError:
                        pass
                print(f"last word on screen in {seen} of {args.last_word_runs} runs (2,000 tokens, tmux 120x40)")
                return
            for size in args.sizes:
                times = {app: statistics.median(one_run(app, size, 0, server, env)[0] for _ in range(args.runs))
                         for app in ("floor", "chatapp")}
                print(f"{size:>6} tokens unthrottled, Enter to last word on screen: floor {times['floor']:.2f} s, "
                      f"chatapp {times['chatapp']:.2f} s, ratio {times['chatapp'] / times['floor']:.2f} (target ≤ 2)",
                      flush=True)
            cpu = {app: statistics.median(one_run(app, args.rate_tokens, args.rate, server, env)[1]
                                          for _ in range(args.runs)) for app in ("floor", "chatapp")}
            print(f"{args.rate_tokens} tokens at {args.rate:.0f} tok/s, CPU from Enter to last word: "
                  f"floor {cpu['floor']:.2f} s, chatapp {cpu['chatapp']:.2f} s, "
                  f"ratio {cpu['chatapp'] / cpu['floor']:.2f} "
                  f"(target ≤ 1.25)  (medians of {args.runs})")
        finally:
            tmux("kill-server")
            server.kill()
            server.wait()


if __name__ == "__main__":
    main()
