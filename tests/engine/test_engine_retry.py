"""The retry loop: backoff, Retry-After, deadlines, timeouts, mid-stream failures, cancellation."""

import asyncio
from pathlib import Path

import pytest
from engine_fakes import HANG, FakeProvider, Pause, collect, job, make_engine, ok, spec, texts

from chatapp.config import RetrySettings
from chatapp.domain import ErrorKind, Finish, Notice, ProviderError, TextDelta, Usage
from chatapp.engine import AttemptFailed, AttemptStarted, Priority
from chatapp.engine.attempt import DeadlineExceeded


def err(kind: ErrorKind, message: str = "boom", **kw) -> ProviderError:
    return ProviderError(kind, message, **kw)


async def test_transient_error_is_retried_after_a_jittered_backoff():
    a = FakeProvider("a", replies=[[err(ErrorKind.TRANSIENT, "503")], ok("hello")])
    h = make_engine([a])
    events = await collect(h.engine, job("a"))
    assert a.calls == 2
    assert texts(events) == "hello"
    starts = [e for e in events if isinstance(e, AttemptStarted)]
    assert [s.attempt for s in starts] == [1, 2]
    assert not starts[1].restarted and "503" in (starts[1].reason or "")
    assert len(h.time.sleeps) == 1 and 0 <= h.time.sleeps[0] <= 0.5
    notices = [e.text for e in events if isinstance(e, Notice)]
    assert any("retrying in" in n for n in notices)
    assert isinstance(events[-1], Finish)


async def test_retry_after_is_honoured():
    a = FakeProvider("a", replies=[[err(ErrorKind.RATE_LIMITED, "429", retry_after=2.0)], ok()])
    h = make_engine([a])
    events = await collect(h.engine, job("a"))
    assert h.time.sleeps == [2.0]
    assert Notice("a rate limited, retrying in 2.0 s") in events


async def test_retry_after_beyond_the_deadline_falls_back_without_sleeping():
    a = FakeProvider("a", replies=[[err(ErrorKind.RATE_LIMITED, "429", retry_after=120.0)]])
    b = FakeProvider("b", default=ok("from b"))
    h = make_engine([a, b])  # interactive deadline 45 s
    events = await collect(h.engine, job("a", "b"))
    assert h.time.sleeps == []
    assert a.calls == 1 and b.calls == 1
    assert texts(events) == "from b"
    last_start = [e for e in events if isinstance(e, AttemptStarted)][-1]
    assert (last_start.provider, last_start.model, last_start.is_fallback) == ("b", "b-model", True)
    assert any("beyond the deadline" in e.text and "falling back to b" in e.text
               for e in events if isinstance(e, Notice))


async def test_retry_after_beyond_the_deadline_with_no_fallback_raises_at_once():
    a = FakeProvider("a", replies=[[err(ErrorKind.RATE_LIMITED, "429", retry_after=600.0)]])
    h = make_engine([a])
    with pytest.raises(ProviderError) as info:
        await collect(h.engine, job("a"))
    assert info.value.kind is ErrorKind.RATE_LIMITED and info.value.provider == "a"
    assert h.time.sleeps == []


async def test_background_deadline_is_longer():
    a = FakeProvider("a", replies=[[err(ErrorKind.RATE_LIMITED, "429", retry_after=120.0)], ok("later")])
    h = make_engine([a])
    result = await h.engine.complete(job("a", priority=Priority.BACKGROUND))
    assert result.text == "later" and h.time.sleeps == [120.0]


@pytest.mark.parametrize(
    "kind", [ErrorKind.INVALID_REQUEST, ErrorKind.CONTEXT_TOO_LONG, ErrorKind.CONTENT_FILTERED]
)
async def test_caller_errors_are_neither_retried_nor_sent_to_the_fallback(kind):
    a = FakeProvider("a", replies=[[err(kind)]])
    b = FakeProvider("b")
    h = make_engine([a, b])
    with pytest.raises(ProviderError) as info:
        await collect(h.engine, job("a", "b"))
    assert info.value.kind is kind and info.value.provider == "a"
    assert a.calls == 1 and b.calls == 0 and h.time.sleeps == []
    assert h.engine.breaker_state("a") == "closed"


