"""Find OpenAI-compatible servers already running on this machine (Ollama, LM Studio, llama.cpp, vLLM).

Each candidate base URL gets one `GET {base}/models` with a short timeout, run in a thread. The standard
library's urllib does it (no proxy: these are loopback addresses), so no SDK or HTTP client is imported
for a probe. A refused port answers at once; nothing found, nothing returned.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from urllib.error import URLError
from urllib.parse import urlsplit

from chatapp.config import ProviderSpec
from chatapp.domain import ProviderKind

# Names users know these servers by, keyed by their default port.
_KNOWN_PORTS = {11434: "ollama", 1234: "lmstudio", 8080: "llama.cpp", 8000: "vllm"}
PROBE_TIMEOUT = 0.5


@dataclass(frozen=True, slots=True)
class FoundServer:
    name: str
    base_url: str
    models: tuple[str, ...]

    def spec(self) -> ProviderSpec:
        """A provider for this server: the OpenAI wire protocol, no key, its first model by default."""
        return ProviderSpec(name=self.name, kind=ProviderKind.OPENAI, model=self.models[0], base_url=self.base_url)


def server_name(base_url: str) -> str:
    """`ollama` for port 11434 and so on; `local:PORT` for any other port."""
    port = urlsplit(base_url).port
    return _KNOWN_PORTS.get(port or 0) or f"local:{port}"


def probe_server(base_url: str, timeout: float = PROBE_TIMEOUT) -> FoundServer | None:
    """The server at `base_url` with its models, or None when nothing answers like an OpenAI server.
    Blocking: run it in a thread."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(base_url.rstrip("/") + "/models", timeout=timeout) as response:
            body = json.loads(response.read(1_000_000))
        data = body.get("data")
        models = tuple(str(m["id"]) for m in data if isinstance(m, dict) and m.get("id"))
    except (URLError, OSError, ValueError, TypeError, AttributeError, KeyError):
        return None
    if not models:
        return None
    return FoundServer(server_name(base_url), base_url.rstrip("/"), models)
