"""SIGKILL at random moments during 20 streamed replies (issue 13): after each kill the database passes
`integrity_check`, and every acknowledged prompt is stored once, in order.

A driver process imports chatapp and the SDK once, then forks one writer per reply (a fresh process each
time, killed with SIGKILL), so 20 kills cost seconds rather than 20 interpreter start-ups.
"""

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

from envs import provider_config
from fakeserver import Reply

_DRIVER = r"""
import asyncio, os, sys
from chatapp.config import load_settings
from chatapp.domain import TextDelta, TurnStarted
from chatapp.service import ChatService
import openai, chatapp.engine, chatapp.service.turn, chatapp.service.context_keeper  # loaded before forking

async def warm_up():  # one whole turn first, so every lazy import and the token encoding are loaded
    service = ChatService.open(load_settings())
    async for _ in service.send(None, "warm up"):
        pass
    await service.aclose()

asyncio.run(warm_up())

async def turn(conversation, text):
    service = ChatService.open(load_settings())
    async for event in service.send(conversation, text):
        if isinstance(event, TurnStarted):
            os.write(1, f"ack {event.conversation_id}\n".encode())
        elif isinstance(event, TextDelta):
            os.write(1, b"delta\n")
    await service.aclose()

for line in sys.stdin:
    conversation, text = line.split(maxsplit=1)
    pid = os.fork()
    if pid == 0:
        asyncio.run(turn(None if conversation == "-" else conversation, text.strip()))
        os._exit(0)
    os.write(1, f"pid {pid}\n".encode())
    os.waitpid(pid, 0)
    os.write(1, b"reaped\n")
"""


def test_sigkill_during_replies_keeps_the_database_whole(isolated_env, fake_server):
    seed = int(os.environ.get("KILL_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    provider_config(isolated_env, fake_server.openai_base_url, before="[retry]\ninteractive_deadline = 20\n")
    fake_server.default = Reply("tick " * 80, delay=0.002)
    driver = subprocess.Popen([sys.executable, "-c", _DRIVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, bufsize=1, env=os.environ.copy())
    conversation = "-"
    acknowledged: list[str] = []
    try:
        for n in range(20):
            prompt = f"prompt number {n}"
            driver.stdin.write(f"{conversation} {prompt}\n")
            driver.stdin.flush()
            pid = int(driver.stdout.readline().split()[1])
            wait_deltas = rng.choice([0, 0, 1, 5, 30, 100])
            line = driver.stdout.readline()
            if line.startswith("ack"):
                conversation = line.split()[1]
                acknowledged.append(prompt)
                for _ in range(wait_deltas):
                    line = driver.stdout.readline()
                    if line.startswith("reaped"):
                        break
            if not line.startswith("reaped"):
                time.sleep(rng.random() * 0.02)
                os.kill(pid, signal.SIGKILL)
                while not driver.stdout.readline().startswith("reaped"):
                    pass
            with sqlite3.connect(isolated_env.database) as db:
                assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok", f"seed {seed}"
                prompts = [row[0] for row in db.execute(
                    "SELECT content FROM messages WHERE role = 'user' ORDER BY created, seq")]
            assert len(prompts) == len(set(prompts)), f"seed {seed}: a prompt stored twice"
            stored_in_order = [p for p in prompts if p in acknowledged]
            assert stored_in_order == acknowledged, f"seed {seed}: {acknowledged} vs {prompts}"
    finally:
        driver.kill()
        driver.wait()
    with sqlite3.connect(isolated_env.database) as db:
        statuses = {row[0] for row in db.execute("SELECT status FROM messages WHERE role = 'assistant'")}
    assert statuses <= {"streaming", "complete", "incomplete", "cancelled"}, f"seed {seed}"
