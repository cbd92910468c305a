"""Atomic file writes: write to a temporary sibling, then rename over the target.

A reader never sees a half-written file, and a run killed mid-write leaves at most a stray
temporary file (named ``.<name>.tmp-*``), never a truncated target.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        _remove_quietly(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def temp_dir_beside(path: str | os.PathLike) -> Path:
    """A fresh temporary directory in the same folder as ``path`` (so renames stay atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))


def publish_dir(tmp_dir: Path, final_dir: Path) -> None:
    """Move a finished temporary directory into place as ``final_dir``.

    If ``final_dir`` already exists (another process finished first), the older copy is
    replaced: both were built from the same verified input.
    """
    try:
        os.replace(tmp_dir, final_dir)
    except OSError:
        # os.replace cannot replace a non-empty directory: move the old one aside first.
        old = temp_dir_beside(final_dir)
        os.replace(final_dir, old / "old")
        os.replace(tmp_dir, final_dir)
        shutil.rmtree(old, ignore_errors=True)


def _remove_quietly(path: str | os.PathLike) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
