"""Where repcheck keeps downloaded and converted models.

``$REPCHECK_CACHE`` if set, else the platform's user cache directory
(``~/.cache/repcheck`` on Linux).
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    env = os.environ.get("REPCHECK_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("repcheck", appauthor=False))


def models_dir() -> Path:
    return cache_dir() / "models"
