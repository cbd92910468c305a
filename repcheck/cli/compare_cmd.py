"""`repcheck compare`: one model under many decoding settings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import RepcheckError
from . import options as opt
from .backend_options import ModelLoader, with_backend_options
from .console import emit, fmt, handle_errors, plural, print_json, progress_callback, stdout_console
from .groups import Outputs, with_output_options


@handle_errors
@with_output_options
@with_backend_options
def compare_command(
    prompt: Annotated[str | None, typer.Argument(help="A prompt to continue.", show_default=False)] = None,
    prompts: Annotated[
        Path | None,
        typer.Option(
            "--prompts",
            help='Prompts file: .txt (one per line), .jsonl (text field, or a {"messages": [...]} conversation), '
            ".json (array) or .csv (text column); or a shipped set: open_ended, chat_en, chat_zh, reasoning_en, "
            "reasoning_zh.",
        ),
    ] = None,
    limit: opt.LimitOpt = None,
    setting: Annotated[
        list[str] | None,
        typer.Option(
            "--setting",
            "-s",
            help="A preset name (greedy, beam, top_p, dry, ...) or key=value[,key=value...] as in a TOML inline "
            "table (strings in quotes); repeat for several. See --list-presets and docs/decoding.md.",
        ),
    ] = None,
    settings_file: Annotated[
        Path | None, typer.Option("--settings", help="TOML file of [settings.NAME] tables.")
    ] = None,
    preset: Annotated[
        str | None, typer.Option("--preset", help="A documented selection: standard, sampling, penalties or all.")
    ] = None,
    list_presets: Annotated[
        bool, typer.Option("--list-presets", help="List the presets, preset groups and decoding keys, and exit.")
    ] = False,
    max_new_tokens: Annotated[
        int,
        typer.Option(
            "--max-new-tokens",
            "-n",
            min=1,
            help="Tokens to generate per continuation, up to the model's context window; at 256 or more the report "
            "adds the loop rate by length and the loops' onsets.",
        ),
    ] = 64,
    chat: opt.ChatOpt = False,
    stop_on_loop: opt.StopOnLoopOpt = False,
    loop_max_period: opt.LoopPeriodOpt = 64,
    loop_min_repeats: opt.LoopRepeatsOpt = 3,
    loop_min_tokens: opt.LoopTokensOpt = 48,
    samples: Annotated[
        int, typer.Option("--samples", min=1, help="Continuations per prompt for sampling settings.")
    ] = 1,
    seed: Annotated[
        int, typer.Option("--seed", min=0, help="Seed: the same command gives the same text, at any batch size.")
    ] = 0,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Continuations per generate call.")] = 16,
    probe_sentence: Annotated[
        str | None, typer.Option("--probe", help="Also probe this sentence under each setting's logits processors.")
    ] = None,
    repeats: Annotated[int, typer.Option("--repeats", "-k", min=1, help="K copies for --probe.")] = 10,
    ablate_heads: opt.AblateHeadsOpt = None,
    next_token: Annotated[
        Path | None,
        typer.Option(
            "--next-token",
            help="Human text (one text per line, or .jsonl/.json/.csv; or a shipped set: wiki_en): also report "
            "Welleck et al.'s next-token metrics (rep/wrep at 16/32/128/512 tokens of context, accuracy, "
            "perplexity, uniq).",
        ),
    ] = None,
    legit: opt.LegitOpt = None,
    model: opt.ModelOpt = opt.DEFAULT,
    dtype: opt.DtypeOpt = opt.Dtype.float32,
    load: ModelLoader = ModelLoader(),
    outputs: Outputs = Outputs(),
    json_: opt.JsonOpt = False,
    quiet: opt.QuietOpt = False,
) -> None:
    """Run one model under many decoding settings and measure repetition in what it generates.

    For every setting: seq-rep-1..4, rep-sen, loop rate, distinct-1/2, rep-2..4 and diversity, mean log-probability under the unmodified model (what a fix costs) and tokens/s. With --probe, each setting's processors are applied to the teacher-forced repeated sentence to show how it bends the self-reinforcement curve.
    """
    from ..backends.registry import BACKENDS, check_model_spec, check_supported, entry
    from ..compare import run_compare
    from ..decoding import resolve_settings
    from ..sentences import read_sentences

    if list_presets:
        _list_presets(json_)
        return
    if prompt is not None and prompts is not None:
        raise RepcheckError("give a PROMPT or --prompts FILE, not both")
    if prompt is not None and not prompt.strip():
        raise RepcheckError("the prompt is empty")
    if limit is not None and prompts is None:
        raise RepcheckError("--limit goes with --prompts")
    from ..prompts import Prompt, read_prompts

    if prompts is not None:
        texts = read_prompts(prompts, chat=chat, limit=limit)
    elif prompt is not None:
        texts = [Prompt(messages=({"role": "user", "content": prompt},)) if chat else prompt]
    else:
        texts = []
    guard = opt.guard_config(stop_on_loop, loop_max_period, loop_min_repeats, loop_min_tokens, max_new_tokens)
    if (stop_on_loop or chat) and not texts and legit is None:
        raise RepcheckError("--chat and --stop-on-loop go with prompts to generate from (PROMPT or --prompts)")
    human = read_sentences(next_token) if next_token is not None else []
    if not texts and probe_sentence is None and not human and legit is None:
        raise RepcheckError(
            "give a PROMPT, --prompts FILE, --probe SENTENCE, --next-token FILE or --legit (see "
            "`repcheck compare --help`)"
        )
    if probe_sentence is not None and not probe_sentence.strip():
        raise RepcheckError("the --probe sentence is empty")
    settings = resolve_settings(setting or [], preset, settings_file)
    legit_suite = opt.read_legit(legit)
    # everything the backend cannot do is refused before any model loads or server is contacted
    for s in settings if texts or legit is not None else []:
        check_supported(load.backend, s)
    backend = entry(load.backend)
    if probe_sentence is not None and not backend.capabilities.full_distributions:
        able = ", ".join(e.name for e in BACKENDS.values() if e.capabilities.full_distributions)
        raise RepcheckError(
            f"--probe needs full next-token distributions, which the {load.backend} backend does not give; "
            f"backends that do: {able}"
        )
    around = None
    if ablate_heads is not None:
        if probe_sentence is None:
            raise RepcheckError("--ablate-heads goes with --probe")
        if not backend.hookable:
            raise RepcheckError(f"--ablate-heads needs the model's own heads: the {load.backend} backend has none")
        from ..explain.ablation import Ablation

        around = Ablation.of_heads(ablate_heads)
    outputs.check()
    check_model_spec(load.backend, model)
    opt.check_legit_models(legit_suite, [model], load.backend)
    if any(isinstance(t, Prompt) for t in texts):
        opt.check_chat_models([model], load.backend)

    with progress_callback(quiet) as cb:
        lm = load.load(model, dtype=dtype.value, progress=cb)
        result = run_compare(
            lm,
            settings,
            texts,
            max_new_tokens=max_new_tokens,
            samples=samples,
            seed=seed,
            batch_size=batch_size,
            probe_sentences=[probe_sentence] if probe_sentence else [],
            repeats=repeats,
            next_token_texts=human,
            around_probe=around,
            legit=legit_suite,
            stop_on_loop=guard,
            progress=cb,
        )
        written = outputs.write(result)
    emit(result, json_, quiet, _print, outputs.directory, written)


def _list_presets(json_: bool) -> None:
    import json

    from ..decoding import KEYS, PRESET_GROUPS, PRESETS

    if json_:
        print_json(json.dumps({"presets": PRESETS, "groups": PRESET_GROUPS, "keys": list(KEYS)}, indent=2))
        return
    from rich.markup import escape
    from rich.table import Table

    console = stdout_console()
    table = Table(title="presets (-s NAME)", title_justify="left")
    table.add_column("preset")
    table.add_column("parameters")
    table.add_column("in groups")
    for name, params in PRESETS.items():
        groups = [g for g, members in PRESET_GROUPS.items() if name in members]
        shown = ", ".join(f"{k}={v}" for k, v in params.items()) or "(greedy decoding)"
        table.add_row(name, escape(shown), ", ".join(groups))
    console.print(table)
    console.print("groups (--preset NAME): " + "; ".join(f"{g}: {', '.join(m)}" for g, m in PRESET_GROUPS.items()))
    console.print("keys (-s key=value,...): " + ", ".join(KEYS) + " (see docs/decoding.md)")


def _print(result) -> None:
    from rich.markup import escape
    from rich.table import Table

    from ..metric_info import best

    console = stdout_console()
    doc = result.to_dict()
    rows = [s for s in doc["settings"] if "metrics" in s or "legit" in s]
    generated = any("metrics" in s for s in rows)
    legit = doc.get("legit_suite")
    if rows:
        n = len(doc["prompts"])
        said = [f"{doc['model']['name']} ({doc['dtype']}, {doc['device']})"]
        if generated:
            said.append(
                f"{plural(n, 'prompt')} × {doc['max_new_tokens']} new tokens, seed {doc['seed']}; means over prompts "
                "(n-grams on token ids)"
            )
        if legit:
            said.append(
                f"legit pass: share of the {legit['cases']} cases of the legitimate-repetition suite "
                f"{legit['name']} passed, [95% interval]: what the setting breaks"
            )
        console.print(escape(": ".join(said[:2]) + ("; " + said[2] if len(said) > 2 else "")), soft_wrap=True)
        cols = []
        if generated:
            cols += [
                ("seq-rep-4", "seq_rep_4", lambda s: s["metrics"]["seq_rep_4"]["mean"]),
                ("rep-sen", "rep_sen", lambda s: s["metrics"]["rep_sen"]["mean"]),
                ("loop rate", "loop_rate", lambda s: s["loop_rate"]),
                ("distinct-2", "distinct_2", lambda s: s["metrics"]["distinct_2"]["mean"]),
                ("mean log-prob", "mean_logprob", lambda s: s["metrics"]["mean_logprob"]["mean"]),
            ]
        if legit:
            cols.append(("legit pass", "pass_rate", lambda s: s["legit"]["pass_rate"]))
        if generated:
            cols.append(("tokens/s", None, lambda s: s["tokens_per_s"]))
        table = Table()
        table.add_column("setting", overflow="fold")
        for name, _, _ in cols:
            table.add_column(name, justify="right")
        bests = {
            name: best(key, [v for s in rows if (v := _get(get, s)) is not None]) if key else None
            for name, key, get in cols
        }
        for s in rows:
            cells = []
            for name, _, get in cols:
                v = _get(get, s)
                text = fmt(v, 1) if name == "tokens/s" else fmt(v)
                if name == "legit pass" and v is not None:
                    lo, hi = s["legit"]["ci95"]
                    text = f"{text} [{fmt(lo, 2)}, {fmt(hi, 2)}]"
                highlighted = v is not None and v == bests[name] and len(rows) > 1
                cells.append(f"[bold green]{escape(text)}[/]" if highlighted else escape(text))
            table.add_row(escape(s["name"]), *cells)
        console.print(table)
        console.print("[bold green]green[/]: the best value of a column (lower or higher, by the metric).")
        if legit:
            _print_legit_categories(console, rows)
        for s in (s for s in rows if "metrics" in s):
            example = " ".join(s["example"].split())
            console.print(
                f"[bold]{escape(s['name'])}[/]: {escape(example[:160])}{'…' if len(example) > 160 else ''}",
                highlight=False,
            )
    block = doc.get("next_token")
    if block:
        m = block["metrics"]
        console.print(
            escape(
                f"next-token metrics on {plural(block['texts'], 'human text')} ({m['tokens']} tokens"
                + (f", {block['truncated']} cut to the context window" if block["truncated"] else "")
                + "), Welleck et al. 2019: rep/l = greedy prediction repeats one of the previous l tokens, "
                "wrep/l = and is wrong, hrep/l = the human text itself repeats"
            ),
            soft_wrap=True,
        )
        table = Table()
        for col in ("context l", "rep/l", "wrep/l", "hrep/l"):
            table.add_column(col, justify="right")
        for l in block["contexts"]:
            table.add_row(str(l), fmt(m[f"rep/{l}"]), fmt(m[f"wrep/{l}"]), fmt(m[f"hrep/{l}"]))
        console.print(table)
        console.print(f"accuracy {fmt(m['acc'])}, perplexity {fmt(m['ppl'], 2)}, uniq {m['uniq']}", highlight=False)
    probed = [s for s in doc["settings"] if "probe" in s]
    if probed:
        console.print(
            escape(f"probe under each setting: “{doc['probe']['sentences'][0]}”, K={doc['probe']['repeats']}"),
            soft_wrap=True,
        )
        table = Table()
        for col in ("setting", "TP(0)", "TP(1)", "TP(K-1)", "MP(K-1)", "lock-in copy"):
            table.add_column(col, justify="left" if col == "setting" else "right", overflow="fold")
        for s in probed:
            pr = s["probe"]
            if "skipped" in pr:
                table.add_row(escape(s["name"]), "–", "–", "–", "–", escape(pr["skipped"]))
                continue
            pc = pr["per_copy"]
            lock = pr["summary"]["lock_in_copy_mean"]
            table.add_row(
                escape(s["name"]),
                fmt(pc[0]["tp"]),
                fmt(pc[min(1, len(pc) - 1)]["tp"]),
                fmt(pc[-1]["tp"]),
                fmt(pc[-1]["mp"]),
                "never" if lock is None else f"{lock:.0f}",
            )
        console.print(table)


def _get(get, s):
    """A table cell's value, None where the setting has no such block."""
    try:
        return get(s)
    except KeyError:
        return None


def _print_legit_categories(console, rows) -> None:
    """The legit pass rate per category, one column per setting."""
    from rich.markup import escape
    from rich.table import Table

    named = [s for s in rows if "legit" in s]
    categories = list(named[0]["legit"]["by_category"])
    table = Table(title="legit pass by category (passed/cases)", title_justify="left")
    table.add_column("category")
    for s in named:
        table.add_column(escape(s["name"]), justify="right", overflow="fold")
    for cat in categories:
        cells = []
        for s in named:
            b = s["legit"]["by_category"][cat]
            cells.append(f"{fmt(b['pass_rate'], 2)} ({b['passed']}/{b['n']})")
        table.add_row(escape(cat), *cells)
    console.print(table)
