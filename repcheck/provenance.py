"""The versions every report records, so a number can be traced to what produced it."""

from __future__ import annotations

import platform


def versions() -> dict[str, str]:
    """repcheck, torch, transformers and Python versions (imports torch and transformers)."""
    import torch
    import transformers

    from . import __version__

    return {
        "repcheck_version": __version__,
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "python_version": platform.python_version(),
    }
