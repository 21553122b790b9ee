"""`--mode provider`: OpenAI Batch (files + batches) and Anthropic Message Batches through the real SDKs
against the scripted server: submit in chunks, poll, fetch, map back to ids. A restart polls the batches
already created, and finds a batch the provider created in the instant before the process died (or
before an answer was lost), instead of submitting (and paying for) it again."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections import Counter

import pytest
from batch_helpers import batch_env, chatapp, only_job, rows, start, wait_until, write_jsonl
from fakeserver import Error, FakeServer, Reply

from chatapp.config import load_settings
from chatapp.service import ChatService
from chatapp.service.batch_desk import BatchPlan

POLL = ("--poll-interval", "0.05")


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
@pytest.mark.timeout(600)  # subprocesses on a shared 2-core machine
def test_sigkill_right_after_a_create_then_resume_creates_nothing_twice(tmp_path, kind):
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


@pytest.mark.parametrize("was_created", [True, False], ids=["created", "never-created"])
async def test_a_create_whose_answer_was_lost_is_found_or_sent_again(isolated_env, fake_server, monkeypatch,
                                                                     tmp_path, was_created):
    """The connection drops after the create request: whether the provider made the batch or not, the
    resume ends with each item submitted and billed exactly once."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-batch")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_server.openai_base_url)
    fake_server.default = Reply(lambda r: f"echo {r.prompt}")
    desk = fake_server.batch_api
    desk.polls_before_done = 0
    source = tmp_path / "p.txt"
    source.write_text("".join(f"line {i}\n" for i in range(5)))

    def lose_the_answer(batch_id: str) -> None:
        desk.after_create = None
        if not was_created:
            del desk.batches[batch_id]
        raise ConnectionResetError("the answer to the create is lost")  # the server drops the connection

    desk.after_create = lose_the_answer
    service = ChatService.open(load_settings())
    try:
        first = service.start_batch(BatchPlan(input_path=source, mode="provider", chunk_size=10), 5)
        outcome = await asyncio.wait_for(first.run(), 60)
        assert not outcome.complete and outcome.progress.finished == 0
        second = service.resume_batch(first.job.id)
        second.poll_initial = 0.01  # type: ignore[union-attr]
        outcome = await asyncio.wait_for(second.run(), 60)
        assert outcome.complete and outcome.progress.done == 5
    finally:
        await service.aclose()
    creates = [r for r in fake_server.requests if r.method == "POST" and r.path.endswith("/batches")]
    assert len(creates) == (1 if was_created else 2)
    assert sorted(desk.processed) == [f"item-{i}" for i in range(5)]
    written = [row["text"] for row in rows(tmp_path / "p.out.jsonl")]
    assert sorted(written) == [f"echo line {i}" for i in range(5)]
