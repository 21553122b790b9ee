"""The model picker against a real llama.cpp server: found on a probed port, and configured with its key.

Discovery needs a server that, like a user's `llama-server`, takes no key: the packaged model is run by
chatapp's own helper process with no key, on a free port, and the probe list points at it.
"""

import json
import subprocess
import sys

import pytest
from llama_fixtures import MODEL

from chatapp.config import load_settings
from chatapp.providers.discovery import probe_server
from chatapp.service import ChatService
from chatapp.tui.app import ChatApp
from chatapp.tui.screens.model_picker import ModelPicker, option_id


@pytest.fixture(scope="module")
def keyless_llama(llama_paths):
    """The root URL of a llama.cpp server (the packaged model) that answers without a key."""
    from chatapp.providers.embedded_model import embedded_model_path

    config = {"model_path": str(embedded_model_path(llama_paths)), "n_ctx": 1024, "api_key": None,
              "alias": MODEL, "use_jinja": False}
    proc = subprocess.Popen([sys.executable, "-m", "chatapp.providers.llamacpp_host"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        proc.stdin.write(json.dumps(config) + "\n")
        proc.stdin.flush()
        reply = json.loads(proc.stdout.readline())
        assert reply["ok"], reply
        yield reply["url"]
    finally:
        proc.stdin.close()  # the helper stops its server when its stdin closes
        proc.wait(30)


def write_config(paths, text):
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text(text)


async def wait_for(condition, pilot, timeout=20.0):
    import asyncio

    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await pilot.pause(0.05)


def test_a_probe_finds_the_server_and_its_models(keyless_llama):
    found = probe_server(f"{keyless_llama}/v1")
    assert found is not None and MODEL in found.models
    assert found.name == f"local:{keyless_llama.rsplit(':', 1)[1]}"


def test_a_server_that_wants_a_key_is_not_offered(llama):
    assert probe_server(llama.openai_base_url) is None


def test_a_probe_of_a_closed_port_finds_nothing(unused_tcp_port):
    assert probe_server(f"http://127.0.0.1:{unused_tcp_port}/v1") is None


async def test_the_picker_offers_a_found_server_with_the_models_it_reports(keyless_llama, isolated_env,
                                                                          fake_server):
    write_config(isolated_env, f'local_servers = ["{keyless_llama}/v1"]\n'
                 f'[providers.p]\nkind = "openai"\nbase_url = "{fake_server.openai_base_url}"\napi_key = "k"\n'
                 'model = "gpt-4o-mini"\n')
    service = ChatService.open(load_settings())
    name = f"local:{keyless_llama.rsplit(':', 1)[1]}"
    async with ChatApp(service, service.target_for(None, "p")).run_test(size=(110, 40)) as pilot:
        await pilot.press("f3")
        await wait_for(lambda: isinstance(pilot.app.screen, ModelPicker), pilot)
        picker = pilot.app.screen
        wanted = option_id("model", name, MODEL)
        await wait_for(lambda: wanted in [o.id for o in picker.option_list.options], pilot)
        await pilot.press(*"local gemma")
        await wait_for(lambda: picker.option_list.highlighted_option is not None
                       and picker.option_list.highlighted_option.id == wanted, pilot)
        await pilot.press("enter")
        await wait_for(lambda: not isinstance(pilot.app.screen, ModelPicker), pilot)
        assert (pilot.app.screen.target.provider, pilot.app.screen.target.model) == (name, MODEL)
        [entry] = [e for e in service.model_entries() if e.name == name]
        assert entry.state == "found"


async def test_a_configured_server_lists_its_models_through_its_own_endpoint(llama, isolated_env):
    write_config(isolated_env, 'local_servers = []\n'
                 f'[providers.mine]\nkind = "openai"\nbase_url = "{llama.openai_base_url}"\n'
                 f'api_key = "{llama.api_key}"\nmodel = "whatever"\n')
    service = ChatService.open(load_settings())
    try:
        service.refresh_models()
        await service.wait_models()
        [entry] = [e for e in service.model_entries() if e.name == "mine"]
        assert entry.listing == "listed" and MODEL in entry.models
    finally:
        await service.aclose()