async def test_not_found_goes_to_the_fallback_without_retrying():
    a = FakeProvider("a", replies=[[err(ErrorKind.NOT_FOUND, "no such model")]])
    b = FakeProvider("b")
    h = make_engine([a, b])
    events = await collect(h.engine, job("a", "b"))
    assert a.calls == 1 and b.calls == 1 and h.time.sleeps == []
    assert texts(events) == "hello"


async def test_max_attempts_caps_the_retries_then_the_last_error_is_raised():
    a = FakeProvider("a", default=[err(ErrorKind.TRANSIENT, "503")])
    h = make_engine([a], retry=RetrySettings(max_attempts=3))
    with pytest.raises(ProviderError) as info:
        await collect(h.engine, job("a"))
    assert a.calls == 3
    assert len(h.time.sleeps) == 2
    assert info.value.kind is ErrorKind.TRANSIENT and info.value.provider == "a"
    snap = h.engine.stats.snapshot().provider("a")
    assert (snap.requests, snap.failures, snap.retries) == (3, 3, 2)


async def test_retries_exhausted_moves_to_the_fallback():
    a = FakeProvider("a", default=[err(ErrorKind.TRANSIENT, "503")])
    b = FakeProvider("b", default=ok("b says"))
    h = make_engine([a, b], retry=RetrySettings(max_attempts=2))
    events = await collect(h.engine, job("a", "b"))
    assert a.calls == 2 and b.calls == 1
    assert texts(events) == "b says"
    assert h.engine.stats.snapshot().provider("a").fallbacks == 1
    assert h.engine.stats.snapshot().provider("b").served_as_fallback == 1


async def test_first_token_timeout_retries_a_silent_server():
    a = FakeProvider("a", replies=[[HANG], ok("awake")])
    h = make_engine([a], [spec("a", first_token_timeout=0.05)])
    events = await asyncio.wait_for(collect(h.engine, job("a")), 5)
    assert texts(events) == "awake" and a.calls == 2
    failed = [e for e in events if isinstance(e, AttemptFailed)]
    assert failed[0].error.kind is ErrorKind.TIMEOUT and not failed[0].had_output
    assert a.closed_streams == 2  # the hung stream was closed


async def test_first_token_timeout_counts_until_text_not_until_any_event():
    a = FakeProvider("a", replies=[[Usage(5, 0), HANG], ok()])
    h = make_engine([a], [spec("a", first_token_timeout=0.05)])
    events = await asyncio.wait_for(collect(h.engine, job("a")), 5)
    assert a.calls == 2 and texts(events) == "hello"


async def test_stall_timeout_after_text_restarts_the_reply():
    a = FakeProvider("a", replies=[[TextDelta("partial"), HANG], ok("fresh")])
    h = make_engine([a], [spec("a", timeout=0.05)])
    events = await asyncio.wait_for(collect(h.engine, job("a")), 5)
    kinds = [type(e).__name__ for e in events]
    failed = next(e for e in events if isinstance(e, AttemptFailed))
    assert failed.had_output and failed.error.kind is ErrorKind.TIMEOUT and "stalled" in failed.error.message
    restart = [e for e in events if isinstance(e, AttemptStarted)][1]
    assert restart.restarted and restart.reason
    # partial text, then AttemptFailed, then the restarted attempt's text
    assert kinds.index("AttemptFailed") < len(kinds) - 1 - kinds[::-1].index("AttemptStarted")
    assert texts(events) == "partialfresh"


async def test_slow_but_steady_stream_is_not_a_stall():
    steps = [TextDelta("a"), Pause(0.03), TextDelta("b"), Pause(0.03), TextDelta("c"), Finish("stop")]
    a = FakeProvider("a", replies=[steps])
    h = make_engine([a], [spec("a", timeout=0.5, first_token_timeout=0.5)])
    events = await collect(h.engine, job("a"))
    assert texts(events) == "abc" and a.calls == 1


