"""Helpers for the Pilot-driven TUI tests (tests/tui/ is on sys.path: ``from tui_helpers import wait_for``)."""

from __future__ import annotations

import asyncio

from chatapp.tui.widgets.prompt import PromptInput


async def wait_for(condition, pilot, timeout=10.0, interval=0.05):
    """Let the app run until `condition()` is true; AssertionError after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(interval)


async def send_prompt(pilot, text):
    """Put `text` in the current screen's prompt (replacing what is there) and press Enter."""
    prompt = pilot.app.screen.query_one(PromptInput)
    prompt.focus()
    prompt.load_text(text)
    await pilot.press("enter")


async def wait_for_reply(pilot, timeout=10.0):
    """Wait until the chat screen's reply (started by `send_prompt`) has ended, however it ended."""
    await wait_for(lambda: not pilot.app.screen.replying, pilot, timeout)


def footer_text(message) -> str:
    """What a message's note line says (status, error)."""
    return message.note
