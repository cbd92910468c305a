"""Where the model runs: one protocol (``base.Backend``), one table of engines (``registry``),
one module per engine.

The probe, compare, diff and the gate ask a backend to tokenize, score sequences and
generate; they never touch an engine directly. This package owns model specs (``spec``),
the built-in model (``builtin``: fetch and verify; ``convert``: GGUF to safetensors, once),
the cache (``cache``), weight hashing (``weights``), what every engine needs from transformers
(``hf_utils``), padded batches (``batching``), what vLLM's API speaks (``served``), and the
engines: ``hf`` (transformers, in-process; the default, with ``hf_generate`` and
``hf_hooks``), ``vllm_engine`` (vLLM's offline engine), ``openai`` (an OpenAI-compatible
server) and ``llamacpp`` (a GGUF file run quantized by llama.cpp).
"""

from __future__ import annotations

from typing import Any

from ..progress import ProgressCallback
from .base import (
    Backend,
    Capabilities,
    ContextWindow,
    GenerationRequest,
    HookableBackend,
    LogitsRow,
    RawGeneration,
    Scored,
    Units,
)
from .builtin import BUILTIN_MODELS, DEFAULT_MODEL
from .registry import BACKENDS, backends_supporting, check_options, check_supported, entry, setting_keys


def load_model(
    spec: str = DEFAULT_MODEL,
    *,
    backend: str = "hf",
    dtype: str = "float32",
    device: str = "auto",
    progress: ProgressCallback | None = None,
    **options: Any,
) -> Backend:
    """Open a model on a backend: ``load_model()`` is the built-in SmolLM2 on transformers.

    ``options`` are the backend's own (``registry.BACKENDS[name].options``): ``hf``:
    ``attn_implementation``, ``device_map``, ``padding_side``; ``vllm``:
    ``tensor_parallel_size``, ``gpu_memory_utilization``, ``max_model_len``; ``openai``:
    ``base_url``, ``tokenizer``, ``concurrency``, ``timeout``, ``retries`` (and the spec is
    the served model's name); ``llamacpp``: ``tokenizer``, ``max_model_len`` (llama.cpp's
    n_ctx), ``n_threads``. An option of another backend is refused before anything loads.
    """
    e = entry(backend)
    check_options(backend, options)
    given = {k: v for k, v in options.items() if v is not None}
    return e.load(spec, dtype=dtype, device=device, progress=progress, **given)


__all__ = [
    "BACKENDS",
    "BUILTIN_MODELS",
    "DEFAULT_MODEL",
    "Backend",
    "Capabilities",
    "ContextWindow",
    "GenerationRequest",
    "HookableBackend",
    "LogitsRow",
    "RawGeneration",
    "Scored",
    "Units",
    "backends_supporting",
    "check_supported",
    "load_model",
    "setting_keys",
]