async def test_the_total_deadline_stops_everything():
    a = FakeProvider("a", default=[HANG])
    b = FakeProvider("b", default=[HANG])
    h = make_engine([a, b], [spec("a", first_token_timeout=30), spec("b", first_token_timeout=30)], fake_time=False)
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(DeadlineExceeded) as info:
        await collect(h.engine, job("a", "b", deadline=0.2))
    assert loop.time() - start < 2
    assert info.value.kind is ErrorKind.TIMEOUT and a.calls == 1 and b.calls == 1


async def test_a_stuck_first_provider_leaves_the_fallback_its_share_of_the_deadline():
    """A silent server with a long first-token timeout must not spend the whole turn: the fallback answers."""
    a = FakeProvider("a", default=[HANG])
    b = FakeProvider("b", replies=[ok("b answers")])
    h = make_engine([a, b], [spec("a", first_token_timeout=30), spec("b", first_token_timeout=30)], fake_time=False)
    loop = asyncio.get_running_loop()
    start = loop.time()
    events = await asyncio.wait_for(collect(h.engine, job("a", "b", deadline=1.0)), 10)
    assert texts(events) == "b answers" and a.calls == 1 and b.calls == 1
    assert 0.4 <= loop.time() - start < 5  # a had about half the deadline, not all of it
    [notice] = [e for e in events if isinstance(e, Notice)]
    assert "share of the turn's deadline" in notice.text and "falling back to b" in notice.text


async def test_retries_on_the_first_provider_stop_at_its_share_of_the_deadline():
    a = FakeProvider("a", default=[err(ErrorKind.TRANSIENT)])
    b = FakeProvider("b", replies=[ok("b answers")])
    h = make_engine([a, b], retry=RetrySettings(base_delay=4.0, max_delay=8.0, max_attempts=50,
                                                interactive_deadline=45.0))
    events = await collect(h.engine, job("a", "b"))
    assert texts(events) == "b answers" and b.calls == 1
    assert sum(h.time.sleeps) < 45 / 2


async def test_stream_ending_without_finish_is_interrupted_and_retried():
    a = FakeProvider("a", replies=[[Usage(3, 0)], ok("done")])
    h = make_engine([a])
    events = await collect(h.engine, job("a"))
    failed = next(e for e in events if isinstance(e, AttemptFailed))
    assert failed.error.kind is ErrorKind.INTERRUPTED and not failed.had_output
    assert texts(events) == "done"


async def test_mid_stream_failure_before_any_text_is_transparent():
    a = FakeProvider("a", replies=[[Usage(3, 0), err(ErrorKind.INTERRUPTED, "reset")], ok("whole")])
    h = make_engine([a])
    events = await collect(h.engine, job("a"))
    assert not any(isinstance(e, AttemptFailed) and e.had_output for e in events)
    assert not any(isinstance(e, AttemptStarted) and e.restarted for e in events)
    assert texts(events) == "whole"


async def test_mid_stream_failure_after_text_marks_it_and_restarts_on_the_fallback():
    a = FakeProvider("a", default=[TextDelta("half a sen"), err(ErrorKind.INTERRUPTED, "cut")])
    b = FakeProvider("b", default=ok("complete answer"))
    h = make_engine([a, b], retry=RetrySettings(max_attempts=1))
    events = await collect(h.engine, job("a", "b"))
    failed = next(e for e in events if isinstance(e, AttemptFailed))
    assert failed.had_output and failed.error.provider == "a"
    start_b = [e for e in events if isinstance(e, AttemptStarted)][-1]
    assert start_b.provider == "b" and start_b.is_fallback and start_b.restarted
    assert events.index(failed) < events.index(start_b)
    result = await h.engine.complete(job("a", "b"))
    assert result.text == "complete answer" and result.provider == "b"


async def test_an_error_after_finish_does_not_spoil_the_reply():
    a = FakeProvider("a", replies=[[TextDelta("fine"), Finish("stop"), err(ErrorKind.INTERRUPTED, "late")]])
    h = make_engine([a])
    events = await collect(h.engine, job("a"))
    assert texts(events) == "fine" and a.calls == 1


