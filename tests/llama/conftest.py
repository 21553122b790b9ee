"""One real llama.cpp server (the packaged Gemma 3 270M) shared by every test that needs one.

Loading costs ~1.5 s and the model is assembled once per session (~1 s), so the server is
session-scoped; tests must leave it idle (cancelled streams are stopped by llama.cpp at once).
Other suites can use it as a real third-party server speaking both wire formats:

    def test_my_adapter(llama):
        client = openai.AsyncOpenAI(base_url=llama.openai_base_url, api_key=llama.api_key, max_retries=0)
        client = anthropic.AsyncAnthropic(base_url=llama.anthropic_base_url, api_key=llama.api_key, max_retries=0)

Tests in tests/llama/ get the fixture from this conftest; adapter tests that want the real server
belong there too (tests/llama/test_llama_<adapter>.py).
The model is a small *base* model: assert structure (text arrives, usage counts, finish reasons),
never wording. Tests are skipped when the `local` extra is not installed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from llama_fixtures import HAVE_LOCAL, MODEL, LlamaFixture  # tests/llama/ is on sys.path (no __init__.py)

from chatapp.config import Paths


@pytest.fixture(scope="session")
def llama_paths(tmp_path_factory: pytest.TempPathFactory) -> Paths:
    """chatapp Paths in a temp dir, with the packaged model assembled into its data dir (once)."""
    if not HAVE_LOCAL:
        pytest.skip("needs the 'local' extra (xllamacpp + packaged Gemma)")
    from chatapp.providers.embedded_model import embedded_model_path

    base = tmp_path_factory.mktemp("chatapp-llama")
    paths = Paths(config_dir=base / "config", data_dir=base / "data", cache_dir=base / "cache")
    embedded_model_path(paths)
    return paths


@pytest.fixture(scope="session")
def llama(llama_paths: Paths) -> Iterator[LlamaFixture]:
    """The shared running server (started once per session, stopped at the end)."""
    from chatapp.providers.embedded_model import embedded_model_path
    from chatapp.providers.llamacpp_server import LlamaServer, ServerSettings, gemma_template

    model_path = embedded_model_path(llama_paths)
    # Gemma's own chat turns, as a third-party server would apply them (chatapp itself gives this base
    # model the plain-text transcript format; tests of that start their own server).
    settings = ServerSettings(model_path=model_path, context_window=4096, alias=MODEL, chat_template=gemma_template())
    server = LlamaServer("embedded", settings)
    server.start()
    server.wait_ready(timeout=60)
    assert server.root_url is not None
    try:
        yield LlamaFixture(server.root_url, server.api_key, model_path, llama_paths, server)
    finally:
        server.close()
