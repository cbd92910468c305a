"""GGUF files turned into safetensors for transformers, once per file content.

transformers reads a GGUF by dequantizing every tensor (about 15 s for the built-in model,
minutes for larger ones); repcheck does that once, saves the float32 result with its tokenizer
and generation config as a plain checkpoint, and loads that afterwards (a memory-mapped read).
Conversions are keyed by the GGUF's sha256, so a file given by path is converted once however
often it is used, and a changed file is converted again:

* the built-in alias: beside its GGUF (``models/<alias>/hf``);
* any other GGUF: ``<cache>/converted/<first 16 hex digits of its sha256>``.

Each conversion carries ``repcheck.json`` (the source digest and every file's size); one whose
files changed size since is converted again.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..atomic import atomic_write_text, publish_dir, temp_dir_beside
from ..errors import RepcheckError
from ..progress import ProgressCallback
from .builtin import BUILTIN_MODELS
from .cache import cache_dir
from .spec import ResolvedSpec, one_line

MARKER = "repcheck.json"


def conversion_dir(target: ResolvedSpec) -> Path:
    """Where the conversion of a GGUF spec lives (see the module docstring)."""
    if target.source == "builtin":
        return BUILTIN_MODELS[target.spec].converted_dir
    if not target.sha256:  # pragma: no cover - resolve() always hashes a GGUF
        raise AssertionError("a GGUF spec without its digest")
    return cache_dir() / "converted" / target.sha256[:16]


def is_converted(directory: Path, sha256: str) -> bool:
    """A finished conversion of the GGUF with this digest whose files are all still their size."""
    try:
        marker = json.loads((directory / MARKER).read_text())
        if marker["source_sha256"] != sha256:
            return False
        sizes = marker.get("file_sizes")
        if not isinstance(sizes, dict) or not sizes:
            return False
        return all((directory / name).stat().st_size == size for name, size in sizes.items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def hf_directory(target: ResolvedSpec, progress: ProgressCallback | None = None) -> str:
    """What ``from_pretrained`` loads for a resolved spec: the conversion of a GGUF (made now
    if needed), else the spec's own directory or hub id."""
    if not target.gguf_file:
        return target.directory
    return str(ensure_converted(target, progress))


def ensure_converted(target: ResolvedSpec, progress: ProgressCallback | None = None) -> Path:
    """The conversion directory of a GGUF spec, converting it first if needed."""
    dest = conversion_dir(target)
    if is_converted(dest, target.sha256 or ""):
        return dest
    gguf = Path(target.path)
    if progress:
        progress(f"converting {gguf.name} to safetensors (once per file)", 0, 0)
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .hf_utils import quiet_transformers

    with quiet_transformers(gguf=True):  # transformers' own bars; we report progress ourselves
        try:
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        except Exception as err:  # noqa: BLE001 - a corrupt file or an architecture transformers cannot read
            raise RepcheckError(
                f"{target.spec} is not a GGUF file transformers can read (corrupt or truncated?): {one_line(err)}"
            ) from None
        # A GGUF-loaded model refuses save_pretrained; copy its weights into a plain model
        # built from the same config (minus the GGUF quantization marker).
        config = quantized.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        plain.load_state_dict(quantized.state_dict(), strict=True)
        plain.generation_config = quantized.generation_config
        del quantized

        tmp = None
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = temp_dir_beside(dest)
            plain.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            sizes = {p.name: p.stat().st_size for p in sorted(tmp.iterdir()) if p.is_file()}
            marker = {
                "source": str(gguf) if target.source != "builtin" else BUILTIN_MODELS[target.spec].member,
                "source_sha256": target.sha256,
                "transformers_version": transformers.__version__,
                "file_sizes": sizes,
            }
            atomic_write_text(tmp / MARKER, json.dumps(marker, indent=2))
            publish_dir(tmp, dest)
        except OSError as err:
            raise RepcheckError(f"cannot write the converted model to {dest}: {err.strerror or err}") from None
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
    return dest
