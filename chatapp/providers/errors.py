"""Classify SDK and transport exceptions into `ProviderError` kinds.

Both official SDKs share one error shape (`APIStatusError` with `status_code`, `response` and `body`;
`APIConnectionError`; `APITimeoutError`), so one classifier serves both, by duck typing, without
importing either SDK here. Raw transport errors that leak mid-stream (the Anthropic SDK lets `httpx`
exceptions through) are classified by class name for the same reason.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Any

from chatapp.domain import ErrorKind, ProviderError

_CONTEXT_MARKERS = (
    "context_length_exceeded",
    "context length",
    "prompt is too long",
    "maximum context",
    "exceeds the available context",
    "exceed_context_size",
    "too many tokens",
)
_TRANSPORT_NAMES = (
    "RemoteProtocolError",
    "ReadError",
    "WriteError",
    "ConnectError",
    "ReadTimeout",
    "ConnectTimeout",
    "PoolTimeout",
    "NetworkError",
    "TransportError",
    "StreamError",
    "IncompleteRead",
)


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms` or `retry-after` (seconds or an HTTP date)."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    if (ms := lowered.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _body_text(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping):
        error = body.get("error", body)
        if isinstance(error, Mapping):
            message = error.get("message") or ""
            kind = error.get("type") or error.get("code") or ""
            return f"{kind} {message}".strip()
        return str(error)
    return str(getattr(exc, "message", "") or exc)


def _short_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping):
        error = body.get("error", body)
        if isinstance(error, Mapping) and isinstance(message := error.get("message"), str):
            return message
    return str(getattr(exc, "message", "") or exc) or type(exc).__name__


def classify(exc: BaseException, provider: str, *, mid_stream: bool = False) -> ProviderError:
    """Map any exception raised while talking to a provider to a `ProviderError`.

    `mid_stream`: the response had started, so a connection failure means the stream broke.
    """
    error = _classify(exc, provider)
    if mid_stream and error.kind in (ErrorKind.TRANSIENT, ErrorKind.TIMEOUT) and error.status is None:
        kind = ErrorKind.TIMEOUT if error.kind is ErrorKind.TIMEOUT else ErrorKind.INTERRUPTED
        message = "the stream stalled" if kind is ErrorKind.TIMEOUT else "the stream broke midway"
        return ProviderError(kind, f"{message} ({type(exc).__name__})", provider=provider)
    return error


def _classify(exc: BaseException, provider: str) -> ProviderError:
    if isinstance(exc, ProviderError):
        return exc
    status = getattr(exc, "status_code", None)
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) if response is not None else None
    if isinstance(status, int) and status >= 400:
        return _from_status(exc, status, headers, provider)
    if isinstance(status, int):  # an error event inside an HTTP 200 stream (Anthropic's in-band errors)
        return _from_in_band(exc, provider)
    name = type(exc).__name__
    if "Timeout" in name:
        return ProviderError(ErrorKind.TIMEOUT, "the server did not answer in time", provider=provider)
    if name == "APIConnectionError" or "Connect" in name:
        cause = exc.__cause__ or exc.__context__
        detail = f" ({type(cause).__name__})" if cause else ""
        return ProviderError(ErrorKind.TRANSIENT, f"cannot reach the server{detail}", provider=provider)
    if name in _TRANSPORT_NAMES or isinstance(exc, ConnectionError | OSError):
        return ProviderError(ErrorKind.INTERRUPTED, f"the connection broke ({name})", provider=provider)
    if name == "APIError":  # in-band error event without a status
        return _from_in_band(exc, provider)
    return ProviderError(ErrorKind.TRANSIENT, f"unexpected error: {name}: {exc}", provider=provider)


def _from_in_band(exc: Any, provider: str) -> ProviderError:
    text = _body_text(exc)
    if "overloaded" in text:
        return ProviderError(ErrorKind.TRANSIENT, "the server is overloaded", provider=provider)
    if "rate_limit" in text:
        return ProviderError(ErrorKind.RATE_LIMITED, "rate limited", provider=provider)
    return ProviderError(ErrorKind.INTERRUPTED, f"the stream reported an error: {_short_message(exc)}",
                         provider=provider)


def _from_status(exc: Any, status: int, headers: Any, provider: str) -> ProviderError:
    text = _body_text(exc).lower()
    message = _short_message(exc)
    if status in (401, 403):
        word = "invalid API key" if status == 401 else "permission denied"
        return ProviderError(ErrorKind.AUTH, f"{word} (HTTP {status}): {message}", status=status, provider=provider)
    if status == 404:
        return ProviderError(ErrorKind.NOT_FOUND, f"not found (HTTP 404): {message}", status=status,
                             provider=provider)
    if status == 429:
        retry_after = parse_retry_after(dict(headers) if headers is not None else None)
        return ProviderError(ErrorKind.RATE_LIMITED, f"rate limited (HTTP 429): {message}",
                             retry_after=retry_after, status=status, provider=provider)
    if status in (400, 413, 422):
        if any(marker in text for marker in _CONTEXT_MARKERS) or status == 413:
            return ProviderError(ErrorKind.CONTEXT_TOO_LONG, f"the conversation is too long for the model: "
                                 f"{message}", status=status, provider=provider)
        if "content_filter" in text or "content management policy" in text:
            return ProviderError(ErrorKind.CONTENT_FILTERED, f"blocked by the content filter: {message}",
                                 status=status, provider=provider)
        return ProviderError(ErrorKind.INVALID_REQUEST, f"invalid request (HTTP {status}): {message}",
                             status=status, provider=provider)
    if status == 408 or status == 409 or status >= 500:
        retry_after = parse_retry_after(dict(headers) if headers is not None else None)
        word = "overloaded" if status == 529 or "overloaded" in text else "server error"
        return ProviderError(ErrorKind.TRANSIENT, f"{word} (HTTP {status}): {message}", retry_after=retry_after,
                             status=status, provider=provider)
    return ProviderError(ErrorKind.INVALID_REQUEST, f"unexpected HTTP {status}: {message}", status=status,
                         provider=provider)
