"""The index of models pulled from the Hugging Face Hub: what `chatapp models pull` left on disk.

A value-layer module (no network, no GGUF parsing) so that config can offer every pulled model as a
provider at start for the price of reading one small JSON file. `chatapp.providers.hub` writes it
after a download whose GGUF header checked out, so the facts here (chat template, context length)
come from the file itself.

Pulled files live in chatapp's data dir, `models/hub/OWNER/REPO/FILE.gguf`, next to this index.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chatapp.config import Paths

INDEX_FILE = "pulled.json"
HUB_DIR = "hub"
# Cap on the window a pulled model is started with (as for any GGUF: a 128k window would allocate GBs).
PULLED_MAX_CONTEXT = 8192


class PullError(Exception):
    """A pull, a lookup or a removal of a pulled model that cannot go ahead; one line for the user."""


@dataclass(frozen=True, slots=True)
class Alias:
    """A curated instruction-tuned model that runs on a laptop CPU (sizes as published, Q4_K_M)."""

    name: str
    repo: str
    filename: str
    size_mb: int
    context: int
    description: str


# Small instruct models with a chat template in the GGUF; the file is the Q4_K_M of each repo.
ALIASES: tuple[Alias, ...] = (
    Alias("qwen2.5-0.5b", "Qwen/Qwen2.5-0.5B-Instruct-GGUF", "qwen2.5-0.5b-instruct-q4_k_m.gguf", 491, 32_768,
          "Qwen 2.5 0.5B Instruct: the smallest that follows instructions"),
    Alias("qwen2.5-1.5b", "Qwen/Qwen2.5-1.5B-Instruct-GGUF", "qwen2.5-1.5b-instruct-q4_k_m.gguf", 1_120, 32_768,
          "Qwen 2.5 1.5B Instruct: a good first choice on 8 GB"),
    Alias("qwen2.5-3b", "Qwen/Qwen2.5-3B-Instruct-GGUF", "qwen2.5-3b-instruct-q4_k_m.gguf", 2_100, 32_768,
          "Qwen 2.5 3B Instruct"),
    Alias("llama3.2-1b", "bartowski/Llama-3.2-1B-Instruct-GGUF", "Llama-3.2-1B-Instruct-Q4_K_M.gguf", 808, 131_072,
          "Llama 3.2 1B Instruct"),
    Alias("llama3.2-3b", "bartowski/Llama-3.2-3B-Instruct-GGUF", "Llama-3.2-3B-Instruct-Q4_K_M.gguf", 2_020, 131_072,
          "Llama 3.2 3B Instruct"),
    Alias("gemma3-1b", "ggml-org/gemma-3-1b-it-GGUF", "gemma-3-1b-it-Q4_K_M.gguf", 806, 32_768,
          "Gemma 3 1B it"),
)

@dataclass(frozen=True, slots=True)
class PulledModel:
    """One pulled GGUF and the header facts read when it arrived."""

    name: str  # the provider name it is offered under
    repo: str  # owner/repo on the Hub
    filename: str
    path: str
    size: int
    quantization: str | None
    context_length: int | None
    has_chat_template: bool  # an instruction-tuned model (it carries its chat format)
    architecture: str | None = None

    @property
    def context_window(self) -> int:
        return min(self.context_length or PULLED_MAX_CONTEXT, PULLED_MAX_CONTEXT)


def models_root(paths: Paths) -> Path:
    return paths.data_dir / "models"


def hub_dir(paths: Paths) -> Path:
    return models_root(paths) / HUB_DIR


def index_path(paths: Paths) -> Path:
    return models_root(paths) / INDEX_FILE


def provider_name(text: str) -> str:
    """A provider name usable as a bare TOML key: lower case, letters, digits, '-' and '_'."""
    return re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-") or "local"


def load_index(paths: Paths, *, present_only: bool = True) -> list[PulledModel]:
    """Every pulled model recorded (whose file is still there, unless `present_only` is False).

    A missing or unreadable index is an empty one: pulling again rewrites it.
    """
    try:
        raw = json.loads(index_path(paths).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    known = {f.name for f in fields(PulledModel)}
    models = []
    for entry in raw.get("models", []) if isinstance(raw, dict) else []:
        if not isinstance(entry, dict):
            continue
        try:
            model = PulledModel(**{k: v for k, v in entry.items() if k in known})
        except TypeError:
            continue
        if not present_only or Path(model.path).is_file():
            models.append(model)
    return models


def save_index(paths: Paths, models: list[PulledModel]) -> None:
    """Replace the index atomically (a crash never leaves half a file), private like the rest of the data."""
    target = index_path(paths)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump({"models": [asdict(m) for m in models]}, file, indent=1)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def ranked(models: list[PulledModel]) -> list[PulledModel]:
    """Best first: an instruct model before a base one, then the larger file.

    Every file was picked to fit this machine's memory when it was pulled, and within a family the
    larger file is the stronger model.
    """
    return sorted(models, key=lambda m: (not m.has_chat_template, -m.size, m.name))
