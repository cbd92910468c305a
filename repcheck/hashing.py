"""sha256 of weight files, remembered between runs.

Hashing a multi-gigabyte checkpoint on every probe would cost seconds to minutes, so the
digest of each file is kept in ``<cache>/sha256.json``, keyed by absolute path and
invalidated when the file's size or modification time changes.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .atomic import atomic_write_text
from .cache import cache_dir


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def cached_sha256(path: str | os.PathLike) -> str:
    """sha256 of ``path``, from the cache when the file has not changed since it was hashed."""
    path = Path(path).resolve()
    st = path.stat()
    key, stamp = str(path), [st.st_size, st.st_mtime_ns]
    store = cache_dir() / "sha256.json"
    try:
        known = json.loads(store.read_text())
    except (OSError, ValueError):
        known = {}
    entry = known.get(key)
    if isinstance(entry, dict) and entry.get("stamp") == stamp and isinstance(entry.get("sha256"), str):
        return entry["sha256"]
    digest = sha256_file(path)
    known[key] = {"stamp": stamp, "sha256": digest}
    try:
        store.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(store, json.dumps(known, indent=1))
    except OSError:
        pass  # a read-only cache only costs the hashing time next run
    return digest
