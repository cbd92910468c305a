"""Reusable option types shared by the commands, every closed choice built from the library's
own tuple (a value is written once, where the library defines it)."""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ..backends.builtin import DEFAULT_MODEL
from ..backends.hf_utils import DEVICES, DTYPES
from ..errors import RepcheckError
from ..outputs import FORMATS
from ..results import CONVENTIONS


def choices(name: str, values: Sequence[str]) -> type[Enum]:
    """A str Enum for Typer from a library tuple; members are the values ("ul-token" is
    ``ul_token``)."""
    return Enum(name, [(v.replace("-", "_"), v) for v in values], type=str)  # type: ignore[return-value]


Dtype = choices("Dtype", DTYPES)
Device = choices("Device", DEVICES)
Convention = choices("Convention", CONVENTIONS)
FigureFormat = choices("FigureFormat", FORMATS)


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
        "or .csv (text column); or a shipped set by name: wiki_en, zh.",
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
LegitOpt = Annotated[
    str | None,
    typer.Option(
        "--legit",
        show_default=False,
        metavar="[FILE]",
        help="Also run a legitimate-repetition suite (copy on request, quotes, lists, code, tables, JSON, refrains, "
        "translation, say it again): --legit alone is the shipped suite, --legit FILE.jsonl your own "
        "(format: docs/legit.md). What a cure breaks, beside what it fixes.",
    ),
]


def read_legit(value: str | None):
    """The legit suite asked for, read and checked now (before any model loads), or None."""
    if value is None:
        return None
    from ..legit import load_legit_suite

    return load_legit_suite(value)


def check_legit_models(suite, model_specs: list[str], backend: str) -> None:
    """A suite with chat cases is refused for a model whose files show that it has no chat
    template (once the specs are known to exist; a served model is asked when it is loaded)."""
    from ..backends.registry import entry
    from ..backends.spec import chat_template_on_disk

    if suite is not None and suite.needs_chat_template and entry(backend).local_specs:
        for spec in model_specs:
            suite.require_chat_template(chat_template_on_disk(spec), spec)


def check_chat_models(model_specs: list[str], backend: str) -> None:
    """Chat prompts are refused, before any model loads, for a model whose files show that it
    has no chat template (a served model is asked when it is loaded)."""
    from ..backends.registry import entry
    from ..backends.spec import chat_template_on_disk

    if entry(backend).local_specs:
        for spec in model_specs:
            if chat_template_on_disk(spec) is False:  # None: only loading the tokenizer can tell
                raise RepcheckError(
                    f"{spec} has no chat template, so --chat prompts cannot be rendered; use plain-text prompts or a "
                    "chat model",
                    param="chat",
                )


# ---- chat and the loop guard -------------------------------------------------------------------
ChatOpt = Annotated[
    bool,
    typer.Option(
        "--chat",
        help="Render every prompt with the model's chat template (add_generation_prompt): a plain line is one user "
        'turn; a .jsonl line may be a whole {"messages": [...]} conversation (the shipped chat_en, chat_zh, '
        "reasoning_en, reasoning_zh). Refused for a model without a template.",
    ),
]
StopOnLoopOpt = Annotated[
    bool,
    typer.Option(
        "--stop-on-loop",
        help="End a continuation as soon as a verbatim loop is confirmed (finish 'loop'): a looping prompt costs a "
        "few periods, not the whole budget. Early on hf, llamacpp, vllm and openai (streamed); cut afterwards on "
        "sglang and tgi.",
    ),
]
LoopPeriodOpt = Annotated[
    int, typer.Option("--loop-max-period", min=1, max=4096, help="Loop guard: the longest cycle looked for, in tokens.")
]
LoopRepeatsOpt = Annotated[
    int, typer.Option("--loop-min-repeats", min=2, help="Loop guard: copies of the cycle before a loop is confirmed.")
]
LoopTokensOpt = Annotated[
    int,
    typer.Option("--loop-min-tokens", min=1, help="Loop guard: tokens in the periodic tail before it is confirmed."),
]


def guard_config(stop: bool, max_period: int, min_repeats: int, min_tokens: int, max_new_tokens: int):
    """The loop guard the options ask for (None without --stop-on-loop), checked against -n."""
    from ..guard import DEFAULT_GUARD, GuardConfig

    given = (max_period, min_repeats, min_tokens) != (
        DEFAULT_GUARD.max_period,
        DEFAULT_GUARD.min_repeats,
        DEFAULT_GUARD.min_tokens,
    )
    if not stop:
        if given:
            raise RepcheckError("--loop-max-period, --loop-min-repeats and --loop-min-tokens go with --stop-on-loop")
        return None
    config = GuardConfig(max_period, min_repeats, min_tokens)
    config.check_reachable(max_new_tokens)
    return config
