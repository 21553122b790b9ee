"""Every local model chatapp knows (packaged, pulled, configured `model_path`s), with header facts.

What `chatapp models` lists and the model picker can offer: size, quantisation, context length and
whether the file carries a chat template, read from the GGUF header (never the weights), and which
providers run it. The packaged model is only read once it has been assembled (on its first use).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from chatapp.config import Settings
from chatapp.domain import ProviderKind
from chatapp.providers.gguf import GGUFError, read_info
from chatapp.providers.hub import quantization_of
from chatapp.pulled_index import load_index

Source = Literal["packaged", "pulled", "config"]

# llama.cpp's `general.file_type` values (enum llama_ftype) for the quantisations in common use.
_FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S",
    12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K",
    22: "IQ3_XS", 25: "IQ4_NL", 27: "IQ3_M", 30: "IQ4_XS", 32: "BF16",
}


@dataclass(frozen=True, slots=True)
class LocalModel:
    name: str  # how the user refers to it: the pulled name, the provider's name, or "embedded"
    source: Source
    path: Path
    size: int | None  # None: not on disk (yet)
    quantization: str | None
    context_length: int | None  # as trained (the header); chatapp starts it with at most 8192
    chat_template: bool | None  # None: unknown (file not readable yet)
    providers: tuple[str, ...]  # the providers that run this file
    problem: str | None = None  # why the header could not be read


def _describe(name: str, source: Source, path: Path, providers: tuple[str, ...]) -> LocalModel:
    path = path.expanduser()
    try:
        size: int | None = path.stat().st_size
        info = read_info(path)
    except OSError:
        return LocalModel(name, source, path, None, quantization_of(path.name), None, None, providers,
                          "not on disk")
    except GGUFError as exc:
        return LocalModel(name, source, path, size, None, None, None, providers, str(exc))
    quant = quantization_of(path.name) or _FILE_TYPES.get(info.numbers.get("general.file_type", -1))
    return LocalModel(name, source, path, size, quant, info.context_length, info.has_chat_template, providers)


def local_models(settings: Settings) -> list[LocalModel]:
    """Packaged first, then pulled (best first), then the config's own GGUF files."""
    by_path: dict[str, list[str]] = {}
    embedded: list[str] = []
    for spec in settings.providers.values():
        if spec.kind is not ProviderKind.LLAMACPP:
            continue
        if spec.model_path is None:
            embedded.append(spec.name)
        else:
            by_path.setdefault(str(Path(spec.model_path).expanduser()), []).append(spec.name)
    found: list[LocalModel] = []
    if embedded:
        from chatapp.providers.embedded_model import embedded_model_info

        info = embedded_model_info(settings.paths)
        if info.installed:
            entry = _describe(embedded[0], "packaged", info.path, tuple(embedded))
            if not info.assembled:
                entry = LocalModel(entry.name, "packaged", info.path, None, "Q4_K_M", None, False, tuple(embedded),
                                   "assembled on first use")
            found.append(entry)
    seen: set[str] = set()
    for pulled in load_index(settings.paths):
        seen.add(pulled.path)
        found.append(_describe(pulled.name, "pulled", Path(pulled.path), tuple(by_path.get(pulled.path, ()))))
    for path, names in by_path.items():
        if path not in seen:
            found.append(_describe(names[0], "config", Path(path), tuple(names)))
    return found
