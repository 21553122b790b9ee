"""One attempt's event stream, with the timeouts a provider cannot be trusted to enforce itself.

- first-token timeout: a server that accepts the request and then says nothing must not hang a turn;
- stall timeout: once text flows, the longest silence allowed between two events;
- the job's deadline bounds every wait before the first token, not a reply that keeps flowing;
- a stream that ends without `Finish` is INTERRUPTED (providers should raise that themselves);
- after `Finish`, a late error or silence is ignored: the reply is complete.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable

from chatapp.domain import ChatRequest, ErrorKind, Finish, ProviderError, StreamEvent, TextDelta
from chatapp.providers.base import Provider


class DeadlineExceeded(ProviderError):
    """The job's total deadline ran out; nothing more is tried."""

    def __init__(self, message: str, *, provider: str | None = None) -> None:
        super().__init__(ErrorKind.TIMEOUT, message, provider=provider)


async def timed_events(
    provider: Provider,
    request: ChatRequest,
    *,
    first_token_timeout: float,
    stall_timeout: float,
    remaining: Callable[[], float],
) -> AsyncGenerator[StreamEvent, None]:
    """Yield `provider.stream(request)`'s events, raising ProviderError(TIMEOUT/INTERRUPTED/...) on trouble.

    `remaining()` gives the seconds left before the job's deadline. The provider's iterator is closed
    on every exit, including cancellation.
    """
    name = provider.name
    loop = asyncio.get_running_loop()
    first_token_by = loop.time() + first_token_timeout
    seen_text = False
    finished = False
    source = provider.stream(request)
    try:
        while True:
            budget = stall_timeout if seen_text else first_token_by - loop.time()
            # The job's deadline bounds waiting (retries, backoff, the first token), never a reply that is
            # flowing: a slow model writing a long answer must not be cut off midway.
            left = budget if seen_text else remaining()
            limit = max(0.0, min(budget, left))
            timeout = asyncio.timeout(limit)
            try:
                async with timeout:
                    event = await anext(source)
            except StopAsyncIteration:
                if finished:
                    return
                raise ProviderError(
                    ErrorKind.INTERRUPTED, "the stream ended without a finish reason", provider=name
                ) from None
            except TimeoutError as exc:
                if finished:
                    return
                if not timeout.expired():  # the provider's own, unclassified
                    raise ProviderError(ErrorKind.TRANSIENT, f"timeout: {exc}", provider=name) from exc
                if not seen_text and left <= budget:
                    raise DeadlineExceeded("the request deadline ran out", provider=name) from None
                if seen_text:
                    raise ProviderError(
                        ErrorKind.TIMEOUT, f"the stream stalled for {stall_timeout:g} s", provider=name
                    ) from None
                raise ProviderError(
                    ErrorKind.TIMEOUT, f"no reply within {first_token_timeout:g} s", provider=name
                ) from None
            except ProviderError as exc:
                if finished:
                    return
                if exc.provider is None:
                    exc.provider = name
                raise
            except OSError as exc:  # a transport error that slipped past the adapter's classification
                if finished:
                    return
                raise ProviderError(ErrorKind.TRANSIENT, f"connection error: {exc}", provider=name) from exc
            if isinstance(event, TextDelta):
                if not event.text:
                    continue
                seen_text = True
            elif isinstance(event, Finish):
                finished = True
            yield event
    finally:
        close = getattr(source, "aclose", None)
        if close is not None:
            with contextlib.suppress(Exception):  # a failing close must not fail a finished reply
                await close()
