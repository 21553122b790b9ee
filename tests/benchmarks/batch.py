"""Benchmark: `chatapp batch` throughput against its theoretical maximum, peak RSS vs item count, and the
batch machinery's cost per item.

1. throughput: `chatapp batch` in a subprocess against the scripted server, itself in another process,
   answering after 50 ms, with 600 RPM / concurrency 32, and with concurrency 32 and no rate limit. The
   theoretical maximum counts the RPM bucket's first minute (it starts full, as the provider's does) and
   concurrency / latency. The client's CPU per item says how far one core can go at all: an asyncio
   client runs on one core, so `1 / (CPU per item)` items/s is its ceiling whatever the latency.
2. rss: peak RSS of a process running 10k and 100k items through the batch run (reader, queue, engine,
   sidecar DB, output files) with an in-process provider that answers at once, so the figure is the
   batch machinery's and not the SDK's; flat means the 100k run stays within 1.2x of the 10k one.
3. overhead: wall and CPU time per item of that same pipeline (feeding, scheduling, retry loop,
   committing each result, writing the output) with a provider that costs nothing.

Run: python tests/benchmarks/batch.py [throughput|rss|overhead|all] [--items N] [--rpm-items N]
     [--config both|rpm|unlimited]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: fakeserver, envs

LATENCY = 0.05
CONCURRENCY = 32
RPM = 600


def _write_input(path: Path, count: int) -> None:
    with path.open("w") as handle:
        for i in range(count):
            handle.write(json.dumps({"id": f"q{i}", "prompt": f"summarize item number {i} in one word"}) + "\n")


def _theoretical_seconds(items: int, rpm: float | None) -> float:
    by_concurrency = items * LATENCY / CONCURRENCY
    if rpm is None:
        return by_concurrency
    after_burst = max(0, items - rpm)  # the bucket starts with one minute's allowance
    return max(by_concurrency, after_burst / (rpm / 60))


def _serve(latency: float) -> None:
    """The scripted server in its own process (so it takes none of the client's CPU or GIL): prints its
    base URL, answers until stdin closes, then prints when the completion requests arrived."""
    from fakeserver import FakeServer, Reply

    with FakeServer(default=Reply("ok", latency=latency)) as server:
        print(server.openai_base_url, flush=True)
        sys.stdin.read()
        times = [r.received for r in server.requests if r.wire is not None]
    print(json.dumps({"requests": len(times), "first": min(times, default=0.0), "last": max(times, default=0.0)}))


def _run_client(count: int, rpm: float | None) -> dict[str, float]:
    """One `chatapp batch` process against a server process; wall time from the first request the server
    saw to the client's exit (imports and the estimate pass are before it)."""
    from envs import clean_env

    server = subprocess.Popen([sys.executable, __file__, "_serve", "--latency", str(LATENCY)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert server.stdin is not None and server.stdout is not None
    try:
        base_url = server.stdout.readline().strip()
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            env = clean_env(root)
            config = root / "config" / "chatapp"
            config.mkdir(parents=True)
            limit = f"rpm = {rpm}\n" if rpm else ""
            config.joinpath("config.toml").write_text(
                f'default_provider = "p"\n[providers.p]\nkind = "openai"\nbase_url = "{base_url}"\n'
                f'api_key = "k"\nmodel = "gpt-4o-mini"\n{limit}')
            source = root / "in.jsonl"
            _write_input(source, count)
            client = subprocess.Popen(
                [sys.executable, "-m", "chatapp", "batch", str(source), "--yes", "--concurrency", str(CONCURRENCY),
                 "--progress-every", str(10**9)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            _, status, usage = os.wait4(client.pid, 0)
            ended = time.monotonic()
            client.returncode = os.waitstatus_to_exitcode(status)
            assert client.returncode == 0, client.stderr.read() if client.stderr else ""
            rows = sum(1 for _ in (root / "in.out.jsonl").open())
            assert rows == count, (rows, count)
    finally:
        server.stdin.close()
        seen = json.loads(server.stdout.read())
        server.wait()
    assert seen["requests"] == count, seen
    return {"wall": ended - seen["first"], "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss / 1024}


def throughput(items: int, rpm_items: int, config: str = "both") -> None:
    runs = (("600 RPM, concurrency 32", RPM, rpm_items), ("no limit, concurrency 32", None, items))
    for label, rpm, count in runs:
        if config != "both" and (config == "rpm") != (rpm is not None):
            continue
        figures = _run_client(count, rpm)
        elapsed, cpu = figures["wall"], figures["cpu"]
        ideal = _theoretical_seconds(count, rpm)
        print(f"throughput, {label}: {count:,} items in {elapsed:.1f} s = {count / elapsed:.1f} items/s; "
              f"theoretical {ideal:.1f} s = {count / ideal:.1f} items/s; ratio {ideal / elapsed:.0%}; "
              f"client CPU {cpu:.1f} s = {cpu / count * 1e3:.2f} ms per item (one core's ceiling at that cost: "
              f"{count / cpu:.0f} items/s); peak RSS {figures['rss']:.0f} MiB", flush=True)


class InstantProvider:
    """Answers every request at once, in-process: the batch machinery is all that is measured."""

    kind = "openai"

    def __init__(self, name: str, model: str) -> None:
        self.name, self.model = name, model

    def stream(self, request):
        return self._play(request)

    async def _play(self, request) -> AsyncIterator[object]:
        from chatapp.domain import Finish, TextDelta, Usage

        yield TextDelta("ok")
        yield Usage(12, 1)
        yield Finish("stop")

    async def aclose(self) -> None:
        return None


async def _pipeline(count: int, root: Path) -> tuple[float, float]:
    from chatapp.config import load_settings
    from chatapp.providers.registry import Availability, ProviderPool
    from chatapp.service import ChatService
    from chatapp.service.batch_desk import BatchPlan
    from chatapp.store.conversations import Store

    class InstantPool(ProviderPool):
        def availability(self, name: str) -> Availability:
            return Availability(name, "openai", "gpt-4o-mini", True)

        def get(self, name: str) -> InstantProvider:  # type: ignore[override]
            return InstantProvider(name, "gpt-4o-mini")

    settings = load_settings({"OPENAI_API_KEY": "k", "XDG_DATA_HOME": str(root / "data"),
                              "XDG_CONFIG_HOME": str(root / "config")})
    service = ChatService(settings, Store.open(settings.paths.database), InstantPool(settings))
    source = root / "in.jsonl"
    _write_input(source, count)
    plan = BatchPlan(input_path=source, concurrency=CONCURRENCY)
    batch_run = service.start_batch(plan, count)
    wall, cpu = time.perf_counter(), time.process_time()
    outcome = await batch_run.run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await service.aclose()
    assert outcome.complete and outcome.progress.done == count
    return wall, cpu


def _rss_worker(count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["XDG_DATA_HOME"] = str(Path(tmp) / "data")
        wall, cpu = asyncio.run(_pipeline(count, Path(tmp)))
    print(json.dumps({"wall": wall, "cpu": cpu}))


def rss() -> None:
    peaks: dict[int, float] = {}
    for count in (10_000, 100_000):
        process = subprocess.Popen([sys.executable, __file__, "_worker", "--items", str(count)],
                                   stdout=subprocess.PIPE, text=True)
        out = process.stdout.read() if process.stdout else ""
        _, _, usage = os.wait4(process.pid, 0)
        figures = json.loads(out)
        peaks[count] = usage.ru_maxrss / 1024
        print(f"rss: {count:,} items: peak RSS {peaks[count]:.0f} MiB; {figures['wall']:.1f} s "
              f"({count / figures['wall']:.0f} items/s)")
    print(f"rss: 100k / 10k = {peaks[100_000] / peaks[10_000]:.2f}x (target <= 1.2x)")


def overhead(items: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        wall, cpu = asyncio.run(_pipeline(items, Path(tmp)))
    print(f"overhead: {items:,} items through the batch pipeline with an instant provider: "
          f"{wall / items * 1e3:.2f} ms wall, {cpu / items * 1e3:.2f} ms CPU per item")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", nargs="?", default="all",
                        choices=("throughput", "rss", "overhead", "all", "_worker", "_serve"))
    parser.add_argument("--latency", type=float, default=LATENCY, help=argparse.SUPPRESS)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--rpm-items", type=int, default=1_200, help="items for the 600 RPM run (10k: ~16 min)")
    parser.add_argument("--config", choices=("both", "rpm", "unlimited"), default="both",
                        help="throughput: which limits to run")
    args = parser.parse_args()
    if args.what == "_worker":
        return _rss_worker(args.items)
    if args.what == "_serve":
        return _serve(args.latency)
    if args.what in ("overhead", "all"):
        overhead(min(args.items, 10_000))
    if args.what in ("rss", "all"):
        rss()
    if args.what in ("throughput", "all"):
        throughput(args.items, args.rpm_items, args.config)


if __name__ == "__main__":
    main()
