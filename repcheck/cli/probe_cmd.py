"""`repcheck probe`: the self-reinforcement probe from the command line."""

from __future__ import annotations

import contextlib
import re
from typing import Annotated

import typer

from ..errors import RepcheckError
from ..stats import SMALL_N
from . import options as opt
from .backend_options import ModelLoader, with_backend_options
from .console import (
    emit,
    fmt,
    fmt_interval,
    handle_errors,
    missing,
    plural,
    progress_callback,
    stdout_console,
    tp_bar,
    warn,
)
from .groups import Outputs, with_output_options


def parse_length(text: str) -> int | tuple[int, int]:
    """``12`` or a range ``5-10`` (lengths drawn uniformly per sentence)."""
    m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", text)
    if not m:
        raise RepcheckError(f"length must be a number of tokens or a range such as 5-10, not {text!r}", param="length")
    lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
    if lo < 1 or hi < lo:
        raise RepcheckError(
            f"length {text!r} must be at least 1 (and a range low-high with low <= high)", param="length"
        )
    return lo if lo == hi else (lo, hi)


@handle_errors
@with_output_options
@with_backend_options
def probe_command(
    sentence: Annotated[str | None, typer.Argument(help="The sentence to repeat.", show_default=False)] = None,
    repeats: opt.RepeatsOpt = 10,
    file: opt.SentenceFileOpt = None,
    limit: opt.LimitOpt = None,
    random: Annotated[
        int | None,
        typer.Option("--random", min=1, help="Probe N sentences of random tokens instead (see --length, --seed)."),
    ] = None,
    length: Annotated[
        str, typer.Option("--length", help="Tokens per random sentence: a number, or a range such as 5-10.")
    ] = "12",
    full_vocab: Annotated[
        bool,
        typer.Option("--full-vocab", help="Draw random tokens from the whole vocabulary, special tokens included."),
    ] = False,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed for --random.")] = 0,
    prefix: opt.PrefixOpt = None,
    chat: Annotated[
        bool,
        typer.Option(
            "--chat",
            help="Chat form: the copies are the assistant's answer to one user turn (--chat-user), rendered with the "
            "model's chat template.",
        ),
    ] = False,
    chat_user: Annotated[
        str | None, typer.Option("--chat-user", help="The user turn before the copies (with --chat).")
    ] = None,
    turns: Annotated[
        bool,
        typer.Option(
            "--turns",
            help="Turn-level probe: K turns, each a different question answered with the same sentence; copy n is "
            "turn n+1's answer (the chatbot that gives one reply to everything).",
        ),
    ] = False,
    model: opt.ModelOpt = opt.DEFAULT,
    dtype: opt.DtypeOpt = opt.Dtype.float32,
    load: ModelLoader = ModelLoader(),
    batch_size: opt.BatchOpt = 8,
    outputs: Outputs = Outputs(),
    token: Annotated[
        str | None,
        typer.Option(
            "--token", help="Draw bars.png for this word's (first) token (single sentence), as in the paper's figure."
        ),
    ] = None,
    position: Annotated[
        int | None,
        typer.Option("--position", min=0, help="Draw bars.png for token position L (0-based, single sentence)."),
    ] = None,
    convention: Annotated[
        opt.Convention,
        typer.Option(
            "--convention",
            help="How the per-copy table is windowed and averaged: repcheck's definitions, or DITTO's code "
            "(windows shifted by one token, pooled over tokens, K-1 copies; see docs/metrics.md).",
        ),
    ] = opt.Convention.repcheck,
    ablate_heads: opt.AblateHeadsOpt = None,
    json_: opt.JsonOpt = False,
    quiet: opt.QuietOpt = False,
) -> None:
    """Repeat a sentence K times and measure how the probability of repeating it grows.

    One teacher-forced forward pass gives, for every token of every copy, the probability of the repeated token (TP) and the maximum next-token probability (MP). IP is the share of tokens more likely than in the first copy, WR the share that are both more likely and the argmax, AR the share that are the argmax.
    """
    from ..backends.registry import check_model_spec
    from ..probing import probe
    from ..results import check_convention
    from ..sentences import encode_sentences, find_token, random_sentences, read_sentences

    # ---- validate everything that needs no model, before loading one ------------------------
    sources = [x is not None for x in (sentence, file, random)]
    if sum(sources) == 0:
        raise RepcheckError("give a SENTENCE, --file FILE or --random N (see `repcheck probe --help`)")
    if sum(sources) > 1:
        raise RepcheckError("give only one of SENTENCE, --file and --random")
    if sentence is not None and not sentence.strip():
        raise RepcheckError("the sentence is empty; give a sentence with at least one token")
    if limit is not None and file is None:
        raise RepcheckError("--limit goes with --file")
    if token is not None and position is not None:
        raise RepcheckError("give --token or --position, not both")
    if token is not None and not token.strip():
        raise RepcheckError("--token is empty; give a word of the sentence")
    lengths = parse_length(length)
    check_convention(convention.value, repeats)
    if chat_user is not None and not chat:
        raise RepcheckError("--chat-user goes with --chat")
    if turns and (chat or prefix or random is not None or ablate_heads is not None or convention.value != "repcheck"):
        raise RepcheckError(
            "--turns is its own layout: not with --chat, --prefix, --random, --ablate-heads or --convention"
        )
    if (chat or turns) and prefix:
        raise RepcheckError("--chat puts the copies after a user turn: give --chat-user, not --prefix")
    around = None
    if ablate_heads is not None:
        from ..backends.registry import entry
        from ..explain.ablation import Ablation

        if not entry(load.backend).hookable:
            raise RepcheckError(f"--ablate-heads needs the model's own heads: the {load.backend} backend has none")

        around = Ablation.of_heads(ablate_heads)  # the syntax now; whether the heads exist once the model loads
    texts = read_sentences(file, limit=limit) if file is not None else ([sentence] if sentence is not None else [])
    single = sentence is not None or random == 1 or len(texts) == 1
    if (token is not None or position is not None) and not single:
        raise RepcheckError(
            "--token and --position draw one token of a single sentence; "
            "drop them to draw the mean over positions and sentences"
        )
    outputs.check()
    check_model_spec(load.backend, model)
    if chat or turns:
        opt.check_chat_models([model], load.backend)

    with progress_callback(quiet) as cb:
        lm = load.load(model, dtype=dtype.value, progress=cb)
        if random is not None:
            encoded = random_sentences(lm.tokenizer, random, lengths, seed, full_vocabulary=full_vocab)
        else:
            encoded = encode_sentences(lm.tokenizer, texts, progress=cb)
        if token is not None:
            position = find_token([lm.tokenizer.decode([t]) for t in encoded[0].token_ids], token)
        if position is not None and not 0 <= position < len(encoded[0].token_ids):
            raise RepcheckError(
                f"--position {position} is outside the sentence's "
                f"{len(encoded[0].token_ids)} tokens (0..{len(encoded[0].token_ids) - 1})"
            )
        extra = (
            {"random": {"n": random, "length": lengths, "seed": seed, "full_vocabulary": full_vocab}}
            if random is not None
            else {}
        )
        if turns:
            from ..probing import probe_turns

            result = probe_turns(lm, [e.text for e in encoded], repeats=repeats, batch_size=batch_size, progress=cb)
        else:
            from ..probing import CHAT_USER

            with around.applied(lm) if around else contextlib.nullcontext():
                result = probe(
                    lm,
                    encoded,
                    repeats=repeats,
                    prefix=prefix,
                    batch_size=batch_size,
                    progress=cb,
                    settings={**extra, **(around.to_setting() if around else {})},
                    convention=convention.value,
                    chat=(chat_user or CHAT_USER) if chat else None,
                )
        if outputs.directory is not None and cb:
            cb("writing figures", 0, 0)
        written = outputs.write(result, position=position)
    emit(result, json_, quiet, _print_table, outputs.directory, written)
    if not quiet and not json_ and 1 < len(result.sentences) < SMALL_N:
        warn(f"only {plural(len(result.sentences), 'sentence')}: 95% intervals over so few say little")


