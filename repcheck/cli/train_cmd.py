"""`repcheck train`: fine-tune the loop out of a model, and show the probe before and after."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import RepcheckError
from ..train.config import ANCHORS, METHODS, PRECISIONS, TrainConfig
from . import options as opt
from .console import emit, fmt, handle_errors, progress_callback, stdout_console

D = TrainConfig()  # the defaults, declared once on the dataclass
Method = opt.choices("Method", METHODS)
Precision = opt.choices("Precision", PRECISIONS)
Anchor = opt.choices("Anchor", ANCHORS)


def field_opt(name: str, *decls: str, **kwargs):
    """An option whose help is the TrainConfig field's."""
    return typer.Option(*decls, help=TrainConfig.help(name), **kwargs)


@handle_errors
def train_command(
    method: Annotated[Method, field_opt("method", "--method")] = Method(D.method),
    data: Annotated[list[Path] | None, field_opt("data", "--data")] = None,
    self_samples: Annotated[int, field_opt("self_samples", "--self-samples", min=0)] = D.self_samples,
    self_requests: Annotated[Path | None, field_opt("self_requests", "--self-requests")] = None,
    self_new_tokens: Annotated[int, field_opt("self_new_tokens", "--self-new-tokens", min=16)] = D.self_new_tokens,
    self_sampling: Annotated[str, field_opt("self_sampling", "--self-sampling")] = D.self_sampling,
    legit_mix: Annotated[float, field_opt("legit_mix", "--legit-mix", min=0.0, max=4.0)] = D.legit_mix,
    plain_mix: Annotated[float, field_opt("plain_mix", "--plain-mix", min=0.0, max=1.0)] = D.plain_mix,
    asked_plain: Annotated[float, field_opt("asked_plain", "--asked-plain", min=0.0, max=4.0)] = D.asked_plain,
    anchor: Annotated[Anchor, field_opt("anchor", "--anchor")] = Anchor(D.anchor),
    end_weight: Annotated[float, field_opt("end_weight", "--end-weight", min=0.0)] = D.end_weight,
    end_scale: Annotated[
        float | None, field_opt("end_scale", "--end-scale", min=0.0, max=1.0, show_default=False)
    ] = None,
    out: Annotated[Path, field_opt("out", "--out", "-o")] = Path(D.out),
    model: opt.ModelOpt = D.model,
    steps: Annotated[int, field_opt("steps", "--steps", min=1)] = D.steps,
    batch_size: Annotated[int, field_opt("batch_size", "--batch-size", "-b", min=1)] = D.batch_size,
    grad_accum: Annotated[int, field_opt("grad_accum", "--grad-accum", min=1)] = D.grad_accum,
    block_size: Annotated[int, field_opt("block_size", "--block-size", min=16)] = D.block_size,
    learning_rate: Annotated[float | None, field_opt("learning_rate", "--lr", show_default=False)] = None,
    lam: Annotated[float, field_opt("lam", "--lambda")] = D.lam,
    free_copies: Annotated[int, field_opt("free_copies", "--free-copies", min=0)] = D.free_copies,
    sentence_starts: Annotated[
        bool, field_opt("sentence_starts", "--sentence-starts/--no-sentence-starts")
    ] = D.sentence_starts,
    spare_ends: Annotated[bool, field_opt("spare_ends", "--spare-ends/--no-spare-ends")] = D.spare_ends,
    chat_samples: Annotated[float, field_opt("chat_samples", "--chat-samples", min=0.0, max=1.0)] = D.chat_samples,
    rep_rate: Annotated[float | None, field_opt("rep_rate", "--rep-rate", show_default=False)] = None,
    alpha: Annotated[float, field_opt("alpha", "--alpha")] = D.alpha,
    gamma: Annotated[float, field_opt("gamma", "--gamma")] = D.gamma,
    lora: Annotated[bool, field_opt("lora", "--lora/--no-lora")] = D.lora,
    lora_rank: Annotated[int, field_opt("lora_rank", "--lora-rank", min=1)] = D.lora_rank,
    lora_alpha: Annotated[int, field_opt("lora_alpha", "--lora-alpha", min=1)] = D.lora_alpha,
    lora_targets: Annotated[list[str] | None, field_opt("lora_targets", "--lora-target")] = None,
    no_merge: Annotated[
        bool, typer.Option("--no-merge", help="Save the LoRA adapter (in OUT/adapter) instead of merging it.")
    ] = not D.merge,
    eval_fraction: Annotated[float, field_opt("eval_fraction", "--eval-fraction")] = D.eval_fraction,
    eval_repeats: Annotated[int, field_opt("eval_repeats", "--eval-repeats", min=2)] = D.eval_repeats,
    select_every: Annotated[int, field_opt("select_every", "--select-every", min=0)] = D.select_every,
    select_margin: Annotated[float, field_opt("select_margin", "--select-margin", min=0.0)] = D.select_margin,
    select_asked_margin: Annotated[
        float, field_opt("select_asked_margin", "--select-asked-margin", min=0.0)
    ] = D.select_asked_margin,
    patience: Annotated[int, field_opt("patience", "--patience", min=1)] = D.patience,
    eval_only: Annotated[
        bool, typer.Option("--eval-only", help="Train nothing: compare --model with --base on the held-out split.")
    ] = False,
    base: Annotated[str, typer.Option("--base", help="With --eval-only: the model to compare against.")] = D.model,
    seed: Annotated[int, field_opt("seed", "--seed", min=0)] = D.seed,
    precision: Annotated[Precision, field_opt("precision", "--precision")] = Precision(D.precision),
    device: Annotated[opt.Device, field_opt("device", "--device")] = opt.Device(D.device),
    threads: opt.ThreadsOpt = None,
    resume: Annotated[bool, field_opt("resume", "--resume")] = D.resume,
    overwrite: Annotated[bool, field_opt("overwrite", "--overwrite")] = D.overwrite,
    keep_checkpoints: Annotated[bool, field_opt("keep_checkpoints", "--keep-checkpoints")] = D.keep_checkpoints,
    json_: opt.JsonOpt = False,
    quiet: opt.QuietOpt = False,
) -> None:
    """Fine-tune a model against repetition (DITTO, unlikelihood, ScaleGrad; MLE as the control) and report the probe, greedy repetition and perplexity before and after.

    Runs on transformers' Trainer: `accelerate launch -m repcheck train ...` trains on several GPUs with the same options.
    """
    from ..threads import apply_threads
    from ..train import evaluate_only, train

    cfg = TrainConfig(
        method=method.value,
        model=model,
        data=[str(p) for p in data or []],
        self_samples=self_samples,
        self_requests=str(self_requests) if self_requests else None,
        self_new_tokens=self_new_tokens,
        self_sampling=self_sampling,
        legit_mix=legit_mix,
        plain_mix=plain_mix,
        asked_plain=asked_plain,
        anchor=anchor.value,
        end_weight=end_weight,
        end_scale=end_scale,
        select_every=select_every,
        select_margin=select_margin,
        select_asked_margin=select_asked_margin,
        patience=patience,
        out=str(out),
        steps=steps,
        batch_size=batch_size,
        grad_accum=grad_accum,
        block_size=block_size,
        learning_rate=learning_rate,
        lam=lam,
        free_copies=free_copies,
        sentence_starts=sentence_starts,
        spare_ends=spare_ends,
        chat_samples=chat_samples,
        rep_rate=rep_rate,
        alpha=alpha,
        gamma=gamma,
        lora=lora,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_targets=lora_targets or None,
        merge=not no_merge,
        eval_fraction=eval_fraction,
        eval_repeats=eval_repeats,
        seed=seed,
        precision=precision.value,
        device=device.value,
        resume=resume,
        overwrite=overwrite,
        keep_checkpoints=keep_checkpoints,
    ).validate()
    if no_merge and not lora:
        raise RepcheckError("--no-merge goes with LoRA (not with --no-lora)")
    with progress_callback(quiet) as cb:
        apply_threads(threads)
        result = evaluate_only(cfg, base, cb) if eval_only else train(cfg, cb)
    emit(_Report(result.report), json_, quiet, _print, out, result.written)


