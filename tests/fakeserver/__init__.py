"""A scripted local LLM server that speaks the real OpenAI and Anthropic wire formats.

Why hand-written: no library serves both OpenAI chat completions and Anthropic messages, as JSON and as
SSE, with scripted faults (status codes with Retry-After, mid-stream cuts, stalls, missing terminators,
in-band stream errors). Transport mocks (respx and the like) bypass the socket, chunked framing and the
SDKs' own HTTP stack, which is exactly where broken streams and timeouts live. So this server runs on
127.0.0.1 in its own thread, over real sockets, and the official SDKs talk to it as they would to the
real APIs; a CLI run in a subprocess can use it too.

The package: `script` (what a test queues, what the server records), `completion` (a reply before it has a
wire shape), `openai_wire` and `anthropic_wire` (the two encoders), `server` (sockets, dispatch, faults)
and `batches` (the providers' Batch APIs).

    with FakeServer() as server:
        server.script(Reply("Hi there", chunks=3), Error(429, retry_after=1))
        client = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)

Scripts are consumed first in, first out, one per completion request (`POST .../chat/completions` or
`POST .../messages`); with none queued the server answers with `server.default`. Paths are matched on
their ending, so several "providers" can share one server under different prefixes (`{url}/a/v1`).
Every request is logged (`server.requests`); `wait_for_requests` blocks, so from async code call it via
`asyncio.to_thread`. For rendering benchmarks, `FakeServer(default=Reply(long_markdown(10_000)))` streams
a long Markdown reply as fast as the socket takes it, one token-ish piece per SSE event.
"""

from .script import (
    DEFAULT_MODELS,
    DEFAULT_TEXT,
    Disconnect,
    Error,
    RecordedRequest,
    Reply,
    Script,
    TextSource,
    Wire,
    long_markdown,
    split_tokens,
)
from .server import FakeServer, error_body, refused_base_url

__all__ = [
    "DEFAULT_MODELS",
    "DEFAULT_TEXT",
    "Disconnect",
    "Error",
    "FakeServer",
    "RecordedRequest",
    "Reply",
    "Script",
    "TextSource",
    "Wire",
    "error_body",
    "long_markdown",
    "refused_base_url",
    "split_tokens",
]
