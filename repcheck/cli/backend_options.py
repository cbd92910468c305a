"""The backend options, declared once for every command that loads a model.

``@with_backend_options`` adds ``--backend`` and every backend's own options (``--base-url``,
``--tokenizer``, ``--max-model-len``, ...) to a command, in place of its parameter ``load``,
and hands the command one ``ModelLoader`` instead: the checked choice, ready to load a model.
An option that goes with another backend is refused here, before any model work, naming the
backend it goes with (the registry says which). Typer has no option groups; this decorator
is the one place the group is written.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer

from ..backends.hf import ATTN_IMPLEMENTATIONS
from ..backends.registry import BACKENDS, NAMES, check_options, entry
from .options import choices

BackendName = choices("BackendName", NAMES)
AttnImplementation = choices("AttnImplementation", ATTN_IMPLEMENTATIONS)

_BACKEND_HELP = "Where the model runs: " + "; ".join(f"{e.name}: {e.summary}" for e in BACKENDS.values()) + "."

#: name -> (annotation, default); each option's help says which backend it goes with
PARAMS: dict[str, tuple[Any, Any]] = {
    "backend": (Annotated[BackendName, typer.Option("--backend", help=_BACKEND_HELP)], BackendName.hf),
    "base_url": (
        Annotated[
            str | None,
            typer.Option(
                "--base-url",
                envvar="REPCHECK_BASE_URL",
                show_default=False,
                help="openai backend: the server, e.g. http://127.0.0.1:8000/v1. The API key is read from "
                "$REPCHECK_API_KEY or $OPENAI_API_KEY, never from the command line.",
            ),
        ],
        None,
    ),
    "tokenizer": (
        Annotated[
            str | None,
            typer.Option(
                "--tokenizer",
                show_default=False,
                help="openai and llamacpp backends: the model's Hugging Face tokenizer (directory or hub id); "
                "default: the server's model name (openai) or the one in the GGUF file (llamacpp). Checked "
                "against the engine's own tokenization.",
            ),
        ],
        None,
    ),
    "concurrency": (
        Annotated[
            int | None,
            typer.Option(
                "--concurrency", min=1, max=256, show_default=False,
                help="openai backend: requests in flight (default 4).",
            ),
        ],
        None,
    ),  # fmt: skip
    "timeout": (
        Annotated[
            float | None,
            typer.Option(
                "--timeout", min=0.1, max=3600, show_default=False,
                help="openai backend: seconds to wait for one answer (default 60).",
            ),
        ],
        None,
    ),  # fmt: skip
    "retries": (
        Annotated[
            int | None,
            typer.Option(
                "--retries", min=0, max=20, show_default=False,
                help="openai backend: retries of a request after a connection error, timeout or 5xx (default 3).",
            ),
        ],
        None,
    ),  # fmt: skip
    "attn_implementation": (
        Annotated[
            AttnImplementation | None,
            typer.Option(
                "--attn-implementation",
                show_default=False,
                help="hf backend: the attention kernel passed to from_pretrained (default: transformers' choice).",
            ),
        ],
        None,
    ),
    "device_map": (
        Annotated[
            bool,
            typer.Option(
                "--device-map-auto", help="hf backend: spread the model over every GPU with accelerate (device_map='auto')."
            ),
        ],
        False,
    ),
    "tensor_parallel_size": (
        Annotated[
            int | None,
            typer.Option(
                "--tensor-parallel-size", min=1, show_default=False, help="vllm backend: GPUs to split the model over."
            ),
        ],
        None,
    ),
    "gpu_memory_utilization": (
        Annotated[
            float | None,
            typer.Option(
                "--gpu-memory-utilization", min=0.01, max=1.0, show_default=False,
                help="vllm backend: share of GPU memory vLLM may reserve (its default: 0.9).",
            ),
        ],
        None,
    ),  # fmt: skip
    "max_model_len": (
        Annotated[
            int | None,
            typer.Option(
                "--max-model-len", min=2, show_default=False,
                help="vllm and llamacpp backends: the context the engine reserves memory for (default: the model's, "
                "at most 4096 for llamacpp).",
            ),
        ],
        None,
    ),  # fmt: skip
}


@dataclass(frozen=True)
class ModelLoader:
    """The backend a command runs on and its options, checked; ``load`` opens a model."""

    backend: str = "hf"
    options: dict[str, Any] = field(default_factory=dict)

    def load(self, spec: str, *, dtype: str = "float32", device: str = "auto", progress=None):
        from ..backends import load_model

        return load_model(spec, backend=self.backend, dtype=dtype, device=device, progress=progress, **self.options)

    def run_dtype(self, requested: str) -> str:
        """The dtype a run reports on this backend (a server's and a GGUF file's are their own)."""
        return entry(self.backend).run_dtype(requested)

    @classmethod
    def from_cli(cls, values: dict[str, Any], from_environment: set[str]) -> ModelLoader:
        """The command line's values; an option that came from an environment variable
        ($REPCHECK_BASE_URL) is dropped for backends that do not take it (it is set for other
        runs), while the same option on the command line is refused."""
        backend = values.pop("backend").value
        options = {
            "base_url": values["base_url"],
            "tokenizer": values["tokenizer"],
            "concurrency": values["concurrency"],
            "timeout": values["timeout"],
            "retries": values["retries"],
            "attn_implementation": values["attn_implementation"].value if values["attn_implementation"] else None,
            "device_map": "auto" if values["device_map"] else None,
            "tensor_parallel_size": values["tensor_parallel_size"],
            "gpu_memory_utilization": values["gpu_memory_utilization"],
            "max_model_len": values["max_model_len"],
        }
        takes = set(entry(backend).options)
        options = {k: v for k, v in options.items() if v is not None and (k in takes or k not in from_environment)}
        check_options(backend, options)
        return cls(backend, options)


def with_backend_options(func: Callable) -> Callable:
    """Replace the command's parameter ``load`` with the backend options (see the module
    docstring); the command receives a ``ModelLoader`` as ``load``."""
    signature = inspect.signature(func, eval_str=True)
    if "load" not in signature.parameters:  # pragma: no cover - a programming error
        raise TypeError(f"{func.__name__} has no parameter 'load' to put the backend options in")
    params = []
    for p in signature.parameters.values():
        if p.name == "load":
            params += [
                inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=annot)
                for name, (annot, default) in PARAMS.items()
            ]
        else:
            params.append(p)
    params.append(inspect.Parameter("backend_ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context))

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        ctx = kwargs.pop("backend_ctx")
        values = {name: kwargs.pop(name) for name in PARAMS}
        from_environment = {name for name in PARAMS if _source(ctx, name) == "ENVIRONMENT"}
        kwargs["load"] = ModelLoader.from_cli(values, from_environment)
        return func(*args, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper


def _source(ctx, name: str) -> str | None:
    """Where a parameter's value came from (click's ParameterSource name), if known."""
    try:
        source = ctx.get_parameter_source(name)
    except (AttributeError, KeyError):
        return None
    return getattr(source, "name", None)


__all__ = ["AttnImplementation", "BackendName", "ModelLoader", "with_backend_options"]
