"""Batch inputs, the sidecar job state, output written exactly once, and the cross-process turn marks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from chatapp.domain import Role
from chatapp.service.batch_input import InputError, detect_format, read_items
from chatapp.service.batch_output import OutputFiles
from chatapp.store.batch_jobs import BatchJobs, ItemResult, ItemState
from chatapp.store.interactive_marks import InteractiveMarks


def test_jsonl_items_prompt_messages_and_problems(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join([
        json.dumps({"id": "a", "prompt": "hello \ud800"}),
        json.dumps({"id": 7, "messages": [{"role": "system", "content": "be brief"},
                                          {"role": "user", "content": "hi"}]}),
        "{broken",
        json.dumps({"id": "c"}),
        json.dumps({"id": "d", "messages": [{"role": "assistant", "content": "x"}]}),
        "",
        json.dumps(["not", "an", "object"]),
    ]) + "\n")
    items = list(read_items(source, detect_format(source)))
    assert [(i.seq, i.item_id) for i in items] == [(0, "a"), (1, "7"), (2, "3"), (3, "c"), (4, "d"), (5, "6")]
    assert items[0].messages[0].content == "hello \ufffd"  # storable: a lone surrogate never reaches SQLite
    assert items[1].system == "be brief" and items[1].messages[0].role is Role.USER
    assert [i.problem is None for i in items] == [True, True, False, False, False, False]
    assert "not JSON" in items[2].problem and "prompt" in items[3].problem and "user" in items[4].problem


def test_csv_column_and_plain_lines(tmp_path):
    source = tmp_path / "in.csv"
    source.write_text('id,question\nr1,"multi\nline"\nr2,\n')
    items = list(read_items(source, "csv", column="question"))
    assert [(i.item_id, i.text, i.problem) for i in items] == [("r1", "multi\nline", None),
                                                              ("r2", "", "the prompt is empty")]
    with pytest.raises(InputError, match="no 'prompt' column"):
        list(read_items(source, "csv"))
    lines = tmp_path / "in.txt"
    lines.write_text("first\n\nsecond\r\n")
    assert [(i.item_id, i.text) for i in read_items(lines, "lines")] == [("1", "first"), ("2", "second")]
    with pytest.raises(InputError, match="cannot read"):
        list(read_items(tmp_path / "missing.txt", "lines"))


def _job(jobs: BatchJobs, tmp_path, total: int, job_id: str = "bjob"):
    return jobs.create_job(job_id, mode="live", input_path=tmp_path / "in", output_path=tmp_path / "out.jsonl",
                           dead_letter_path=tmp_path / "dead.jsonl", options={}, total=total)


def _done(seq: int) -> ItemResult:
    return ItemResult(seq, f"id{seq}", ItemState.DONE, text=f"reply {seq}", input_tokens=1, output_tokens=2)


def test_output_is_written_once_even_when_a_run_dies_between_writing_and_recording(tmp_path):
    jobs = BatchJobs.open(tmp_path / "batches.db")
    job = _job(jobs, tmp_path, 4)
    files = OutputFiles(jobs, job, ordered=False)
    files.repair()
    jobs.record(job.id, _done(0))
    assert files.flush() == 1
    jobs.record(job.id, _done(1))
    # A run that appended row 1 and died before marking it written (plus half a line).
    with open(tmp_path / "out.jsonl", "a") as handle:
        handle.write(json.dumps(_done(1).output_row()) + "\n{\"id\": \"id2\", \"sta")
    reopened = OutputFiles(jobs, jobs.job(job.id), ordered=False)
    reopened.repair()
    jobs.record(job.id, ItemResult(2, "id2", ItemState.FAILED, text='[{"role": "user", "content": "p"}]',
                                   error_class="invalid_request", error="no"))
    assert reopened.flush() == 2
    written = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [row["id"] for row in written] == ["id0", "id1", "id2"]
    assert written[2]["text"] is None and written[2]["error"] == {"class": "invalid_request", "message": "no"}
    [dead] = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert dead == {"id": "id2", "line": 3, "error_class": "invalid_request", "error": "no",
                    "messages": [{"role": "user", "content": "p"}]}
    assert oct(os.stat(tmp_path / "out.jsonl").st_mode & 0o777) == "0o600"
    assert oct(os.stat(tmp_path / "batches.db").st_mode & 0o777) == "0o600"


def test_ordered_output_waits_for_the_gap_and_inflight_rows_go_back_to_pending(tmp_path):
    jobs = BatchJobs.open(tmp_path / "batches.db")
    job = _job(jobs, tmp_path, 3)
    files = OutputFiles(jobs, job, ordered=True)
    files.repair()
    jobs.mark_inflight(job.id, 0, "id0")
    jobs.record(job.id, _done(2))
    jobs.record(job.id, _done(1))
    assert files.flush() == 0  # item 0 is still in flight
    assert list(jobs.started_seqs(job.id)) == [0, 1, 2]
    assert jobs.release_unfinished(job.id) == 1
    assert list(jobs.started_seqs(job.id)) == [1, 2]
    jobs.record(job.id, _done(0))
    assert files.flush() == 3
    assert [json.loads(line)["id"] for line in (tmp_path / "out.jsonl").read_text().splitlines()] == [
        "id0", "id1", "id2"]
    record = jobs.job("bj")  # a unique prefix will do
    assert record is not None and (record.done, record.failed, record.total) == (3, 0, 3)


def test_interactive_marks_are_seen_from_other_processes_and_dead_ones_are_cleared(tmp_path):
    marks = InteractiveMarks(tmp_path / "interactive")
    assert not marks.waiting("p")
    with marks.hold("p"):
        assert not marks.waiting("p")  # this process's own turns: its scheduler orders them
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from chatapp.store.interactive_marks import InteractiveMarks; "
         f"m = InteractiveMarks(Path({str(tmp_path / 'interactive')!r})).hold('p'); print('held', flush=True); "
         "sys.stdin.read()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert marks.waiting("p") and not marks.waiting("other")
    finally:
        holder.kill()  # dies without releasing its mark
        holder.wait()
    assert not marks.waiting("p")
    assert list((tmp_path / "interactive").iterdir()) == []  # the dead process's mark was removed
