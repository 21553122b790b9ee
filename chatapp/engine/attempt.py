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


class _StallWatch:
    """Cancels the reading task when it has waited `stall` seconds for the next event.

    One timer for the whole reply, moved on only when it fires early, instead of an `asyncio.timeout`
    per event: a timer scheduled and cancelled per token cost ~10% of a fast reply's CPU. Its
    cancellation is told apart from any other as `asyncio.timeout` does it (`Task.uncancel`). Time the
    consumer spends between events does not count, as it did not with a timeout per read.
    """

    def __init__(self, stall: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._stall = stall
        self._task: asyncio.Task[object] | None = None
        self._cancelling = 0
        self._since = 0.0
        self._waiting = False
        self.expired = False
        self._handle = self._loop.call_at(self._loop.time() + stall, self._check)

    def begin(self) -> None:
        """The reader starts waiting for an event."""
        self._task = asyncio.current_task()
        self._since = self._loop.time()
        self._waiting = True

    def end(self) -> None:
        self._waiting = False

    def stalled(self) -> bool:
        """The cancellation being handled is this watch's (and it is taken back)."""
        task = self._task
        return self.expired and task is not None and task.uncancel() <= self._cancelling

    def close(self) -> None:
        self._handle.cancel()

    def _check(self) -> None:
        now = self._loop.time()
        due = self._since + self._stall
        if self._waiting and now >= due and self._task is not None and not self.expired:
            self.expired = True
            self._cancelling = self._task.cancelling()
            self._task.cancel()
            return
        self._handle = self._loop.call_at(due if self._waiting else now + self._stall, self._check)


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
    watch: _StallWatch | None = None  # once text flows
    try:
        while True:
            timeout: asyncio.Timeout | None = None
            try:
                if watch is not None:
                    watch.begin()
                    try:
                        event = await anext(source)
                    except asyncio.CancelledError:
                        if watch.stalled():
                            raise TimeoutError from None
                        raise
                    finally:
                        watch.end()
                else:
                    budget = first_token_by - loop.time()
                    # The job's deadline bounds waiting (retries, backoff, the first token), never a reply
                    # that is flowing: a slow model writing a long answer must not be cut off midway.
                    left = remaining()
                    timeout = asyncio.timeout(max(0.0, min(budget, left)))
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
                ours = watch.expired if watch is not None else timeout is not None and timeout.expired()
                if not ours:  # the provider's own, unclassified
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
                if watch is None:
                    seen_text = True
                    watch = _StallWatch(stall_timeout)
            elif isinstance(event, Finish):
                finished = True
            yield event
    finally:
        if watch is not None:
            watch.close()
        close = getattr(source, "aclose", None)
        if close is not None:
            with contextlib.suppress(Exception):  # a failing close must not fail a finished reply
                await close()
