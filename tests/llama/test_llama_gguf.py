"""The GGUF header reader, on small synthetic files (no llama.cpp needed)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from chatapp.providers.gguf import GGUFError, check_magic, read_info


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def _gguf(kvs: list[tuple[str, int, bytes]], version: int = 3) -> bytes:
    out = b"GGUF" + struct.pack("<IQQ", version, 0, len(kvs))
    for key, kind, value in kvs:
        out += _string(key) + struct.pack("<I", kind) + value
    return out


def _header(template: bool = False, vocab: int = 1000) -> bytes:
    tokens = struct.pack("<IQ", 8, vocab) + b"".join(_string(f"tok{i}") for i in range(vocab))
    kvs = [
        ("general.architecture", 8, _string("llama")),
        ("general.name", 8, _string("Tiny")),
        ("llama.context_length", 4, struct.pack("<I", 131072)),
        ("llama.block_count", 4, struct.pack("<I", 32)),
        ("llama.embedding_length", 4, struct.pack("<I", 4096)),
        ("llama.attention.head_count", 4, struct.pack("<I", 32)),
        ("llama.attention.head_count_kv", 4, struct.pack("<I", 8)),
        ("llama.rope.freq_base", 6, struct.pack("<f", 500000.0)),
        ("tokenizer.ggml.tokens", 9, tokens),
        ("tokenizer.ggml.scores", 9, struct.pack("<IQ", 6, vocab) + b"\0" * 4 * vocab),
    ]
    if template:
        kvs.append(("tokenizer.chat_template", 8, _string("{{ messages }}")))
    return _gguf(kvs)


def test_reads_the_facts_chatapp_uses(tmp_path: Path):
    path = tmp_path / "m.gguf"
    path.write_bytes(_header(template=True) + b"\0" * 64)
    info = read_info(path)
    assert (info.version, info.architecture, info.name, info.context_length) == (3, "llama", "Tiny", 131072)
    assert info.has_chat_template
    # Llama 3 8B at 8k: 32 layers x 8 KV heads x (128 + 128) x 2 bytes x 8192 tokens = 1 GiB.
    assert info.kv_cache_bytes(8192) == 2**30


def test_no_template_and_missing_facts(tmp_path: Path):
    path = tmp_path / "m.gguf"
    path.write_bytes(_gguf([("general.architecture", 8, _string("mystery"))]))
    info = read_info(path)
    assert not info.has_chat_template and info.context_length is None and info.kv_cache_bytes(4096) is None


@pytest.mark.parametrize(("content", "message"), [
    (b"", "does not start with 'GGUF'"),
    (b"PK\x03\x04zipfile", "does not start with 'GGUF'"),
    (b"GGUF" + struct.pack("<I", 99), "unsupported GGUF version 99"),
    (b"GGUF" + struct.pack("<IQQ", 3, 0, 5), "truncated GGUF header"),
    (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 2**40), "implausible string length"),
])
def test_bad_files_get_one_line_reasons(tmp_path: Path, content: bytes, message: str):
    path = tmp_path / "bad.gguf"
    path.write_bytes(content)
    with pytest.raises(GGUFError) as caught:
        read_info(path)
    assert message in str(caught.value) and str(path) in str(caught.value)


def test_truncated_vocabulary(tmp_path: Path):
    path = tmp_path / "cut.gguf"
    path.write_bytes(_header()[:-3000])
    with pytest.raises(GGUFError, match="truncated"):
        read_info(path)


def test_missing_and_directory(tmp_path: Path):
    with pytest.raises(GGUFError, match="model file not found"):
        check_magic(tmp_path / "none.gguf")
    with pytest.raises(GGUFError, match="not a file"):
        check_magic(tmp_path)
