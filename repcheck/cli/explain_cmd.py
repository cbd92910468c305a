"""`repcheck explain`: which heads and neurons make the model repeat."""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import RepcheckError
from ..explain.run import ABLATIONS
from . import options as opt
from .console import emit, fmt, handle_errors, progress_callback, stdout_console
from .groups import Outputs, with_output_options

Ablation = opt.choices("Ablation", ABLATIONS)


@handle_errors
@with_output_options
def explain_command(
    sentence: Annotated[str | None, typer.Argument(help="The sentence to repeat.", show_default=False)] = None,
    file: opt.SentenceFileOpt = None,
    limit: opt.LimitOpt = None,
    random: Annotated[
        int | None,
        typer.Option(
            "--random",
            min=1,
            help="Use N random-token sentences: with K=2 (the default then), the TransformerLens-style [BOS]+R+R check.",
        ),
    ] = None,
    length: Annotated[int, typer.Option("--length", min=1, help="Tokens per random sentence (R).")] = 16,
    repeats: Annotated[
        int | None,
        typer.Option("--repeats", "-k", min=2, show_default=False, help="K copies (default 8; 2 with --random)."),
    ] = None,
    top: Annotated[int, typer.Option("--top", min=1, help="How many top heads (by induction score) to ablate.")] = 8,
    random_draws: Annotated[
        int, typer.Option("--random-draws", min=1, help="Draws of as many random heads (and neurons) as the control.")
    ] = 5,
    ablation: Annotated[
        Ablation,
        typer.Option("--ablation", help="zero: set the output to 0; mean: to its mean over the probe's positions."),
    ] = Ablation.zero,
    neuron_share: Annotated[
        float, typer.Option("--neurons", help="Share of all MLP neurons to ablate (the ones that rise most).")
    ] = 0.001,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seeds the random sentences and the random controls.")] = 0,
    prefix: opt.PrefixOpt = None,
    model: opt.ModelOpt = opt.DEFAULT,
    dtype: opt.DtypeOpt = opt.Dtype.float32,
    device: opt.DeviceOpt = opt.Device.auto,
    threads: opt.ThreadsOpt = None,
    batch_size: opt.BatchOpt = 4,
    outputs: Outputs = Outputs(),
    json_: opt.JsonOpt = False,
    quiet: opt.QuietOpt = False,
) -> None:
    """Find the heads and neurons behind the self-reinforcement curve, and ablate them against random controls.

    Scores every head on the probe's own input (induction: attention to the token after the previous occurrence; previous occurrence; TransformerLens' induction score) and every MLP neuron (how much it rises after the first copy), then probes again with the top heads, random heads, the top neurons and random neurons ablated. Loads the model with eager attention (attention weights need it).
    """
    from ..backends import load_model
    from ..explain import explain
    from ..sentences import encode_sentences, random_sentences, read_sentences
    from ..threads import apply_threads

    sources = [x is not None for x in (sentence, file, random)]
    if sum(sources) != 1:
        raise RepcheckError("give one of SENTENCE, --file FILE and --random N (see `repcheck explain --help`)")
    if sentence is not None and not sentence.strip():
        raise RepcheckError("the sentence is empty; give a sentence with at least one token")
    if limit is not None and file is None:
        raise RepcheckError("--limit goes with --file")
    if not 0 < neuron_share <= 1:
        raise RepcheckError(f"--neurons must be a share in (0, 1], not {neuron_share}")
    k = repeats if repeats is not None else (2 if random is not None else 8)
    texts = read_sentences(file, limit=limit) if file is not None else ([sentence] if sentence is not None else [])
    outputs.check()
    with progress_callback(quiet) as cb:
        apply_threads(threads)
        lm = load_model(model, dtype=dtype.value, device=device.value, progress=cb, attn_implementation="eager")
        encoded = (
            random_sentences(lm.tokenizer, random, length, seed)
            if random is not None
            else encode_sentences(lm.tokenizer, texts)
        )
        result = explain(
            lm,
            encoded,
            repeats=k,
            top=top,
            random_draws=random_draws,
            ablation=ablation.value,
            neuron_share=neuron_share,
            seed=seed,
            prefix=prefix,
            batch_size=batch_size,
            progress=cb,
        )
        written = outputs.write(result)
    emit(result, json_, quiet, _print, outputs.directory, written)


def _print(result) -> None:
    from rich.markup import escape
    from rich.table import Table

    console = stdout_console()
    doc = result.to_dict()
    subject = f"“{doc['sentences'][0]}”" if len(doc["sentences"]) == 1 else f"{len(doc['sentences'])} sentences"
    console.print(escape(f"{doc['model']['name']} (eager attention): {subject}, K={doc['repeats']}"), soft_wrap=True)
    # titles on their own lines: a table title wraps at the table's width
    console.print("\ntop heads by induction score (attention to the token after the previous occurrence)")
    heads = Table()
    for col in ("rank", "head", "induction", "any copy", "duplicate token", "TransformerLens"):
        heads.add_column(col, justify="right")
    for h in doc["heads"][: doc["settings"]["top"]]:
        heads.add_row(
            str(h["rank"]), f"{h['layer']}.{h['head']}", fmt(h["induction"]), fmt(h["induction_any"]),
            fmt(h["duplicate_token"]), fmt(h["tl_induction"]),
        )  # fmt: skip
    console.print(heads)
    ab = doc["ablations"]
    console.print(escape(f"\nablations ({doc['settings']['ablation']} ablation) and the probe again"))
    table = Table()
    cols = ("ablated", "draws", "TP(1)", "TP(K-1)", "mean TP, copies 1..K-1", "change", "copy-0 log-prob")
    for col in cols:
        table.add_column(col, justify="left" if col == "ablated" else "right")
    base = ab["baseline"]["tp_repeats"]
    labels = {
        "baseline": "nothing",
        "top_heads": f"top {doc['settings']['top']} heads",
        "random_heads": f"{doc['settings']['top']} random heads",
        "top_neurons": f"top {doc['settings']['neurons_ablated']} neurons",
        "random_neurons": f"{doc['settings']['neurons_ablated']} random neurons",
    }
    for name, label in labels.items():
        run = ab[name]
        draws = run["tp_repeats_draws"]
        spread = f" [{min(draws):.3f}, {max(draws):.3f}]" if run["draws"] > 1 else ""
        table.add_row(
            label, str(run["draws"]), fmt(run["per_copy"][1]["tp"]), fmt(run["tp_last"]),
            fmt(run["tp_repeats"]) + spread, fmt(run["tp_repeats"] - base, signed=True), fmt(run["copy0_logprob"]),
        )  # fmt: skip
    console.print(table)
    console.print(
        escape(
            "TP: probability of the repeated token, mean over tokens and sentences; change: mean TP over copies "
            "1..K-1 against nothing ablated; [min, max] over the random draws; copy-0 log-prob: the cost to "
            "ordinary text (no repeat yet)."
        )
    )
