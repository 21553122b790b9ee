"""`chatapp models pull`: fetch a GGUF model from the Hugging Face Hub, check it, and record it.

The Hub's protocol is huggingface_hub's: the file list, the metadata request, the ranged download with
its retries, `HF_ENDPOINT` and `HF_TOKEN` honoured (see `download` for why the partial file is ours).
Files go to chatapp's data dir (`models/hub/OWNER/REPO/FILE.gguf`), not the shared Hub cache, so that
listing and removing a pulled model is a plain directory operation, not a cache scan.

After the download the GGUF header is read (`providers.gguf`); a file that is not a GGUF model is
deleted, and only a checked file enters the index (`chatapp.pulled_index`) that config reads at start.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from chatapp.config import Paths
from chatapp.providers.gguf import GGUFError, read_info
from chatapp.providers.llamacpp_launch import available_memory
from chatapp.pulled_index import ALIASES, Alias, PulledModel, PullError, hub_dir, load_index, provider_name, save_index

Progress = Callable[[int, int | None], None]  # (bytes so far, total bytes or None)


# Best first: Q4_K_M is the usual balance of size and quality; then close relatives, then the rest.
QUANT_PREFERENCE = ("Q4_K_M", "Q4_K_S", "IQ4_XS", "IQ4_NL", "Q4_0", "Q5_K_M", "Q5_K_S", "Q5_0", "Q6_K",
                    "Q3_K_L", "Q3_K_M", "Q8_0", "Q3_K_S", "IQ3_M", "IQ3_XS", "Q2_K", "BF16", "F16", "F32")
_QUANT = re.compile(r"(?<![A-Za-z0-9])(I?Q\d(?:_[A-Z0-9]+)*|BF16|F16|F32)(?![A-Za-z0-9])", re.IGNORECASE)
_SPLIT = re.compile(r"-\d{5}-of-\d{5}\.gguf$")
# The weights plus room for the KV cache and llama.cpp's buffers.
MEMORY_HEADROOM = 1.3


def quantization_of(filename: str) -> str | None:
    matches = _QUANT.findall(Path(filename).stem)
    return matches[-1].upper() if matches else None


def find_alias(name: str) -> Alias | None:
    return next((a for a in ALIASES if a.name == name.lower()), None)


def pick_file(files: dict[str, int], memory: int | None) -> str:
    """The GGUF to pull from a repo's files (name -> size): the preferred quantisation that fits `memory`."""
    candidates = {
        name: size for name, size in files.items()
        if name.lower().endswith(".gguf") and "mmproj" not in name.lower() and not _SPLIT.search(name)
    }
    if not candidates:
        raise PullError("no single-file GGUF model in this repository (use REPO:FILE.gguf to name one)")

    def rank(name: str) -> tuple[int, int]:
        quant = quantization_of(name)
        order = QUANT_PREFERENCE.index(quant) if quant in QUANT_PREFERENCE else len(QUANT_PREFERENCE)
        return order, candidates[name]

    ordered = sorted(candidates, key=rank)
    fitting = [n for n in ordered if memory is None or candidates[n] * MEMORY_HEADROOM <= memory]
    if not fitting:
        smallest = min(candidates, key=lambda n: candidates[n])
        raise PullError(f"no GGUF file here fits in {memory / 2**30:.1f} GiB of available memory "
                       f"(the smallest, {smallest}, is {candidates[smallest] / 2**30:.1f} GiB)")
    return fitting[0]


@dataclass(frozen=True, slots=True)
class PullTarget:
    repo: str
    filename: str | None  # None: choose from the repo's files
    name: str | None  # the alias, used as the provider name


def parse_ref(ref: str, file: str | None = None) -> PullTarget:
    """`alias`, `owner/repo` or `owner/repo:file.gguf` (`--file` names the file too)."""
    ref = ref.strip()
    alias = find_alias(ref)
    if alias is not None:
        return PullTarget(alias.repo, file or alias.filename, alias.name)
    repo, _, in_ref = ref.partition(":")
    if not re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", repo):
        known = ", ".join(a.name for a in ALIASES)
        raise PullError(f"not a model reference: {ref!r} (give owner/repo, owner/repo:file.gguf, or one of: {known})")
    return PullTarget(repo, file or in_ref or None, None)