def _print_table(result) -> None:
    from rich.markup import escape
    from rich.table import Table

    from ..metrics import LOCK_IN_THRESHOLD

    n_sent = len(result.sentences)
    rows = result.per_copy()
    console = stdout_console()
    what = f"“{result.sentences[0].text}”" if n_sent == 1 else f"mean of {n_sent} sentences, TP with its 95% interval"
    if result.convention == "ditto":
        what += "; DITTO's convention: windows shifted by one token, pooled over tokens, copies 0..K-2"
    console.print(
        escape(f"{result.model['name']} ({result.dtype}, {result.device}), K={result.repeats}: {what}"),
        soft_wrap=True,
    )
    table = Table(show_edge=True)
    table.add_column("n", justify="right")
    table.add_column("TP", justify="right")
    bar_width = 20 if console.width >= 130 else 10
    table.add_column("0 ── TP ── 1", style="red", no_wrap=True, min_width=bar_width)
    for col in ("MP", "IP", "WR", "AR", "TP first", "TP mid", "TP last"):
        table.add_column(col, justify="right")
    for r in rows:
        lo, hi = r["ci95"]["tp"]
        bp = r["by_position"]
        table.add_row(
            str(r["n"]),
            fmt_interval(r["tp"], lo, hi, n_sent),
            tp_bar(r["tp"], bar_width),
            fmt(r["mp"]),
            fmt(r["ip"]),
            fmt(r["wr"]),
            fmt(r["ar"]),
            *(fmt(bp[g]["tp"]) for g in ("first", "middle", "last")),
        )
    console.print(table)
    s = result.summary()
    lock = s["lock_in_copy_mean"]
    threshold = f"TP ≥ {LOCK_IN_THRESHOLD:g}"
    lock_text = (
        f"{threshold} from copy {lock:.0f}"
        if n_sent == 1 and lock is not None
        else f"{s['lock_in_rate']:.0%} of sentences reach {threshold}"
        if n_sent > 1
        else f"TP never reaches {LOCK_IN_THRESHOLD:g}"
    )
    rate = result.provenance.get("tokens_per_s")
    console.print(
        f"TP {fmt(s['tp_first']['mean'])} → {fmt(s['tp_last']['mean'])} "
        f"(rise {fmt(s['tp_rise']['mean'], signed=True)}); {lock_text}."
        + (f" {rate:g} tokens/s." if not missing(rate) else ""),
        highlight=False,
    )
    if n_sent > 2:
        ip = result.initial_probability()
        rise, lock = ip["spearman_tp_first_vs_rise"], ip["spearman_tp_first_vs_lock_in_copy"]
        console.print(
            f"Initial probability, Spearman ρ over {n_sent} sentences: TP(0) vs rise {fmt(rise, 2, signed=True)} "
            f"(the ceiling at 1 limits how far a likely sentence can rise), TP(0) vs lock-in copy "
            f"{fmt(lock, 2, signed=True)} (negative: likelier sentences lock in sooner).",
            highlight=False,
        )
