"""`chatapp batch` end to end in subprocesses against the scripted server: faults, SIGKILL, resume, SIGINT,
the estimate and its guards, and an interactive `ask` going before queued batch items."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter

import pytest
from batch_helpers import Billing, batch_env, chatapp, only_job, rows, start, wait_until, write_jsonl
from fakeserver import Error, FakeServer, Reply

CONCURRENCY = 8
GRACE = 0.1  # seconds from a batch worker's last look at the marks to its request reaching the server


def _inject_faults(server: FakeServer, billing: Billing) -> None:
    """A 400 for every poison prompt (a permanent failure), and a 429 or a 5xx after every 40 replies."""
    server.script(Error(400, "this prompt is rejected"), repeat=10**6, match=lambda r: "poison" in r.prompt)
    for n in range(60):
        server.script(Reply(billing.reply, latency=0.005), repeat=40)
        server.script(Error(429, retry_after=0.01) if n % 2 else Error(503 if n % 4 == 1 else 500))


@pytest.mark.timeout(600)  # subprocesses on a shared 2-core machine
def test_thousand_items_with_faults_then_sigkill_and_resume(tmp_path):
    billing = Billing()
    poison = set(range(7, 1000, 97))  # 11 permanent failures spread through the input
    with FakeServer(default=Reply(billing.reply, latency=0.005)) as server:
        _inject_faults(server, billing)
        env = batch_env(tmp_path, server.openai_base_url)
        source = tmp_path / "prompts.jsonl"
        ids = write_jsonl(source, 1000, poison=poison)
        out = tmp_path / "out.jsonl"
        first = start(env, "batch", str(source), "-o", str(out), "--yes", "--concurrency", str(CONCURRENCY),
                      "--progress-every", "100")
        try:
            wait_until(lambda: billing.count() >= 400 or first.poll() is not None, what="half the batch")
            assert first.poll() is None, first.communicate()
            killed_at = time.monotonic()
            first.send_signal(signal.SIGKILL)
            first.wait(30)
        finally:
            if first.poll() is None:
                first.kill()
        half = rows(out) if out.exists() else []
        assert 0 < len(half) < 1000
        job = only_job(env)
        status = chatapp(env, "batch", "status", job)
        assert "stopped" in status.stdout and f"--resume {job}" in status.stdout
        resumed = chatapp(env, "batch", "--resume", job)
        assert resumed.returncode == 1, resumed.stderr  # complete, with dead letters
        assert f"resuming batch {job}" in resumed.stderr
        assert not server.errors

    written = rows(out)
    counts = Counter(row["id"] for row in written)
    assert len(written) == 1000 and set(counts) == set(ids) and max(counts.values()) == 1
    dead = rows(tmp_path / "out.failed.jsonl")
    assert sorted(row["id"] for row in dead) == sorted(ids[i] for i in poison)
    assert {row["error_class"] for row in dead} == {"invalid_request"}
    assert dead[0]["messages"][-1]["content"].startswith("poison")
    by_id = {row["id"]: row for row in written}
    assert all(by_id[ids[i]]["status"] == "failed" for i in poison)
    ok = [row for row in written if row["status"] == "ok"]
    assert len(ok) == 1000 - len(poison)
    assert all(row["text"] == f"echo say {row['id']}" and row["usage"]["output_tokens"] > 0 for row in ok)
    # Billing: an item the client had recorded is never sent again. Only replies the server sent in the
    # instant before the kill (the item was still in flight in the killed process) may be paid twice.
    paid = billing.times_by_prompt()
    assert set(paid) == {f"say {ids[i]}" for i in range(1000) if i not in poison}
    twice = {prompt: times for prompt, times in paid.items() if len(times) > 1}
    assert len(twice) <= CONCURRENCY, twice
    assert all(len(times) == 2 and killed_at - times[0] < 2.0 for times in twice.values()), twice


@pytest.mark.timeout(600)  # subprocesses on a shared 2-core machine
def test_first_ctrl_c_drains_and_prints_the_resume_command(tmp_path):
    billing = Billing()
    with FakeServer(default=Reply(billing.reply, latency=0.2)) as server:
        env = batch_env(tmp_path, server.openai_base_url)
        source = tmp_path / "prompts.txt"
        source.write_text("".join(f"line {i}\n" for i in range(60)))
        run = start(env, "batch", str(source), "--yes", "--concurrency", "4", "--ordered")
        wait_until(lambda: billing.count() >= 8, what="some replies")
        run.send_signal(signal.SIGINT)
        _, stderr = run.communicate(timeout=60)
        assert run.returncode == 130, stderr
        assert "stopping: in-flight requests may finish" in stderr
        job = only_job(env)
        assert f"resume with: chatapp batch --resume {job}" in stderr
        out = tmp_path / "prompts.out.jsonl"
        first_rows = rows(out)
        # --ordered: a gap-free prefix in input order; every in-flight request finished and was kept.
        assert [row["id"] for row in first_rows] == [str(i + 1) for i in range(len(first_rows))]
        server.default = Reply(billing.reply)  # the slow replies were only there to catch the run mid-way
        resumed = chatapp(env, "batch", "--resume", job)
        assert resumed.returncode == 0, resumed.stderr
    final = rows(out)
    assert [row["id"] for row in final] == [str(i + 1) for i in range(60)]
    assert all(row["text"] == f"echo line {int(row['id']) - 1}" for row in final)
    assert len(billing.paid) == 60  # the drained run lost nothing and paid for nothing twice


@pytest.mark.timeout(600)  # subprocesses on a shared 2-core machine
def test_estimate_needs_yes_when_piped_and_max_cost_refuses_before_sending(tmp_path, fake_server):
    env = batch_env(tmp_path, fake_server.openai_base_url)
    source = tmp_path / "prompts.csv"
    source.write_text("id,question\n" + "".join(f"r{i},what is {i}?\n" for i in range(50)))
    piped = chatapp(env, "batch", str(source), "--column", "question")
    assert piped.returncode == 2 and "pass --yes" in piped.stderr
    assert "50 items to send" in piped.stderr and "estimated cost: $" in piped.stderr
    costly = chatapp(env, "batch", str(source), "--column", "question", "--yes", "--max-cost", "0.000001")
    assert costly.returncode == 2 and "over --max-cost" in costly.stderr
    no_column = chatapp(env, "batch", str(source), "--yes")
    assert no_column.returncode == 2 and "no 'prompt' column" in no_column.stderr
    assert fake_server.requests == []
    timed = chatapp(env, "batch", str(source), "--column", "question", "--rpm", "600", "--max-tokens", "10")
    assert "estimated time: 5 s (bound by the configured rpm)" in timed.stderr
    assert "at most 10 output tokens each" in timed.stderr


@pytest.mark.timeout(600)  # subprocesses on a shared 2-core machine
def test_interactive_ask_starts_before_any_queued_batch_item(tmp_path):
    """A `chatapp ask` on the same provider while a batch runs: from the moment the ask waits, no queued
    batch item starts until the ask's request has reached the server."""
    with FakeServer(default=Reply(lambda r: f"echo {r.prompt}", latency=0.3)) as server:
        env = batch_env(tmp_path, server.openai_base_url)
        source = tmp_path / "prompts.txt"
        source.write_text("".join(f"batch item {i}\n" for i in range(400)))
        batch = start(env, "batch", str(source), "--yes", "--concurrency", "2")
        marks = tmp_path / "data" / "chatapp" / "interactive"
        mark_seen: list[float] = []

        def watch_marks() -> None:
            while not mark_seen and batch.poll() is None:
                if marks.is_dir() and any(marks.iterdir()):
                    mark_seen.append(time.monotonic())
                time.sleep(0.0005)

        try:
            server.wait_for_requests(4, timeout=60)  # the batch is running: 2 in flight, the rest queued
            watcher = threading.Thread(target=watch_marks, daemon=True)
            watcher.start()
            ask = chatapp(env, "ask", "interactive question")
            assert ask.returncode == 0, ask.stderr
            assert ask.stdout.strip() == "echo interactive question"
            watcher.join(5)
            assert batch.poll() is None  # the batch was still running throughout
        finally:
            batch.send_signal(signal.SIGINT)
            batch.communicate(timeout=60)
    log = server.requests
    [asked] = [r for r in log if r.prompt == "interactive question"]
    assert mark_seen, "the ask left no mark for the batch to see"
    # A batch request sent within GRACE of the mark was dispatched before it (in flight, not queued).
    overtaking = [(r.prompt, round(r.received - mark_seen[0], 3)) for r in log
                  if mark_seen[0] + GRACE < r.received < asked.received]
    assert overtaking == [], f"batch items started while the ask waited: {overtaking}"
    assert any(r.received > asked.received for r in log if r.prompt.startswith("batch item"))
    assert not (marks.exists() and list(marks.iterdir()))  # the mark is gone once the reply started


@pytest.mark.timeout(600)  # subprocesses on a shared 2-core machine
def test_status_lists_jobs_and_unknown_job_is_one_line(tmp_path, fake_server):
    env = batch_env(tmp_path, fake_server.openai_base_url)
    source = tmp_path / "p.txt"
    source.write_text("one\ntwo\n")
    done = chatapp(env, "batch", str(source), "--yes")
    assert done.returncode == 0, done.stderr
    job = only_job(env)
    status = chatapp(env, "batch", "status", job[:6])
    assert f"job {job} (live): done" in status.stdout and "2 done, 0 failed, 0 pending" in status.stdout
    unknown = chatapp(env, "batch", "status", "nope")
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1 and "Traceback" not in unknown.stderr
    again = chatapp(env, "batch", "--resume", "nope")
    assert again.returncode == 2 and "no job matches" in again.stderr
