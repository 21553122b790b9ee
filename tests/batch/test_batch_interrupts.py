"""Stopping a live batch in-process: the first stop drains, the second cancels; nothing is lost."""

from __future__ import annotations

import asyncio
import json

from fakeserver import Reply

from chatapp.config import load_settings
from chatapp.service import ChatService
from chatapp.service.batch_desk import BatchPlan


async def test_second_interrupt_cancels_in_flight_items_which_stay_pending(isolated_env, fake_server, monkeypatch,
                                                                          tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-batch")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_server.openai_base_url)
    fake_server.default = Reply(lambda r: f"echo {r.prompt}", latency=60)  # in flight until cancelled
    source = tmp_path / "p.txt"
    source.write_text("".join(f"line {i}\n" for i in range(10)))
    service = ChatService.open(load_settings())
    try:
        first = service.start_batch(BatchPlan(input_path=source, concurrency=3, drain_timeout=60), 10)
        task = asyncio.create_task(first.run())
        await asyncio.to_thread(fake_server.wait_for_requests, 3, 60)
        first.stop()
        await asyncio.sleep(0.2)
        assert not task.done() and first.progress.state == "draining"  # waiting for the in-flight three
        first.cancel()
        outcome = await asyncio.wait_for(task, 30)
        assert not outcome.complete and outcome.progress.finished == 0
        job = service.batch_job(first.job.id)
        assert job is not None and job.status.value == "stopped" and (job.done, job.failed) == (0, 0)
        assert len(fake_server.requests) == 3  # nothing new was started after the stop

        fake_server.default = Reply(lambda r: f"echo {r.prompt}")
        second = service.resume_batch(first.job.id[:5])
        outcome = await asyncio.wait_for(second.run(), 60)
        assert outcome.complete and outcome.progress.done == 10
    finally:
        await service.aclose()
    written = [json.loads(line) for line in (tmp_path / "p.out.jsonl").read_text().splitlines()]
    assert sorted(int(row["id"]) for row in written) == list(range(1, 11))
    assert {row["text"] for row in written} == {f"echo line {i}" for i in range(10)}
