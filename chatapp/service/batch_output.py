"""Writing a job's OUTPUT and dead-letter files from its committed results, exactly once per item.

The sidecar database holds each result before any file sees it (see chatapp.store.batch_jobs). A write
pass appends the unwritten results and then records, in one transaction, which rows were written and
how long each file now is. `repair()` cuts a file back to that recorded length first, so a row appended
by a run that died before recording it is not duplicated when the pass repeats.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import IO, Any

from chatapp.store.batch_jobs import BatchJobs, ItemResult, ItemState, JobRecord, WriteMark, private_file


class OutputFiles:
    def __init__(self, jobs: BatchJobs, job: JobRecord, *, ordered: bool) -> None:
        self._jobs = jobs
        self._job_id = job.id
        self._ordered = ordered
        self.output_path = job.output_path
        self.dead_letter_path = job.dead_letter_path
        self._mark = WriteMark(job.out_offset, job.dead_offset, job.written_through)
        self.dead_letters = 0

    def repair(self) -> None:
        """Create the files, or cut each back to the length last recorded in the database."""
        for path, offset in ((self.output_path, self._mark.out_offset),
                             (self.dead_letter_path, self._mark.dead_offset)):
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("ab") as handle:
                if handle.tell() > offset:
                    handle.truncate(offset)
            private_file(path)

    def flush(self) -> int:
        """Append every result that may be written now, a page at a time; returns how many rows."""
        total = 0
        while written := self._write_page():
            total += written
        return total

    def _write_page(self) -> int:
        from_seq = self._mark.written_through if self._ordered else None
        results = self._jobs.unwritten(self._job_id, from_seq=from_seq)
        if not results:
            return 0
        with self.output_path.open("ab") as out, self.dead_letter_path.open("ab") as dead:
            for result in results:
                _append(out, result.output_row())
                if result.state is ItemState.FAILED:
                    _append(dead, _dead_row(result))
                    self.dead_letters += 1
            out.flush()
            dead.flush()
            os.fsync(out.fileno())
            os.fsync(dead.fileno())
            mark = WriteMark(out.tell(), dead.tell(), max(self._mark.written_through, results[-1].seq + 1),
                             [r.seq for r in results])
        self._jobs.mark_written(self._job_id, mark)
        self._mark = mark
        return len(results)


def _append(handle: IO[bytes], row: dict[str, Any]) -> None:
    handle.write(json.dumps(row, ensure_ascii=False).encode("utf-8", "surrogatepass") + b"\n")


def _dead_row(result: ItemResult) -> dict[str, Any]:
    """What failed and why, with the request itself so the file can be fed back as a batch input."""
    row: dict[str, Any] = {"id": result.item_id, "line": result.seq + 1, "error_class": result.error_class,
                           "error": result.error}
    if result.text:
        with contextlib.suppress(ValueError):
            row["messages"] = json.loads(result.text)
    return row


def default_paths(input_path: Path, output: Path | None) -> tuple[Path, Path]:
    """OUTPUT defaults to INPUT's name with `.out.jsonl`; dead letters sit beside it."""
    out = output or input_path.with_name(f"{input_path.stem}.out.jsonl")
    return out, out.with_name(f"{out.stem}.failed.jsonl")