def _require_hub() -> None:
    from importlib.util import find_spec

    if find_spec("huggingface_hub") is None:
        raise PullError("pulling models needs huggingface_hub: pip install huggingface_hub")


def _endpoint() -> str | None:
    """HF_ENDPOINT as it is now (huggingface_hub reads it once, at import)."""
    return os.environ.get("HF_ENDPOINT") or None


def _repo_files(repo: str) -> dict[str, int]:
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFile

    return {entry.path: entry.size for entry in HfApi(endpoint=_endpoint()).list_repo_tree(repo, recursive=True)
            if isinstance(entry, RepoFile)}


def _progress_class(progress: Progress | None) -> type:
    """A stand-in for tqdm that huggingface_hub drives (it calls `update(n)`), reporting to `progress`."""

    class Bridge:
        def __init__(self, *, total: int | None = None, initial: int = 0, **_: Any) -> None:
            self.total = total
            self.n = initial
            if progress is not None:
                progress(self.n, self.total)

        def update(self, count: int = 1) -> None:
            self.n += count
            if progress is not None:
                progress(self.n, self.total)

        def close(self) -> None:
            pass

        def __enter__(self) -> Bridge:
            return self

        def __exit__(self, *exc: object) -> None:
            self.close()

    return Bridge


def _hub_failure(exc: Exception, target: PullTarget) -> PullError:
    """One line for what huggingface_hub or the network raised."""
    from huggingface_hub import errors

    where = f"{target.repo}:{target.filename}" if target.filename else target.repo
    if isinstance(exc, errors.GatedRepoError):
        return PullError(f"{target.repo} is gated: accept its terms on the Hub and set HF_TOKEN")
    if isinstance(exc, errors.RepositoryNotFoundError):
        return PullError(f"no such model repository on the Hub: {target.repo} (or it is private: set HF_TOKEN)")
    if isinstance(exc, errors.RemoteEntryNotFoundError | errors.EntryNotFoundError):
        return PullError(f"no file {target.filename!r} in {target.repo}")
    if isinstance(exc, errors.HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else "?"
        return PullError(f"the Hub refused {where}: HTTP {status}")
    if isinstance(exc, errors.LocalEntryNotFoundError | errors.OfflineModeIsEnabled):
        return PullError(f"cannot reach the Hub for {where} (offline?)")
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return PullError(f"download of {where} failed: {text}")


def pull(
    paths: Paths,
    ref: str,
    *,
    file: str | None = None,
    progress: Progress | None = None,
    memory: Callable[[], int | None] = available_memory,
) -> PulledModel:
    """Download `ref`, check its header, record it; the model as it is now offered. Blocking.

    Ctrl+C (KeyboardInterrupt) passes through and leaves the partial file, which the next pull resumes.
    """
    target = parse_ref(ref, file)
    _require_hub()
    try:
        filename = target.filename or pick_file(_repo_files(target.repo), memory())
        target = replace(target, filename=filename)
        downloaded = download(target.repo, filename, hub_dir(paths) / target.repo, progress)
    except PullError:
        raise
    except Exception as exc:  # the library's and the network's errors; Ctrl+C is no Exception: it passes
        raise _hub_failure(exc, target) from None
    return record(paths, target, downloaded)


def download(repo: str, filename: str, folder: Path, progress: Progress | None) -> Path:
    """Fetch one file into `folder`, resuming a partial left by an interrupted pull.

    Written here rather than left to `hf_hub_download` because that deletes its partial file when the
    download is interrupted (huggingface_hub 1.x/2.x, "process-unique temporary file"): it resumes a
    broken stream only within the same call, and a Ctrl+C would throw away gigabytes. The library
    still does the Hub's part: the metadata request (redirects, HF_ENDPOINT, HF_TOKEN), the ranged GET
    with its retries, and the size check. The partial is named after the file's ETag, so a new
    revision never continues an old one's bytes, and an LFS file's sha256 is checked at the end.
    """
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers

    url = hf_hub_url(repo, filename, endpoint=_endpoint())
    meta = get_hf_file_metadata(url, endpoint=_endpoint())
    final = folder / filename
    etag = (meta.etag or "").strip('"')
    if final.is_file() and meta.size is not None and final.stat().st_size == meta.size:
        return final  # pulled already
    final.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = final.with_name(f".{final.name}.{re.sub(r'[^A-Za-z0-9]', '', etag)[:16] or 'noetag'}.part")
    for stale in final.parent.glob(f".{final.name}.*.part"):
        if stale != partial:
            stale.unlink(missing_ok=True)
    headers = build_hf_headers()
    if urlsplit(meta.location).netloc != urlsplit(url).netloc:
        headers.pop("authorization", None)  # a CDN redirect must not receive the user's token
    with partial.open("ab") as out:
        resume = out.tell()
        if meta.size is not None and resume > meta.size:
            out.truncate(0)
            resume = 0
        http_get(meta.location, out, resume_size=resume, headers=headers, expected_size=meta.size,
                 displayed_filename=filename, tqdm_class=_progress_class(progress))  # type: ignore[arg-type]
    if re.fullmatch(r"[0-9a-f]{64}", etag) and _sha256(partial) != etag:
        partial.unlink(missing_ok=True)
        raise PullError(f"{repo}:{filename} arrived damaged (checksum mismatch); it was removed, pull it again")
    os.replace(partial, final)
    return final


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def record(paths: Paths, target: PullTarget, downloaded: Path) -> PulledModel:
    """Check the header of a downloaded file and add it to the index; a non-GGUF file is deleted."""
    assert target.filename is not None
    try:
        info = read_info(downloaded)
    except GGUFError:
        with contextlib.suppress(OSError):
            downloaded.unlink()
        raise PullError(f"{target.repo}:{target.filename} is not a GGUF model file; it was removed") from None
    models = [m for m in load_index(paths, present_only=False) if m.path != str(downloaded)]
    name = _unique_name(target.name or provider_name(Path(target.filename).stem), {m.name for m in models})
    model = PulledModel(
        name=name, repo=target.repo, filename=target.filename, path=str(downloaded),
        size=downloaded.stat().st_size, quantization=quantization_of(target.filename),
        context_length=info.context_length, has_chat_template=info.has_chat_template,
        architecture=info.architecture,
    )
    save_index(paths, [*models, model])
    return model


def _unique_name(name: str, taken: set[str]) -> str:
    candidate, number = name, 2
    while candidate in taken:
        candidate, number = f"{name}-{number}", number + 1
    return candidate


def find_pulled(paths: Paths, name: str) -> PulledModel:
    models = load_index(paths, present_only=False)
    found = next((m for m in models if m.name == name), None)
    if found is None:
        known = ", ".join(m.name for m in models) or "none"
        raise PullError(f"no pulled model named {name!r} (pulled: {known})")
    return found


def remove(paths: Paths, name: str) -> PulledModel:
    """Delete a pulled model's file and its index entry (the repo's folder too, once it holds no model)."""
    model = find_pulled(paths, name)
    path = Path(model.path)
    try:
        path.unlink(missing_ok=True)
        folder = path.parent
        if folder.is_dir() and not any(p.suffix == ".gguf" for p in folder.iterdir()):
            shutil.rmtree(folder, ignore_errors=True)  # with any partial download
    except OSError as exc:
        raise PullError(f"cannot remove {path}: {exc.strerror or exc}") from None
    save_index(paths, [m for m in load_index(paths, present_only=False) if m.name != name])
    return model


def save_to_config(config_file: Path, model: PulledModel) -> None:
    """Append a `[providers.NAME] kind = "llamacpp"` block for `model` (the rest of the file is kept as is)."""
    try:
        text = config_file.read_text(encoding="utf-8") if config_file.exists() else ""
    except (OSError, UnicodeDecodeError) as exc:
        raise PullError(f"cannot read {config_file}: {exc}") from None
    header = f"[providers.{model.name}]"
    if header in text:
        raise PullError(f"{config_file} already has {header}; the model is pulled but the file was not changed")
    # JSON string syntax is valid TOML basic-string syntax (same escapes).
    block = (f"{header}\nkind = \"llamacpp\"\nmodel_path = {json.dumps(model.path)}\n"
             f"context_window = {model.context_window}\n")
    separator = "" if not text or text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
    try:
        config_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(config_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as file:
            file.write(separator + block)
    except OSError as exc:
        raise PullError(f"cannot write {config_file}: {exc.strerror or exc}") from None
