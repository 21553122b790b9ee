"""Fixtures shared by the context tests: sockets that refuse, and a token counter loaded offline."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from chatapp.context import EncodingResolver, TokenCounter


@pytest.fixture(scope="module")
def no_network() -> Iterator[None]:
    """Refuse every connection for the whole module (opt in: ``pytest.mark.usefixtures("no_network")``)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network disabled in tests")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(socket, "getaddrinfo", refuse)
        patch.setattr(socket, "create_connection", refuse)
        yield


@pytest.fixture(scope="module")
def counter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenCounter]:
    """A counter with cl100k_base loaded offline from an empty cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path_factory.mktemp("tiktoken")))
        resolver = EncodingResolver(allow_download=False)
        assert resolver.load("cl100k_base") is not None
        yield TokenCounter(resolver)
