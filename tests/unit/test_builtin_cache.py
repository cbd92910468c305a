"""The built-in model's cache: verification and atomic writes, without downloading."""

import json

import pytest

from repcheck.atomic import atomic_write_text, publish_dir, temp_dir_beside
from repcheck.builtin import BUILTIN_MODELS, ensure_gguf
from repcheck.errors import RepcheckError
from repcheck.models import load_model


def test_corrupt_cached_gguf_is_refused(tmp_path):
    m = BUILTIN_MODELS["smollm2-135m"]
    m.dir.mkdir(parents=True)
    m.gguf_path.write_bytes(b"GGUF" + b"\0" * 1000)  # truncated / wrong content
    with pytest.raises(RepcheckError, match="corrupt or truncated"):
        ensure_gguf(m)
    with pytest.raises(RepcheckError, match="sha256 mismatch"):
        load_model("smollm2-135m", device="cpu")


def test_converted_marker_must_match_source(tmp_path):
    m = BUILTIN_MODELS["smollm2-135m"]
    m.converted_dir.mkdir(parents=True)
    (m.converted_dir / "repcheck.json").write_text(json.dumps({"source_sha256": "0" * 64}))
    assert not m.is_converted()
    (m.converted_dir / "repcheck.json").write_text(json.dumps({"source_sha256": m.sha256}))
    assert m.is_converted()


def test_atomic_write_and_publish(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]  # no temp files left
    final = tmp_path / "d"
    for content in ("first", "second"):
        tmp = temp_dir_beside(final)
        (tmp / "f").write_text(content)
        publish_dir(tmp, final)
    assert (final / "f").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "d"]


def test_cached_sha256_is_remembered_and_invalidated(tmp_path, monkeypatch):
    import hashlib
    import os

    from repcheck import hashing

    f = tmp_path / "weights.bin"
    f.write_bytes(b"abc")
    calls = []
    real = hashing.sha256_file
    monkeypatch.setattr(hashing, "sha256_file", lambda p: calls.append(p) or real(p))
    assert hashing.cached_sha256(f) == hashlib.sha256(b"abc").hexdigest()
    assert hashing.cached_sha256(f) == hashlib.sha256(b"abc").hexdigest()
    assert len(calls) == 1  # the second call came from the cache
    f.write_bytes(b"abcd")
    os.utime(f, ns=(1, 1))  # a changed file, even with an old timestamp, has a new size
    assert hashing.cached_sha256(f) == hashlib.sha256(b"abcd").hexdigest() and len(calls) == 2
