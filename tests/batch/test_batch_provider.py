"""`--mode provider`: OpenAI Batch (files + batches) and Anthropic Message Batches through the real SDKs
against the scripted server: submit in chunks, poll, fetch, map back to ids; a restart resumes polling
the batches already created instead of submitting (and paying for) them again."""

from __future__ import annotations

import signal
from collections import Counter

import pytest
from batch_helpers import batch_env, chatapp, only_job, rows, start, wait_until, write_jsonl
from fakeserver import Error, FakeServer, Reply


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
@pytest.mark.timeout(600)  # subprocesses on a shared 2-core machine
def test_provider_batch_round_trip_with_a_restart_while_polling(tmp_path, kind):
    with FakeServer(default=Reply(lambda r: f"echo {r.prompt}")) as server:
        server.script(Error(400, "this prompt is rejected"), repeat=10**6, match=lambda r: "poison" in r.prompt)
        server.batch_api.polls_before_done = 10**6  # the provider takes its time
        base_url = server.openai_base_url if kind == "openai" else server.anthropic_base_url
        env = batch_env(tmp_path, base_url, kind=kind)
        source = tmp_path / "prompts.jsonl"
        ids = write_jsonl(source, 25, poison={4})
        out = tmp_path / "out.jsonl"
        args = ("--mode", "provider", "--chunk-size", "10", "--poll-interval", "0.05")
        first = start(env, "batch", str(source), "-o", str(out), "--yes", "--ordered", *args)

        def created() -> list[object]:
            return [r for r in server.requests if r.method == "POST" and r.path.endswith("batches")]

        wait_until(lambda: first.poll() is not None or (
            len(created()) == 3 and any(r.method == "GET" for r in server.requests)),
            what="three batches submitted and polled")
        assert first.poll() is None, first.communicate()
        first.send_signal(signal.SIGINT)
        _, stderr = first.communicate(timeout=60)
        assert first.returncode == 130, stderr
        job = only_job(env)
        assert f"resume with: chatapp batch --resume {job}" in stderr
        creates = created()
        server.batch_api.polls_before_done = 0
        resumed = chatapp(env, "batch", "--resume", job, *args[4:])
        assert resumed.returncode == 1, resumed.stderr  # complete, one dead letter
        assert len(created()) == len(creates) == 3  # polled again, never submitted again
        assert not server.errors
        billed = Counter(server.batch_api.processed)
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
