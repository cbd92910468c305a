"""Where a command's model runs, declared once for every command that loads one.

``@with_backend_options`` adds ``--device``, ``--threads``, ``--backend`` and every backend's
own options (``--base-url``, ``--tokenizer``, ``--max-model-len``, ...) to a command, in place
of its parameter ``load`` (``groups.option_group``), and hands the command one ``ModelLoader``
instead: the checked choice, ready to load a model. An option that goes with another backend
is refused here, before any model work, naming the backend it goes with (the registry says
which).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

import typer

from ..backends.hf import ATTN_IMPLEMENTATIONS
from ..backends.openai import APIS
from ..backends.registry import BACKENDS, NAMES, check_options, entry
from .groups import option_group
from .options import Device, DeviceOpt, ThreadsOpt, choices

BackendName = choices("BackendName", NAMES)
AttnImplementation = choices("AttnImplementation", ATTN_IMPLEMENTATIONS)
Api = choices("Api", APIS)

_BACKEND_HELP = "Where the model runs: " + "; ".join(f"{e.name}: {e.summary}" for e in BACKENDS.values()) + "."


def _option(kind: Any, flag: str, help: str, default: Any = None, **kwargs: Any) -> tuple[Any, Any]:
    return Annotated[kind, typer.Option(flag, help=help, show_default=default is not None, **kwargs)], default


#: name -> (annotation, default): where the model runs, in the order --help shows them; each
#: backend's own options say which backend they go with
PARAMS: dict[str, tuple[Any, Any]] = {
    "device": (DeviceOpt, Device.auto),
    "threads": (ThreadsOpt, None),
    "backend": _option(BackendName, "--backend", _BACKEND_HELP, BackendName.hf),
    "base_url": _option(
        str | None,
        "--base-url",
        "served backends (openai, sglang, tgi): the server, e.g. http://127.0.0.1:8000/v1 (a query string is "
        "kept). The API key is read from $REPCHECK_API_KEY or $OPENAI_API_KEY, never from the command line.",
        envvar="REPCHECK_BASE_URL",
    ),
    "tokenizer": _option(
        str | None,
        "--tokenizer",
        "served and llamacpp backends: the model's Hugging Face tokenizer (directory or hub id); default: the "
        "served model's name or the one in the GGUF file (llamacpp). Checked against the engine's own "
        "tokenization.",
    ),
    "concurrency": _option(
        int | None, "--concurrency", "served backends: requests in flight (default 4).", min=1, max=256
    ),
    "timeout": _option(
        float | None,
        "--timeout",
        "served backends: seconds to wait for one answer (default 60; a request that times out is not retried).",
        min=0.1,
        max=3600,
    ),
    "retries": _option(
        int | None,
        "--retries",
        "served backends: retries of a request after a connection error, 429 or 5xx (default 3); the first "
        "failure that remains stops every other request.",
        min=0,
        max=20,
    ),
    "api": _option(
        Api | None,
        "--api",
        "openai backend: generate through /v1/completions (default; rendered prompts) or /v1/chat/completions "
        "(conversations as messages, the server applying the chat template: chat-only APIs).",
    ),
    "attn_implementation": _option(
        AttnImplementation | None,
        "--attn-implementation",
        "hf backend: the attention kernel passed to from_pretrained (default: transformers' choice).",
    ),
    "device_map": _option(
        bool,
        "--device-map-auto",
        "hf backend: spread the model over every GPU with accelerate (device_map='auto').",
        False,
    ),  # fmt: skip
    "tensor_parallel_size": _option(
        int | None, "--tensor-parallel-size", "vllm backend: GPUs to split the model over.", min=1
    ),
    "gpu_memory_utilization": _option(
        float | None,
        "--gpu-memory-utilization",
        "vllm backend: share of GPU memory vLLM may reserve (its default: 0.9).",
        min=0.01,
        max=1.0,
    ),
    "max_model_len": _option(
        int | None,
        "--max-model-len",
        "vllm and llamacpp backends: the context the engine reserves memory for (default: the model's, at most "
        "4096 for llamacpp).",
        min=2,
    ),
}


@dataclass(frozen=True)
class ModelLoader:
    """Where a command's model runs (device, threads, backend and its options), checked;
    ``load`` opens a model there."""

    backend: str = "hf"
    options: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"
    threads: int | None = None

    def apply_threads(self) -> None:
        """The thread policy (``--threads``, else the idle cores), before torch starts working."""
        from ..threads import apply_threads

        apply_threads(self.threads)

    def load(self, spec: str, *, dtype: str = "float32", progress=None):
        from ..backends import load_model

        self.apply_threads()
        return load_model(
            spec, backend=self.backend, dtype=dtype, device=self.device, progress=progress, **self.options
        )

    def run_dtype(self, requested: str) -> str:
        """The dtype a run reports on this backend (a server's and a GGUF file's are their own)."""
        return entry(self.backend).run_dtype(requested)

    @classmethod
    def from_cli(cls, values: dict[str, Any], from_environment: set[str]) -> ModelLoader:
        """The command line's values; an option that came from an environment variable
        ($REPCHECK_BASE_URL) is dropped for backends that do not take it (it is set for other
        runs), while the same option on the command line is refused."""
        backend = values["backend"].value
        options = {
            "base_url": values["base_url"],
            "tokenizer": values["tokenizer"],
            "concurrency": values["concurrency"],
            "timeout": values["timeout"],
            "retries": values["retries"],
            "api": values["api"].value if values["api"] else None,
            "attn_implementation": values["attn_implementation"].value if values["attn_implementation"] else None,
            "device_map": "auto" if values["device_map"] else None,
            "tensor_parallel_size": values["tensor_parallel_size"],
            "gpu_memory_utilization": values["gpu_memory_utilization"],
            "max_model_len": values["max_model_len"],
        }
        takes = set(entry(backend).options)
        options = {k: v for k, v in options.items() if v is not None and (k in takes or k not in from_environment)}
        check_options(backend, options)
        return cls(backend, options, values["device"].value, values["threads"])


with_backend_options = option_group("load", PARAMS, ModelLoader.from_cli)

__all__ = ["AttnImplementation", "BackendName", "ModelLoader", "with_backend_options"]
