"""Reusable option types shared by the commands."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ..backends.builtin import DEFAULT_MODEL


class Dtype(str, Enum):
    float32 = "float32"
    bfloat16 = "bfloat16"
    float16 = "float16"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


class Convention(str, Enum):
    repcheck = "repcheck"
    ditto = "ditto"


class FigureFormat(str, Enum):
    png = "png"
    svg = "svg"
    pdf = "pdf"


ModelOpt = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        envvar="REPCHECK_MODEL",
        show_default=True,
        help="Built-in alias (see `repcheck models list`), a local model directory, a .gguf file, "
        "or a Hugging Face hub id (needs the hub).",
    ),
]
DtypeOpt = Annotated[
    Dtype,
    typer.Option(
        "--dtype",
        help="Weights and activations dtype. float32 is exact; bfloat16 is 2-3x faster on CPUs "
        "with AMX but moved single-token probabilities by up to 0.1 in our measurements.",
    ),
]
DeviceOpt = Annotated[Device, typer.Option("--device", help="Where to run: auto picks cuda when present.")]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        "--threads",
        min=1,
        show_default=False,
        help="CPU threads for torch (also $REPCHECK_THREADS). Default: the cores that other processes "
        "left idle while repcheck started, so a busy machine does not slow it to a crawl.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document to stdout (progress stays on stderr).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress or messages on stderr.")]
OutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out",
        "-o",
        help="Write CSVs, summary.json and figures into exactly this directory (new, empty, or an "
        "earlier repcheck run, whose files are replaced).",
    ),
]
OverwriteOpt = Annotated[
    bool,
    typer.Option("--overwrite", help="Write into an --out directory that holds other files (same names are replaced)."),
]
FormatOpt = Annotated[FigureFormat, typer.Option("--format", help="Figure format for --out.")]
RepeatsOpt = Annotated[int, typer.Option("--repeats", "-k", min=1, help="K: how many copies of the sentence.")]
PrefixOpt = Annotated[
    str | None, typer.Option("--prefix", help="Text placed after the BOS token, before the first copy.")
]
BatchOpt = Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Sentences per forward pass.")]
LimitOpt = Annotated[
    int | None,
    typer.Option("--limit", min=1, show_default=False, help="Use only the first N sentences (or prompts) of the file."),
]
SentenceFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--file",
        "-f",
        help="A set of sentences: .txt (one per line, # comments), .jsonl (text field), .json (array) "
        "or .csv (text column).",
    ),
]

DEFAULT = DEFAULT_MODEL
AblateHeadsOpt = Annotated[
    str | None,
    typer.Option(
        "--ablate-heads",
        help="Zero these heads' outputs while probing: LAYER.HEAD[,LAYER.HEAD...] (0-based), e.g. from repcheck explain.",
    ),
]


class BackendName(str, Enum):
    hf = "hf"
    vllm = "vllm"
    openai = "openai"
    llamacpp = "llamacpp"


class AttnImplementation(str, Enum):
    eager = "eager"
    sdpa = "sdpa"
    flash_attention_2 = "flash_attention_2"


BackendOpt = Annotated[
    BackendName,
    typer.Option(
        "--backend",
        help="Where the model runs: hf (transformers, in-process), vllm (vLLM's offline engine), openai (an "
        "OpenAI-compatible completions server such as vLLM; --model is then the served model's name) or "
        "llamacpp (a .gguf file run quantized by llama.cpp).",
    ),
]
BaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        envvar="REPCHECK_BASE_URL",
        show_default=False,
        help="openai backend: the server, e.g. http://127.0.0.1:8000/v1. The API key is read from "
        "$REPCHECK_API_KEY or $OPENAI_API_KEY, never from the command line.",
    ),
]
TokenizerOpt = Annotated[
    str | None,
    typer.Option(
        "--tokenizer",
        show_default=False,
        help="openai and llamacpp backends: the model's Hugging Face tokenizer (directory or hub id); "
        "default: the server's model name (openai) or the one in the GGUF file (llamacpp). Checked against "
        "the engine's own tokenization.",
    ),
]
AttnOpt = Annotated[
    AttnImplementation | None,
    typer.Option(
        "--attn-implementation",
        show_default=False,
        help="hf backend: the attention kernel passed to from_pretrained (default: transformers' choice).",
    ),
]
DeviceMapOpt = Annotated[
    bool,
    typer.Option(
        "--device-map-auto",
        help="hf backend: spread the model over every GPU with accelerate (device_map='auto').",
    ),
]


TensorParallelOpt = Annotated[
    int | None,
    typer.Option(
        "--tensor-parallel-size", min=1, show_default=False, help="vllm backend: GPUs to split the model over."
    ),
]
GpuMemoryOpt = Annotated[
    float | None,
    typer.Option(
        "--gpu-memory-utilization",
        min=0.01,
        max=1.0,
        show_default=False,
        help="vllm backend: share of GPU memory vLLM may reserve (its default: 0.9).",
    ),
]
MaxModelLenOpt = Annotated[
    int | None,
    typer.Option(
        "--max-model-len",
        min=2,
        show_default=False,
        help="vllm and llamacpp backends: the context the engine reserves memory for (default: the model's, "
        "at most 4096 for llamacpp).",
    ),
]

#: option -> the backends it goes with
BACKEND_ONLY = {
    "--base-url": ("openai",),
    "--tokenizer": ("openai", "llamacpp"),
    "--attn-implementation": ("hf",),
    "--device-map-auto": ("hf",),
    "--tensor-parallel-size": ("vllm",),
    "--gpu-memory-utilization": ("vllm",),
    "--max-model-len": ("vllm", "llamacpp"),
}


def backend_options(
    backend: BackendName,
    base_url: str | None = None,
    tokenizer: str | None = None,
    attn: AttnImplementation | None = None,
    device_map_auto: bool = False,
    tensor_parallel_size: int | None = None,
    gpu_memory_utilization: float | None = None,
    max_model_len: int | None = None,
) -> dict:
    """The backend's load options, checked before any model loads: an option that goes with
    another backend is refused, naming the backend it goes with."""
    from ..errors import RepcheckError

    given = {
        "--base-url": ("base_url", base_url),
        "--tokenizer": ("tokenizer", tokenizer),
        "--attn-implementation": ("attn_implementation", attn.value if attn is not None else None),
        "--device-map-auto": ("device_map", "auto" if device_map_auto else None),
        "--tensor-parallel-size": ("tensor_parallel_size", tensor_parallel_size),
        "--gpu-memory-utilization": ("gpu_memory_utilization", gpu_memory_utilization),
        "--max-model-len": ("max_model_len", max_model_len),
    }
    options: dict = {}
    for flag, (key, value) in given.items():
        if value is None or (flag == "--base-url" and backend is not BackendName.openai):
            continue  # $REPCHECK_BASE_URL may be set for other runs: only openai reads it
        if backend.value not in BACKEND_ONLY[flag]:
            raise RepcheckError(f"{flag} goes with --backend {' or '.join(BACKEND_ONLY[flag])}")
        options[key] = value
    if backend is BackendName.openai and not base_url:
        raise RepcheckError("--backend openai needs --base-url http://HOST:PORT/v1 (or $REPCHECK_BASE_URL)")
    return options


def backend_dtype(backend: BackendName, dtype: str) -> str:
    """The dtype a run on this backend reports: a server's and a GGUF file's are their own."""
    return {"openai": "server", "llamacpp": "gguf"}.get(backend.value, dtype)
