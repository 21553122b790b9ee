"""What a llama.cpp server is started with: the user's settings resolved against the GGUF file.

Everything the user can get wrong is checked here before llama.cpp sees it (not a GGUF, not enough
memory, a chat template that cannot be read or that llama.cpp does not have), so each failure becomes
one readable `ProviderError(UNAVAILABLE)`. `llamacpp_server.LlamaServer` calls these from its loading
thread; nothing here starts a process.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from chatapp.domain import ErrorKind, ProviderError
from chatapp.providers.gguf import GGUFError, GGUFInfo, check_magic, read_info

DEFAULT_MAX_CONTEXT = 8192  # cap on the trained length: a 128k window would allocate GBs of KV cache
FALLBACK_CONTEXT = 4096  # when the header does not say
# Where a base model's reply ends in the transcript format: where it would begin the user's next turn.
TRANSCRIPT_STOP = ("\nUser:", "\n\nUser", "\nAssistant:")
TRANSCRIPT_SOURCE = "plain-text transcript (a base model: the GGUF has no chat template)"


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """What to run. `model_path` None means: ask the `locate` callable (the embedded model)."""

    model_path: Path | None
    context_window: int | None = None
    threads: int | None = None
    chat_template: str | None = None
    alias: str | None = None


@dataclass(frozen=True, slots=True)
class Launch:
    """Settings resolved against the file: what the helper is told."""

    path: Path
    size: int
    context_window: int
    template: str | None
    use_jinja: bool
    template_source: str
    stop: tuple[str, ...] = ()  # stop sequences every request needs with this template


def gemma_template() -> str:
    """Gemma's chat format as Jinja (see gemma_template.jinja for why chatapp carries its own)."""
    return resources.files("chatapp.providers").joinpath("gemma_template.jinja").read_text(encoding="utf-8")


def transcript_template() -> str:
    """The few-shot plain-text format for base models (see transcript_template.jinja)."""
    return resources.files("chatapp.providers").joinpath("transcript_template.jinja").read_text(encoding="utf-8")


def available_memory() -> int | None:
    """MemAvailable in bytes (Linux), or None where we cannot tell cheaply."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def vet_file(path: Path, provider: str) -> None:
    """The file exists and starts like a GGUF (cheap: done before the helper is spawned)."""
    try:
        check_magic(path)
    except GGUFError as exc:
        raise ProviderError(ErrorKind.UNAVAILABLE, str(exc), provider=provider) from None


def resolve_launch(
    settings: ServerSettings, path: Path, memory: Callable[[], int | None], provider: str
) -> Launch:
    """Read the header and decide the window and the chat template; refuse what cannot fit in memory."""
    try:
        info = read_info(path)
    except GGUFError as exc:
        raise ProviderError(ErrorKind.UNAVAILABLE, str(exc), provider=provider) from None
    size = path.stat().st_size
    n_ctx = context_window(settings.context_window, info)
    check_memory(path, size, info, n_ctx, memory, provider)
    template, use_jinja, source = chat_template(settings.chat_template, info, provider)
    stop = TRANSCRIPT_STOP if source == TRANSCRIPT_SOURCE else ()
    return Launch(path, size, n_ctx, template, use_jinja, source, stop)


def context_window(configured: int | None, info: GGUFInfo) -> int:
    if configured:
        return configured
    if info.context_length:
        return min(info.context_length, DEFAULT_MAX_CONTEXT)
    return FALLBACK_CONTEXT


def check_memory(
    path: Path, size: int, info: GGUFInfo, n_ctx: int, memory: Callable[[], int | None], provider: str
) -> None:
    available = memory()
    if available is None:
        return
    needed = size + (info.kv_cache_bytes(n_ctx) or 0)
    if needed > available:
        raise ProviderError(
            ErrorKind.UNAVAILABLE,
            f"not enough memory for {path.name}: it needs about {needed / 2**30:.1f} GiB with a "
            f"{n_ctx}-token window, {available / 2**30:.1f} GiB available",
            provider=provider,
        )


def chat_template(override: str | None, info: GGUFInfo, provider: str) -> tuple[str | None, bool, str]:
    """(template text or built-in name, use Jinja, where it came from)."""
    if override:
        if "{%" in override or "{{" in override:
            return override, True, "from the config"
        candidate = Path(override).expanduser()
        if candidate.suffix in (".jinja", ".j2", ".txt") or os.sep in override:
            try:
                return candidate.read_text(encoding="utf-8"), True, f"from {candidate}"
            except (OSError, UnicodeDecodeError) as exc:
                raise ProviderError(ErrorKind.UNAVAILABLE, f"cannot read chat template {candidate}: {exc}",
                                    provider=provider) from None
        return override, False, f"llama.cpp built-in '{override}'"
    if info.has_chat_template:
        return None, True, "from the GGUF file"
    # No template in the file: a base model. Chat markers it never saw in training send it into loops
    # (Gemma 270M with Gemma's own turns: one sentence, then "下次下次…" to the limit); a plain transcript
    # reads as an answer (tests/benchmarks/demo_format.py, figures in the README).
    return transcript_template(), True, TRANSCRIPT_SOURCE


def helper_config(launch: Launch, settings: ServerSettings, api_key: str) -> dict[str, object]:
    """The line the helper reads on stdin (see `llamacpp_host`)."""
    return {
        "model_path": str(launch.path),
        "n_ctx": launch.context_window,
        "threads": settings.threads,
        "chat_template": launch.template,
        "use_jinja": launch.use_jinja,
        "api_key": api_key,
        "alias": settings.alias,
    }


def check_builtin_template(url: str, api_key: str, launch: Launch, provider: str) -> None:
    """llama.cpp accepts any template name at load and fails every request (HTTP 500) later: ask now."""
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode()
    request = urllib.request.Request(f"{url}/apply-template", data=body, method="POST", headers={
        "Authorization": f"Bearer {api_key}", "Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
    try:
        with opener.open(request, timeout=10):
            return
    except urllib.error.HTTPError as exc:
        if exc.code < 500:
            return
    except OSError:
        return  # not the template's fault; the first real request will report it
    raise ProviderError(
        ErrorKind.UNAVAILABLE,
        f"llama.cpp has no built-in chat template named {launch.template!r}: give a llama.cpp template "
        "name (chatml, llama3, ...), Jinja text, or the path of a .jinja file",
        provider=provider,
    )
