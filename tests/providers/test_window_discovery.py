"""Learning an unknown model's window from the server that runs it (issue 18, item 5).

The vLLM and Ollama answers are served by a tiny local HTTP server in their documented shapes; llama.cpp's
`/props` is asked of the real server in tests/llama/test_llama_window.py.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from chatapp.model_facts import limits
from chatapp.providers.window_discovery import discover_context_window


class _Answers(BaseHTTPRequestHandler):
    routes: ClassVar[dict[tuple[str, str], object]] = {}

    def _answer(self, method: str) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        body = self.routes.get((method, self.path))
        payload = json.dumps(body).encode() if body is not None else b'{"error": "not found"}'
        self.send_response(200 if body is not None else 404)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def serve():
    servers = []

    def start(routes):
        handler = type("Handler", (_Answers,), {"routes": routes})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/v1"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


async def test_vllm_reports_max_model_len(serve):
    url = serve({("GET", "/v1/models"): {"object": "list", "data": [
        {"id": "other", "object": "model", "max_model_len": 4096},
        {"id": "Qwen/Qwen2.5-7B-Instruct", "object": "model", "max_model_len": 32768},
    ]}})
    assert await discover_context_window(url, "Qwen/Qwen2.5-7B-Instruct") == 32768


async def test_ollama_num_ctx_wins_over_the_trained_length(serve):
    url = serve({("POST", "/api/show"): {
        "parameters": "stop \"<|im_end|>\"\nnum_ctx 16384",
        "model_info": {"general.architecture": "qwen2", "qwen2.context_length": 32768},
    }})
    assert await discover_context_window(url, "qwen2.5:7b") == 16384


async def test_ollama_trained_length(serve):
    url = serve({("POST", "/api/show"): {"model_info": {"llama.context_length": 131072}}})
    assert await discover_context_window(url, "llama3.2") == 131072


async def test_a_server_that_says_nothing_gives_none(serve):
    assert await discover_context_window(serve({}), "m") is None


async def test_an_unreachable_server_gives_none():
    from fakeserver import refused_base_url

    assert await discover_context_window(refused_base_url(), "m") is None


def test_reply_budget_follows_a_known_window_for_unknown_models():
    assert limits("my-local-model", context_window=128_000).max_output_tokens == 32_000
    assert limits("my-local-model", context_window=8192).max_output_tokens == 2048
    assert limits("my-local-model", context_window=1024).max_output_tokens == 1024
    assert limits("my-local-model", context_window=1_000_000).max_output_tokens == 32_768
    assert limits("my-local-model", context_window=128_000, max_output_tokens=500).max_output_tokens == 500
    assert limits("gpt-4o-mini").max_output_tokens == 16_384  # the table's figure stays
