"""A model the table does not know gets its window from llama.cpp's own `/props` (issue 18, item 5)."""

from llama_fixtures import MODEL

from chatapp.config import load_settings
from chatapp.model_facts import lookup
from chatapp.providers.window_discovery import discover_context_window
from chatapp.service import ChatService


async def test_llamacpp_props_reports_the_window(llama):
    assert await discover_context_window(llama.openai_base_url, MODEL, llama.api_key) == 4096


async def test_the_service_uses_the_window_the_server_reports(llama, isolated_env):
    model = "my-own-gguf"  # llama.cpp serves its one model under any name; the table knows gemma-3-270m
    assert not lookup(model).known
    isolated_env.config_dir.mkdir(parents=True)
    isolated_env.config_file.write_text(
        f'[providers.local]\nkind = "openai"\nbase_url = "{llama.openai_base_url}"\n'
        f'api_key = "{llama.api_key}"\nmodel = "{model}"\n'
    )
    service = ChatService.open(load_settings())
    try:
        gauge = await service.gauge(None, "local")
        assert gauge.window == 4096  # not the 8,192-token guess
    finally:
        await service.aclose()
