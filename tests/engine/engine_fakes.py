"""In-memory providers, a fake clock and settings builders for the engine tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from chatapp.config import Paths, ProviderSpec, RetrySettings, Settings
from chatapp.domain import ChatMessage, ChatRequest, Finish, ProviderError, Role, StreamEvent, TextDelta, Usage
from chatapp.engine import EngineOptions, Job, Priority, RequestEngine


class FakeTime:
    """A clock that only moves when something sleeps (or a test advances it)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        self.now += delay
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class Pause:
    """Really wait this long (event loop time) inside the stream."""

    seconds: float


@dataclass(frozen=True)
class Advance:
    """Move a FakeTime forward inside the stream (for latency figures)."""

    time: FakeTime
    seconds: float


HANG = Pause(3600.0)

Step = StreamEvent | ProviderError | BaseException | Pause | Advance


DEFAULT_USAGE = Usage(10, 2)


def ok(text: str = "hello", *, usage: Usage | None = DEFAULT_USAGE) -> list[Step]:
    half = len(text) // 2
    steps: list[Step] = [TextDelta(text[:half]), TextDelta(text[half:])]
    if usage is not None:
        steps.append(usage)
    steps.append(Finish("stop"))
    return steps


@dataclass
class FakeProvider:
    """Plays one scripted reply per stream() call; `default` once the script runs out."""

    name: str
    model: str = "fake-model"
    replies: list[list[Step]] = field(default_factory=list)
    default: list[Step] = field(default_factory=ok)
    kind: str = "fake"
    requests: list[ChatRequest] = field(default_factory=list)
    active: int = 0
    max_active: int = 0
    closed_streams: int = 0

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        self.requests.append(request)
        steps = self.replies.pop(0) if self.replies else self.default
        return self._play(list(steps))

    async def _play(self, steps: list[Step]) -> AsyncIterator[StreamEvent]:
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            for step in steps:
                if isinstance(step, BaseException):
                    raise step
                if isinstance(step, Pause):
                    await asyncio.sleep(step.seconds)
                elif isinstance(step, Advance):
                    step.time.advance(step.seconds)
                else:
                    yield step
        finally:
            self.active -= 1
            self.closed_streams += 1

    async def aclose(self) -> None:
        return None

    @property
    def calls(self) -> int:
        return len(self.requests)


def spec(name: str, model: str | None = None, **changes: object) -> ProviderSpec:
    values: dict[str, object] = {"first_token_timeout": 5.0, "timeout": 5.0}
    values.update(changes)
    return ProviderSpec(name=name, kind="openai", model=model or f"{name}-model", **values)  # type: ignore[arg-type]


def settings(
    specs: Iterable[ProviderSpec], *, retry: RetrySettings | None = None, fallback: tuple[str, ...] = ()
) -> Settings:
    providers = {s.name: s for s in specs}
    root = Path("/nonexistent-chatapp-test")
    return Settings(
        paths=Paths(config_dir=root, data_dir=root, cache_dir=root),
        providers=providers,
        default_provider=next(iter(providers), None),
        fallback=fallback,
        retry=retry or RetrySettings(base_delay=0.5, max_delay=8.0, max_attempts=4),
    )


def build_request(text: str = "hi", max_tokens: int | None = None) -> Callable[[ProviderSpec], ChatRequest]:
    def build(spec: ProviderSpec) -> ChatRequest:
        return ChatRequest(model=spec.model, messages=(ChatMessage(Role.USER, text),), max_tokens=max_tokens)

    return build


def job(
    *chain: str,
    priority: Priority = Priority.INTERACTIVE,
    label: str = "test",
    estimated: int = 0,
    deadline: float | None = None,
    max_tokens: int | None = None,
) -> Job:
    return Job(
        priority=priority,
        chain=tuple(chain),
        build_request=build_request(label, max_tokens),
        estimated_input_tokens=estimated,
        label=label,
        deadline=deadline,
    )


@dataclass
class Harness:
    engine: RequestEngine
    providers: dict[str, FakeProvider]
    time: FakeTime | None


def make_engine(
    providers: Iterable[FakeProvider],
    specs: Iterable[ProviderSpec] | None = None,
    *,
    retry: RetrySettings | None = None,
    options: EngineOptions | None = None,
    fake_time: bool = True,
    seed: int = 7,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> Harness:
    import random

    by_name = {p.name: p for p in providers}
    specs = list(specs) if specs is not None else [spec(name) for name in by_name]
    time = FakeTime() if fake_time else None

    def get_provider(name: str) -> FakeProvider:
        return by_name[name]

    kwargs: dict[str, object] = {}
    if time is not None:
        kwargs.update(clock=time.clock, sleep=time.sleep)
    if sleep is not None:
        kwargs["sleep"] = sleep
    engine = RequestEngine(
        settings(specs, retry=retry),
        get_provider,  # type: ignore[arg-type]
        options=options,
        rng=random.Random(seed),
        **kwargs,  # type: ignore[arg-type]
    )
    return Harness(engine, by_name, time)


async def collect(engine: RequestEngine, the_job: Job) -> list[object]:
    return [event async for event in engine.stream(the_job)]


def texts(events: Iterable[object]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))
