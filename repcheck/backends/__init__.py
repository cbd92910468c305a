"""Where the model runs: one protocol (``base.Backend``), one module per engine.

The probe, compare, diff and the gate ask a backend to tokenize, score sequences and
generate; they never touch an engine directly. This package owns model specs (``spec``),
the built-in model cache (``builtin``, ``cache``), weight hashing (``weights``) and the
engines: ``hf`` (transformers, in-process; the default), ``vllm_engine`` (vLLM's offline
engine), ``openai`` (any OpenAI-compatible completions server) and ``llamacpp`` (a GGUF file
run quantized by llama.cpp).
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import RepcheckError
from ..progress import ProgressCallback
from .base import Backend, Capabilities, ContextWindow, RawGeneration, Scored
from .builtin import BUILTIN_MODELS, DEFAULT_MODEL

#: backend name -> (module, optional extra that installs what it needs)
BACKENDS: dict[str, tuple[str, str | None]] = {
    "hf": ("repcheck.backends.hf", None),
    "openai": ("repcheck.backends.openai", "openai"),
    "vllm": ("repcheck.backends.vllm_engine", "vllm"),
    "llamacpp": ("repcheck.backends.llamacpp", "llamacpp"),
}


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

    ``options`` are the backend's own (``hf``: ``attn_implementation``, ``device_map``;
    ``openai``: ``base_url``, ``tokenizer``, ``concurrency``, ``timeout``, ``retries``, and
    the spec is the served model's name; ``vllm``: ``tensor_parallel_size``,
    ``gpu_memory_utilization``, ``max_model_len``; ``llamacpp``: ``tokenizer``, ``n_ctx``,
    ``n_threads``, ``n_gpu_layers``).
    """
    if backend not in BACKENDS:
        raise RepcheckError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}", param="backend")
    if backend == "hf":
        from .hf import load_hf

        return load_hf(spec, dtype=dtype, device=device, progress=progress, **options)
    if backend == "openai":
        from .openai import load_openai

        if dtype != "float32" or device not in ("auto", "cpu"):
            raise RepcheckError(
                "the openai backend runs the model where the server runs it: dtype and device are the server's",
                param="dtype" if dtype != "float32" else "device",
            )
        return load_openai(spec, progress=progress, **options)
    if backend == "vllm":
        from .vllm_engine import load_vllm

        return load_vllm(spec, dtype=dtype, device=device, progress=progress, **options)
    if backend == "llamacpp":
        from .llamacpp import load_llamacpp

        if dtype != "float32":
            raise RepcheckError(
                "the llamacpp backend computes in the GGUF file's own types: leave --dtype at float32",
                param="dtype",
            )
        return load_llamacpp(spec, device=device, progress=progress, **options)
    raise AssertionError(backend)  # pragma: no cover


def setting_keys(backend: str) -> frozenset[str]:
    """The decoding keys a backend can apply while generating (known before any model loads)."""
    if backend == "hf":
        from ..decoding import KEYS

        return frozenset(KEYS)
    return importlib.import_module(BACKENDS[backend][0]).SETTING_KEYS


def backends_supporting(keys: list[str]) -> list[str]:
    """Names of the backends that can apply every one of these decoding keys."""
    return [name for name in BACKENDS if set(keys) <= setting_keys(name)]


__all__ = [
    "BACKENDS",
    "BUILTIN_MODELS",
    "DEFAULT_MODEL",
    "Backend",
    "Capabilities",
    "ContextWindow",
    "RawGeneration",
    "Scored",
    "backends_supporting",
    "load_model",
    "setting_keys",
]
