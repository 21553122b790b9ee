"""What checking and salvaging a damaged database cost: `chatapp doctor` (PRAGMA quick_check) and
`chatapp doctor --salvage`, whole processes, on a database with one leaf page of the messages table
overwritten.

    python tests/benchmarks/salvage.py [--conversations 2000] [--per-conversation 10] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def build(data_home: Path, conversations: int, per_conversation: int) -> Path:
    os.environ["XDG_DATA_HOME"] = str(data_home)
    from chatapp.config import Paths
    from chatapp.domain import MessageStatus, Role
    from chatapp.store.conversations import Store

    database = Paths.from_platform().database
    store = Store.open(database)
    for i in range(conversations):
        conversation = store.create_conversation("p", "m", title=f"conversation {i}")
        for j in range(per_conversation):
            store.add_message(conversation.id, Role.USER if j % 2 == 0 else Role.ASSISTANT,
                              f"message {i}.{j} " + "lorem ipsum dolor " * 40, MessageStatus.COMPLETE)
    store.close()
    db = sqlite3.connect(database)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    leaves = [row[0] for row in db.execute(
        "SELECT pageno FROM dbstat WHERE name = 'messages' AND pagetype = 'leaf' ORDER BY pageno")]
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    with open(database, "r+b") as f:
        f.seek((leaves[len(leaves) // 2] - 1) * page_size)
        f.write(b"\xa5" * page_size)
    return database


def timed(env: dict[str, str], *args: str) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "chatapp", *args], env=env, capture_output=True, text=True,
                            check=False)
    return time.perf_counter() - started, result.stdout.splitlines()[0] if result.stdout else result.stderr


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--per-conversation", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        original = Path(home) / "original"
        database = build(original, args.conversations, args.per_conversation)
        size = database.stat().st_size
        doctor, salvage = [], []
        line = ""
        for _ in range(args.runs):
            data = Path(home) / "data"
            shutil.rmtree(data, ignore_errors=True)
            shutil.copytree(original, data)
            env = {**os.environ, "XDG_DATA_HOME": str(data), "XDG_CONFIG_HOME": f"{home}/config",
                   "XDG_CACHE_HOME": f"{home}/cache"}
            doctor.append(timed(env, "doctor")[0])
            seconds, line = timed(env, "doctor", "--salvage")
            salvage.append(seconds)
    print(f"{args.conversations * args.per_conversation:,} messages, {size / 1e6:.1f} MB: "
          f"doctor (quick_check) median {statistics.median(doctor):.2f} s, "
          f"doctor --salvage median {statistics.median(salvage):.2f} s over {args.runs} runs; {line}")


if __name__ == "__main__":
    main()
