"""Plain values shared by every layer: roles, statuses, messages and the stream event vocabulary.

Nothing here imports a third-party package, so any layer can depend on it for free.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


class MessageStatus(StrEnum):
    STREAMING = "streaming"
    COMPLETE = "complete"
    INCOMPLETE = "incomplete"
    ERROR = "error"
    CANCELLED = "cancelled"
    TRUNCATED = "truncated"  # the model stopped at its output length limit: "continue" asks for the rest
    FILTERED = "filtered"  # the provider's content filter stopped the reply; `error` holds its reason


class ProviderKind(StrEnum):
    """The protocol a provider speaks; LLAMACPP is a local GGUF model served by llama.cpp on loopback."""

    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    LLAMACPP = "llamacpp"


class LoadState(StrEnum):
    """Where a local model's server is: not started, loading, answering, or failed to load."""

    IDLE = "idle"
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ModelLoad:
    """A started local model's state, for the status line: `detail` is the load time when ready, why when failed."""

    state: LoadState
    detail: str | None = None


class MetaKey(StrEnum):
    """Keys of a conversation's `meta` record."""

    TITLED = "titled"  # a title job named it: never again
    TEMPLATE = "template"  # the persona (system-role template) as rendered
    TEMPLATE_ASSIGNMENT = "template_assignment"
    TEMPLATE_FROM_SEQ = "template_from_seq"  # the first message made under it (results count from there)
    USER_TEMPLATE = "user_template"  # the last user-role template filled in
    USER_TEMPLATE_ASSIGNMENT = "user_template_assignment"
    USER_TEMPLATE_FROM_SEQ = "user_template_from_seq"


class ErrorKind(StrEnum):
    """How a provider failure should be handled; the retry loop decides on this alone."""

    TRANSIENT = "transient"  # 5xx, overloaded, connection reset: retry
    RATE_LIMITED = "rate_limited"  # 429: retry after `retry_after`
    TIMEOUT = "timeout"  # connect/first-token/stall timeout: retry
    INTERRUPTED = "interrupted"  # stream broke or ended without its terminator: retry
    AUTH = "auth"  # 401/403: never retried, provider out until the key is fixed
    INVALID_REQUEST = "invalid_request"  # 400/422: never retried
    NOT_FOUND = "not_found"  # unknown model or endpoint: never retried
    CONTEXT_TOO_LONG = "context_too_long"  # goes to the context path, not the retry loop
    CONTENT_FILTERED = "content_filtered"
    UNAVAILABLE = "unavailable"  # not configured, no key, model failed to load

    @property
    def retryable(self) -> bool:
        return self in _RETRYABLE

    @property
    def takes_provider_out(self) -> bool:
        """Failures that make the provider useless until the user changes something."""
        return self in (ErrorKind.AUTH, ErrorKind.UNAVAILABLE)


_RETRYABLE = frozenset({ErrorKind.TRANSIENT, ErrorKind.RATE_LIMITED, ErrorKind.TIMEOUT, ErrorKind.INTERRUPTED})


class ImportFileError(Exception):
    """A file cannot be imported; the message is one line naming what is wrong. Nothing was written."""


class ProviderError(Exception):
    """A classified provider failure. Providers raise only this, never an SDK exception."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        retry_after: float | None = None,
        status: int | None = None,
        provider: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after = retry_after
        self.status = status
        self.provider = provider

    def __str__(self) -> str:
        where = f"{self.provider}: " if self.provider else ""
        return f"{where}{self.message}"


@dataclass(frozen=True, slots=True)
class Target:
    """Where a turn goes: a configured provider name and a model."""

    provider: str
    model: str


# --- Requests ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One turn as sent to a model."""

    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """What a provider needs for one completion. `system` is separate because Anthropic wants it so."""

    model: str
    messages: tuple[ChatMessage, ...]
    system: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None


# --- Stream events (provider -> engine -> service -> UI) --------------------------------


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class Finish:
    """The stream's terminator arrived. `reason` is normalised: stop, length, content_filter, other;
    `detail` is the provider's own word for it (`max_tokens`, `refusal`, ...)."""

    reason: str
    detail: str | None = field(default=None, compare=False)


StreamEvent = TextDelta | Usage | Finish


# --- Turn events (service -> UI/CLI) ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class TurnStarted:
    conversation_id: str
    user_message_id: str
    assistant_message_id: str
    provider: str
    model: str


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the user should see but that is not part of the reply: retries, fallbacks, waits."""

    text: str


@dataclass(frozen=True, slots=True)
class SetupHint(Notice):
    """Advice about the setup, not about this turn (an unknown model's assumed window): said once per
    provider per run, outside the conversation."""


@dataclass(frozen=True, slots=True)
class ReplyRestarted:
    """The text shown so far was kept as an incomplete message; a fresh reply begins."""

    previous_message_id: str
    assistant_message_id: str
    provider: str
    model: str
    reason: str


@dataclass(frozen=True, slots=True)
class TurnFinished:
    assistant_message_id: str
    status: MessageStatus
    provider: str
    model: str
    error: str | None = None
    error_kind: ErrorKind | None = None
    usage: Usage | None = None


@dataclass(frozen=True, slots=True)
class MessageTooLong:
    """The user's message alone does not fit the model's window: offer to truncate it or cancel."""

    user_message_id: str
    tokens: int
    limit: int


TurnEvent = TurnStarted | TextDelta | Usage | Notice | ReplyRestarted | MessageTooLong | TurnFinished


# --- Stored values ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    conversation_id: str
    role: Role
    content: str
    status: MessageStatus
    created: float
    updated: float
    provider: str | None = None
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    error: str | None = None
    parent_id: str | None = None  # None for a root; conversations are trees (siblings = other branches)


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    title: str | None
    created: float
    updated: float
    provider: str | None = None
    model: str | None = None
    message_count: int = 0
    meta: dict[str, object] = field(default_factory=dict)
    title_source: str | None = None  # "user" (renamed: never overwritten), "generated", "imported"
    source_id: str | None = None  # where an imported conversation came from ("chatgpt:<id>")
    current_leaf: str | None = None  # the end of the branch on screen

    @property
    def display_title(self) -> str:
        return self.title or "(untitled)"


# Marks around the matching words in a search snippet: control characters, so they cannot be confused with
# text (message text is always shown through `visible()`, which pictures control characters).
HIT_START, HIT_END = "\x02", "\x03"


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A message that matched a full-text search, with a snippet of it."""

    conversation_id: str
    message_id: str
    title: str | None
    role: str
    created: float
    snippet: str  # the matching words between HIT_START and HIT_END

    def parts(self) -> list[tuple[str, bool]]:
        """The snippet as (text, is_a_hit) pieces, for highlighting without markup."""
        pieces: list[tuple[str, bool]] = []
        for index, chunk in enumerate(self.snippet.replace(HIT_END, HIT_START).split(HIT_START)):
            if chunk:
                pieces.append((chunk, index % 2 == 1))
        return pieces