async def test_transport_oserror_is_classified_transient_and_retried():
    a = FakeProvider("a", replies=[[ConnectionResetError("peer reset")], ok()])
    h = make_engine([a])
    events = await collect(h.engine, job("a"))
    assert a.calls == 2 and texts(events) == "hello"


async def test_cancel_during_backoff_makes_no_further_attempts():
    a = FakeProvider("a", default=[err(ErrorKind.TRANSIENT, "503")])
    sleeping = asyncio.Event()

    async def slow_sleep(delay: float) -> None:
        sleeping.set()
        await asyncio.sleep(3600)

    h = make_engine([a], sleep=slow_sleep)
    task = asyncio.create_task(collect(h.engine, job("a")))
    await asyncio.wait_for(sleeping.wait(), 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.05)
    assert a.calls == 1
    assert h.engine.scheduler.running() == 0 and h.engine.scheduler.queued() == 0


async def test_cancel_mid_stream_closes_the_stream_and_frees_the_slot():
    a = FakeProvider("a", default=[TextDelta("x"), HANG])
    h = make_engine([a])
    task = asyncio.create_task(collect(h.engine, job("a")))
    while a.active == 0:
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert a.active == 0 and a.calls == 1
    assert h.engine.scheduler.running() == 0
    assert h.engine.breaker_state("a") == "closed"


async def test_breaking_out_of_the_stream_releases_the_slot():
    a = FakeProvider("a", default=[TextDelta("x"), HANG])
    h = make_engine([a])
    from contextlib import aclosing

    async with aclosing(h.engine.stream(job("a"))) as events:
        async for event in events:
            if isinstance(event, TextDelta):
                break
    assert h.engine.scheduler.running() == 0 and a.active == 0


async def test_complete_returns_usage_provider_and_model():
    a = FakeProvider("a", default=ok("abc", usage=Usage(7, 3)))
    h = make_engine([a])
    text, usage, provider, model = await h.engine.complete(job("a"))
    assert (text, usage, provider, model) == ("abc", Usage(7, 3), "a", "a-model")


async def test_cancelling_a_background_job_during_backoff_stops_it():
    a = FakeProvider("a", default=[err(ErrorKind.TRANSIENT, "503")])
    sleeping = asyncio.Event()

    async def slow_sleep(delay: float) -> None:
        sleeping.set()
        await asyncio.sleep(3600)

    h = make_engine([a], sleep=slow_sleep)
    task = asyncio.create_task(h.engine.complete(job("a", priority=Priority.BACKGROUND)))
    await asyncio.wait_for(sleeping.wait(), 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.05)
    assert a.calls == 1 and h.engine.scheduler.running() == 0


async def test_a_flowing_reply_is_not_cut_by_the_job_deadline():
    """Regression: a slow model writing a long answer was stopped when the retry deadline ran out."""
    import asyncio

    from chatapp.config import Paths, ProviderSpec, RetrySettings, Settings
    from chatapp.domain import ChatMessage, ChatRequest, Finish, Role, TextDelta
    from chatapp.engine import Job, Priority, RequestEngine

    class Slow:
        name, kind, model = "slow", "openai", "m"

        async def stream(self, request):
            for _ in range(12):
                await asyncio.sleep(0.05)
                yield TextDelta("x")
            yield Finish("stop")

        async def aclose(self):
            pass

    paths = Paths(Path("/nonexistent"), Path("/nonexistent"), Path("/nonexistent"))
    spec = ProviderSpec(name="slow", kind="openai", model="m", first_token_timeout=1, timeout=1)
    settings = Settings(paths=paths, providers={"slow": spec}, default_provider="slow",
                        retry=RetrySettings(interactive_deadline=0.2))
    engine = RequestEngine(settings, lambda name: Slow())
    job = Job(priority=Priority.INTERACTIVE, chain=("slow",),
              build_request=lambda s: ChatRequest(model="m", messages=(ChatMessage(Role.USER, "hi"),)))
    events = [event async for event in engine.stream(job)]
    assert sum(isinstance(e, TextDelta) for e in events) == 12  # 0.6 s of text past a 0.2 s deadline
    assert isinstance(events[-1], Finish)
    await engine.aclose()
