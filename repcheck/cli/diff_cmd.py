"""`repcheck diff`: the same probe on two or more checkpoints, side by side."""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import RepcheckError
from . import options as opt
from .backend_options import ModelLoader, with_backend_options
from .console import emit, fmt_interval, handle_errors, progress_callback, stdout_console
from .groups import Outputs, with_output_options


@handle_errors
@with_output_options
@with_backend_options
def diff_command(
    sentence: Annotated[str | None, typer.Argument(help="The sentence to repeat.", show_default=False)] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="A model spec (alias, directory, .gguf or hub id; with --backend openai, a served model's "
            "name); give two or more.",
        ),
    ] = None,
    file: opt.SentenceFileOpt = None,
    limit: opt.LimitOpt = None,
    repeats: opt.RepeatsOpt = 10,
    prefix: opt.PrefixOpt = None,
    chat: Annotated[
        bool,
        typer.Option(
            "--chat",
            help="Probe in chat form: the copies are each model's answer to one user turn, through its chat template.",
        ),
    ] = False,
    batch_size: opt.BatchOpt = 8,
    legit: opt.LegitOpt = None,
    dtype: opt.DtypeOpt = opt.Dtype.float32,
    load: ModelLoader = ModelLoader(),
    outputs: Outputs = Outputs(),
    json_: opt.JsonOpt = False,
    quiet: opt.QuietOpt = False,
) -> None:
    """Probe two or more checkpoints on the same sentences and show them side by side, with paired deltas against the first model.

    Models are loaded, probed and freed one at a time, so two large checkpoints never need to fit in memory together. Every model runs on the same --backend (e.g. two GGUF quantizations on llamacpp). With --legit, each model also runs the legitimate-repetition suite greedily: what a fine-tune broke beside what it fixed.
    """
    from ..backends.registry import check_model_spec
    from ..diff import diff_models
    from ..probing import CHAT_USER
    from ..sentences import read_sentences

    models = model or []
    if len(models) < 2:
        raise RepcheckError("give two or more --model options to compare")
    for m in models:
        check_model_spec(load.backend, m)
    if (sentence is None) == (file is None):
        raise RepcheckError("give a SENTENCE or --file FILE (one of them)")
    if sentence is not None and not sentence.strip():
        raise RepcheckError("the sentence is empty; give a sentence with at least one token")
    if limit is not None and file is None:
        raise RepcheckError("--limit goes with --file")
    texts = read_sentences(file, limit=limit) if file is not None else [sentence]
    legit_suite = opt.read_legit(legit)
    opt.check_legit_models(legit_suite, models, load.backend)
    if chat:
        if prefix:
            raise RepcheckError("--chat puts the copies after a user turn: not with --prefix")
        opt.check_chat_models(models, load.backend)
    outputs.check()
    with progress_callback(quiet) as cb:
        load.apply_threads()
        result = diff_models(
            models,
            texts,
            repeats=repeats,
            prefix=prefix,
            batch_size=batch_size,
            legit=legit_suite,
            chat=CHAT_USER if chat else None,
            progress=cb,
            dtype=dtype.value,
            device=load.device,
            backend=load.backend,
            **load.options,
        )
        written = outputs.write(result)
    emit(result, json_, quiet, _print, outputs.directory, written)


def _print(result) -> None:
    from rich.markup import escape
    from rich.table import Table

    from ..metric_info import SUMMARY_METRICS, label

    console = stdout_console()
    n = len(result.runs[0].sentences)
    console.print(
        escape(
            f"{n} sentence{'s' if n > 1 else ''} × K={result.runs[0].repeats}"
            + (f": mean [95% interval over N={n} sentences]; Δ: paired differences" if n > 1 else "")
        ),
        soft_wrap=True,
    )
    table = Table()
    table.add_column("metric")
    for lab, run in zip(result.labels, result.runs):
        table.add_column(escape(f"{lab} ({run.dtype})"), justify="right", overflow="fold")
    for lab in result.labels[1:]:
        table.add_column(escape(f"Δ {lab.split(':')[0]} − {result.labels[0].split(':')[0]}"), justify="right")
    deltas = {(d["model"], d["metric"]): d for d in result.deltas()}
    for m in SUMMARY_METRICS:
        cells = []
        bounded = m != "tp_rise"
        for run in result.runs:
            s = run.summary()[m]
            cells.append(fmt_interval(s["mean"], *s["ci95"], n, probability=bounded))
        for lab in result.labels[1:]:
            d = deltas[(lab, m)]
            cells.append(fmt_interval(d["delta"], *d["ci95"], n, probability=False, signed=True))
        table.add_row(f"{m} ({label(m)})", *cells)
    if result.legit:  # what each model breaks: the legitimate-repetition suite, greedy
        cases = len(result.legit[0].cases)
        cells = [fmt_interval(lg.pass_rate, *lg.ci95, cases) for lg in result.legit]
        cells += [fmt_interval(d["delta"], *d["ci95"], cases, probability=False, signed=True)
                  for d in result.legit_deltas()]  # fmt: skip
        table.add_row(f"legit pass ({cases} cases, greedy)", *cells)
    console.print(table)