class _Report:
    def __init__(self, doc):
        self.doc = doc

    def to_json(self) -> str:
        from ..provenance import dumps

        return dumps(self.doc)


def _print(report: _Report) -> None:
    from rich.markup import escape
    from rich.table import Table

    doc = report.doc
    console = stdout_console()
    training = doc.get("training")
    what = (
        f"{training['steps']} steps of {doc['config']['method']} ({training['tokens_per_s']} tokens/s, "
        f"{training['elapsed_s']:.0f} s)"
        if training
        else "evaluation only"
    )
    console.print(
        escape(f"{doc['models']['before']['name']} → {doc['models']['after']['name']}: {what}"), soft_wrap=True
    )
    table = Table()
    for col in ("", "before", "after", "change", "better"):
        table.add_column(col, justify="left" if col in ("", "better") else "right")
    for row in doc["comparison"]:
        improved = (row["change"] < 0) == (row["better"] == "lower")
        style = "" if row["better"] is None or row["change"] == 0 else "green" if improved else "red"
        change = fmt(row["change"], signed=True)
        table.add_row(
            row["label"],
            fmt(row["before"]),
            fmt(row["after"]),
            f"[{style}]{change}[/]" if style else change,
            row["better"] or "–",
        )
    console.print(table)
    if doc.get("legit_by_category"):
        table = Table(title="legitimate repetition passed, by category", title_justify="left")
        for col in ("category", "cases", "before", "after", "change"):
            table.add_column(col, justify="left" if col == "category" else "right")
        for row in doc["legit_by_category"]:
            table.add_row(
                escape(row["category"]), str(row["n"]), fmt(row["before"]), fmt(row["after"]),
                fmt(row["change"], signed=True),
            )  # fmt: skip
        console.print(table)
