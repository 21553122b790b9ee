"""`--mode provider`: OpenAI Batch (files + batches) and Anthropic Message Batches through the real SDKs
against the scripted server: submit in chunks, poll, fetch, map back to ids. A restart polls the batches
already created, and finds a batch the provider created in the instant before the process died (or
before an answer was lost), instead of submitting (and paying for) it again."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime

import pytest
from batch_helpers import batch_env, chatapp, only_job, rows, start, wait_until, write_jsonl
from fakeserver import Error, FakeServer, Reply

from chatapp.config import ProviderSpec, load_settings
from chatapp.providers.anthropic_batch import AnthropicBatch
from chatapp.providers.openai_batch import OpenAIBatch
from chatapp.service import ChatService
from chatapp.service.batch_desk import BatchPlan

POLL = ("--poll-interval", "0.05")


@pytest.mark.timeout(600)  # subprocesses on a shared 2-core machine
def test_sigkill_right_after_a_create_then_resume_creates_nothing_twice(tmp_path):
    """The whole command: `--mode provider`, SIGKILL in the instant after the provider created the second
    batch, `--resume` (Ctrl+C while the provider works), `--resume` again, `batch status`. Anthropic's
    adapter runs the same path in-process below (its SDK costs seconds to import in each subprocess)."""
    kind = "openai"
    with FakeServer(default=Reply(lambda r: f"echo {r.prompt}")) as server:
        server.script(Error(400, "this prompt is rejected"), repeat=10**6, match=lambda r: "poison" in r.prompt)
        desk = server.batch_api
        desk.polls_before_done = 10**6  # the provider takes its time
        base_url = server.openai_base_url if kind == "openai" else server.anthropic_base_url
        env = batch_env(tmp_path, base_url, kind=kind)
        source = tmp_path / "prompts.jsonl"
        ids = write_jsonl(source, 25, poison={4})
        out = tmp_path / "out.jsonl"
        running: list[subprocess.Popen[str]] = []
        created: list[str] = []

        def kill_at_the_second(batch_id: str) -> None:
            created.append(batch_id)
            if len(created) == 2:  # the provider has it; the client never hears its id
                running[0].kill()
                running[0].wait()

        desk.after_create = kill_at_the_second
        running.append(start(env, "batch", str(source), "-o", str(out), "--yes", "--ordered", "--mode", "provider",
                             "--chunk-size", "10", *POLL))
        running[0].communicate(timeout=300)
        assert running[0].returncode == -signal.SIGKILL and len(created) == 2
        desk.after_create = created.append
        job = only_job(env)

        # Resumed: the lost batch is adopted, the third created; Ctrl+C while the provider works.
        second = start(env, "batch", "--resume", job, *POLL)
        wait_until(lambda: second.poll() is not None or len(created) == 3, 120, "the third batch submitted")
        seen = len(server.requests)
        wait_until(lambda: second.poll() is not None or any(r.method == "GET" for r in server.requests[seen:]),
                   120, "polling")
        assert second.poll() is None, second.communicate()
        second.send_signal(signal.SIGINT)
        _, stderr = second.communicate(timeout=60)
        assert second.returncode == 130, stderr
        assert f"resume with: chatapp batch --resume {job}" in stderr

        desk.polls_before_done = 0
        resumed = chatapp(env, "batch", "--resume", job, *POLL)
        assert resumed.returncode == 1, resumed.stderr  # complete, one dead letter
        assert len(created) == 3  # the server saw exactly one create per chunk
        assert not server.errors
        billed = Counter(desk.processed)
    assert sorted(billed) == sorted(f"item-{i}" for i in range(25) if i != 4) and max(billed.values()) == 1
    written = rows(out)
    assert [row["id"] for row in written] == ids  # --ordered
    assert all(row["text"] == f"echo say {row['id']}" and row["status"] == "ok" for row in written if row["id"] != "q4")
    assert written[4]["status"] == "failed" and written[4]["error"]["class"] == "invalid_request"
    [dead] = rows(tmp_path / "out.failed.jsonl")
    assert dead["id"] == "q4" and dead["error_class"] == "invalid_request"
    assert all(row["usage"]["output_tokens"] > 0 and row["cost"] > 0 for row in written if row["status"] == "ok")
    status = chatapp(env, "batch", "status", job)
    assert f"job {job} (provider): done" in status.stdout


@pytest.mark.parametrize(("kind", "was_created"), [("openai", True), ("openai", False), ("anthropic", True),
                                                  ("anthropic", False)])
async def test_a_create_whose_answer_was_lost_is_found_or_sent_again(isolated_env, fake_server, monkeypatch,
                                                                     tmp_path, kind, was_created):
    """The connection drops right after the second create: whether the provider made that batch or not,
    the resume ends with each item submitted and billed exactly once, results mapped back to their ids."""
    prefix = kind.upper()
    monkeypatch.setenv(f"{prefix}_API_KEY", "sk-batch")
    monkeypatch.setenv(f"{prefix}_BASE_URL",
                       fake_server.openai_base_url if kind == "openai" else fake_server.anthropic_base_url)
    fake_server.default = Reply(lambda r: f"echo {r.prompt}")
    fake_server.script(Error(400, "this prompt is rejected"), repeat=10**6, match=lambda r: "poison" in r.prompt)
    desk = fake_server.batch_api
    desk.polls_before_done = 0
    source = tmp_path / "p.jsonl"
    ids = write_jsonl(source, 12, poison={4})
    created: list[str] = []

    def lose_the_second_answer(batch_id: str) -> None:
        created.append(batch_id)
        if len(created) == 2:
            if not was_created:
                del desk.batches[batch_id]
            raise ConnectionResetError("the answer to the create is lost")  # the server drops the connection

    desk.after_create = lose_the_second_answer
    service = ChatService.open(load_settings())
    try:
        first = service.start_batch(BatchPlan(input_path=source, mode="provider", chunk_size=5), 12)
        first.poll_initial = 0.01  # type: ignore[union-attr]
        outcome = await asyncio.wait_for(first.run(), 60)
        assert not outcome.complete and outcome.progress.finished == 0
        second = service.resume_batch(first.job.id)
        second.poll_initial = 0.01  # type: ignore[union-attr]
        outcome = await asyncio.wait_for(second.run(), 60)
        assert outcome.complete and (outcome.progress.done, outcome.progress.failed) == (11, 1)
    finally:
        await service.aclose()
    assert len(created) == (3 if was_created else 4)
    creates = [r for r in fake_server.requests if r.method == "POST" and r.path.endswith("/batches")]
    assert len(creates) == len(created)
    assert sorted(desk.processed) == sorted(f"item-{i}" for i in range(12) if i != 4)
    written = {row["id"]: row for row in rows(tmp_path / "p.out.jsonl")}
    assert sorted(written) == sorted(ids)
    assert all(written[i]["text"] == f"echo say {i}" and written[i]["usage"]["output_tokens"] > 0
               and written[i]["cost"] > 0 for i in ids if i != "q4")
    assert written["q4"]["error"]["class"] == "invalid_request"


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_find_pages_through_the_providers_list(fake_server, kind):
    """The batch to find is older than a page of newer ones (the list is newest first, 100 a page); ones
    already recorded, of another size, or older than the intent by more than the clock skew are not it."""
    desk = fake_server.batch_api
    now = time.time()

    def add(batch_id: str, created: float, size: int, tag: str = "") -> None:
        if kind == "openai":
            desk.batches[batch_id] = {"id": batch_id, "object": "batch", "endpoint": "/v1/chat/completions",
                                      "input_file_id": "file-x", "completion_window": "24h", "status": "in_progress",
                                      "created_at": int(created), "metadata": {"chatapp_tag": tag},
                                      "request_counts": {"total": size, "completed": 0, "failed": 0}}
        else:
            stamp = datetime.fromtimestamp(created, UTC).isoformat()
            desk.batches[batch_id] = {"id": batch_id, "type": "message_batch", "processing_status": "in_progress",
                                      "request_counts": {"processing": size, "succeeded": 0, "errored": 0,
                                                         "canceled": 0, "expired": 0},
                                      "created_at": stamp, "expires_at": stamp, "ended_at": None,
                                      "cancel_initiated_at": None, "archived_at": None, "results_url": None}

    add("ancient", now - 5000, 7, "t-mine")  # beyond the skew: the scan stops before it
    add("recorded", now - 2, 7, "t-mine")
    add("mine", now - 1, 7, "t-mine")
    for n in range(120):
        add(f"newer-{n:03d}", now + n / 1000, 3, f"t-{n}")
    spec = ProviderSpec(name="p", kind=kind, model="m", base_url=fake_server.openai_base_url if kind == "openai"
                        else fake_server.anthropic_base_url)  # type: ignore[arg-type]
    api = OpenAIBatch(spec, "k") if kind == "openai" else AnthropicBatch(spec, "k")
    try:
        assert await api.find("t-mine", count=7, since=now - 1, exclude={"recorded"}) == "mine"
        assert await api.find("t-none", count=5, since=now, exclude=set()) is None
    finally:
        await api.aclose()
    lists = [r for r in fake_server.requests if r.method == "GET"]
    assert len(lists) >= 4 and any("after" in r.query for r in lists)  # two pages, twice
