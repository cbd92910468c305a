"""The result that counts for `repcheck train`: the default recipe on the built-in SmolLM2-135M,
the sweep that chose it, and the other methods at their defaults, on this CPU.

Trains each configuration of CONFIGS (or those --configs names) and prints, before -> after
on the held-out split and the shipped prompts and suites, the numbers of the issue's targets:

  * TP at the last of 8 copies of held-out sentences (never trained on): <= 0.5;
  * the legitimate-repetition suite's pass rate: >= base - 5 points, and no category worse by
    more than 10 points;
  * mean greedy answer length on the open-ended prompts (as chat): >= 0.75x base; the share of
    answers ending at EOS: at most 10 points above base;
  * perplexity on general prose (wiki_en, not the training domain): <= +5%;
  * the loop rate at 256 new tokens at least halved, length-matched seq-rep-4 at least 30% lower;
  * the MLE control (same data, same budget) does none of the first and last;
  * training time <= 15 minutes on an idle machine of this kind.

Each line prints the load other processes put on the machine while it trained (a busy
machine makes a run up to 3x slower) and the CPU's kind (AMX or AVX2 only). The base model is
evaluated once per data configuration and reused. --reuse reads a configuration's
report.json where an earlier run of this script left one, and the base evaluation
(before.json) an interrupted run left, each only where it was made from the same data
(``data_key``: the configuration's data fields and the self-generation recipe's version).

With --cost, also the training cost of each method: tokens/s of its own batches against a
plain MLE step of transformers' Trainer on the same input ids, in the same run.

Usage: python benchmarks/train_ditto.py [--configs ditto,mle,...] [--out runs/bench-train] [--reuse] [--cost] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from repcheck.cpu import describe_cpu

#: name -> TrainConfig overrides. "ditto" is the default recipe (a rank-16 LoRA adapter at
#: learning rate 5e-4, the model's own text anchored to the base by KL) and "mle" its control,
#: "ul-token", "ul-seq" and "scalegrad" the other methods on the same defaults;
#: "rep*", "end*" and "own-requests" change one thing of the default (--rep-rate,
#: --end-weight, --self-requests with benchmarks/data/story_beginnings.txt), "chat*" DITTO's
#: samples inside their conversation (--chat-samples, with and without --end-weight), "scale*"
#: the anchor's target with the base's chance of ending scaled (--end-scale);
#: the "lora-" group is the sweep that chose it; the "full-" group trains every weight (the
#: earlier default and its sweep, and the other methods at their defaults of that time: every
#: weight, MLE anchor).
#: the LoRA recipe before the anchor (MLE on the model's sampled answers, DITTO's sentence
#: starts penalized, no plain text, 200 steps): the base of the "lora-" sweep
MLE_ANCHOR = {"anchor": "mle", "plain_mix": 0.0, "asked_plain": 0.0, "sentence_starts": True, "steps": 200,
              "rep_rate": 0.5}  # fmt: skip
FULL = {**MLE_ANCHOR, "lora": False}  # every weight, learning rate 5e-5
CONFIGS: dict[str, dict] = {
    "ditto": {},
    "mle": {"method": "mle"},
    "ul-token": {"method": "ul-token"},
    "ul-seq": {"method": "ul-seq"},
    "scalegrad": {"method": "scalegrad"},
    "rep0.5": {"rep_rate": 0.5},
    "rep0.25": {"rep_rate": 0.25},
    "end1": {"end_weight": 1.0},
    "end4": {"end_weight": 4.0},
    "own-requests": {"self_requests": "benchmarks/data/story_beginnings.txt"},
    "chat0.5": {"chat_samples": 0.5},
    "chat0.5-end1": {"chat_samples": 0.5, "end_weight": 1.0},
    "scale0.5": {"end_scale": 0.5},
    "scale0.3": {"end_scale": 0.3},
    "scale0.2": {"end_scale": 0.2},
    "scale0.2-seed1": {"end_scale": 0.2, "seed": 1},
    "scale0.2-seed2": {"end_scale": 0.2, "seed": 2},
    "scale0.1": {"end_scale": 0.1},
    "scale0.1-seed1": {"end_scale": 0.1, "seed": 1},
    "scale0.1-seed2": {"end_scale": 0.1, "seed": 2},
    "mle-scale0.1": {"method": "mle", "end_scale": 0.1},  # the control of scale0.1
    "scale0.05": {"end_scale": 0.05},
    "scale0.05-seed1": {"end_scale": 0.05, "seed": 1},
    "scale0.05-seed2": {"end_scale": 0.05, "seed": 2},
    "scale0.05-seed3": {"end_scale": 0.05, "seed": 3},
    "seed1": {"seed": 1},  # the default on other draws of the data, split and batches
    "seed2": {"seed": 2},
    "seed3": {"seed": 3},  # a draw the default was not chosen on (measured after the selection rule was set)
    "lora-mle-anchor": MLE_ANCHOR,
    "lora-mle-anchor-control": {**MLE_ANCHOR, "method": "mle"},
    "lora-2e-4": {**MLE_ANCHOR, "learning_rate": 2e-4},
    "lora-pure": {**MLE_ANCHOR, "self_sampling": "temperature=1.0"},
    "lora-free1": {**MLE_ANCHOR, "free_copies": 1},
    "lora-plain": {**MLE_ANCHOR, "plain_mix": 1.0},
    "lora-inner": {**MLE_ANCHOR, "sentence_starts": False},
    "lora-inner-pure": {**MLE_ANCHOR, "sentence_starts": False, "self_sampling": "temperature=1.0"},
    "lora-kl": {**MLE_ANCHOR, "anchor": "kl"},
    "lora-kl-plain": {**MLE_ANCHOR, "anchor": "kl", "plain_mix": 1.0},
    "lora-kl-plain-structures": {**MLE_ANCHOR, "anchor": "kl", "plain_mix": 1.0, "asked_plain": 0.5},
    "lora-kl-spare-plain-structures": {**MLE_ANCHOR, "anchor": "kl", "plain_mix": 1.0, "asked_plain": 0.5,
                                       "spare_ends": True},
    "lora-kl-inner-plain-structures": {**MLE_ANCHOR, "anchor": "kl", "plain_mix": 1.0, "asked_plain": 0.5,
                                       "sentence_starts": False},
    "anchor-plain": {"anchor": "plain", "rep_rate": 0.5},
    "anchor-plain-control": {"anchor": "plain", "method": "mle"},
    "full": FULL,
    "full-lam0.5": {**FULL, "lam": 0.5},
    "full-asked1": {**FULL, "legit_mix": 1.0},
    "full-rep0.25": {**FULL, "rep_rate": 0.25},
    "full-no-asked": {**FULL, "legit_mix": 0.0},
    "full-no-select": {**FULL, "select_every": 0},
    "full-python-docs": {**FULL, "data": ["python_docs"], "self_samples": 0},
    "full-lr2e-5": {**FULL, "learning_rate": 2e-5},
    "full-mle": {**FULL, "method": "mle"},
    "full-ul-token": {**FULL, "method": "ul-token"},
    "full-ul-seq": {**FULL, "method": "ul-seq"},
    "full-scalegrad": {**FULL, "method": "scalegrad"},
}  # fmt: skip
#: the configuration fields that decide the held-out split and the evaluation (equal: one base run)
DATA_KEYS = ("model", "data", "self_samples", "self_requests", "self_new_tokens", "self_sampling", "seed",
             "eval_fraction", "eval_repeats", "eval_sentences", "eval_prompts", "eval_new_tokens", "eval_legit",
             "block_size")  # fmt: skip


def data_key(cfg) -> str:
    """What decides a configuration's data and base evaluation: its DATA_KEYS and, where the
    model answers itself, the self-generation recipe's version (a new recipe, new answers)."""
    from repcheck.train.selfgen import VERSION

    fields = {k: getattr(cfg, k) for k in DATA_KEYS}
    return json.dumps({**fields, "selfgen_version": VERSION if cfg.self_samples else None}, sort_keys=True)


#: OUT/KEYS_FILE: each configuration's data key, written before it trains, so that the base
#: evaluation an interrupted run left (OUT/NAME/before.json) is reused only for the same data
KEYS_FILE = "data_keys.json"


def run_all(names: list[str], out: Path, reuse: bool) -> dict[str, dict]:
    from repcheck.threads import LoadMeter
    from repcheck.train import TrainConfig, train

    reports: dict[str, dict] = {}
    bases: dict[str, dict] = {}
    for name in names:
        cfg = TrainConfig(**{**CONFIGS[name], "out": str(out / name), "overwrite": True})
        done = out / name / "report.json"
        key = data_key(cfg)
        if reuse and done.is_file():
            report = json.loads(done.read_text())
            if report.get("data_key") == key:
                reports[name] = report
                bases.setdefault(key, report["before"])
                print(f"  {name:18s} reused from {done}", flush=True)
                continue
            print(f"  {name:18s} {done} was made from other data (or an earlier recipe of it): trained again")
        if reuse and key not in bases:
            bases.update(saved_bases(out))
        keys_path = out / KEYS_FILE
        keys = json.loads(keys_path.read_text()) if keys_path.is_file() else {}
        keys_path.write_text(json.dumps({**keys, name: key}, indent=1))
        started = time.perf_counter()
        with LoadMeter() as load:
            result = train(cfg, before=bases.get(key))
        report = {**result.report, "wall_s": time.perf_counter() - started, "load": load.describe(), "data_key": key}
        done.write_text(json.dumps(report, default=str))
        bases.setdefault(key, report["before"])
        reports[name] = report
        t = report["training"]
        print(f"  {name:18s} {t['steps']} steps, {t['elapsed_s'] / 60:.1f} min training, "
              f"{report['wall_s'] / 60:.1f} min in all; {report['load']}", flush=True)  # fmt: skip
    return reports


def saved_bases(out: Path) -> dict[str, dict]:
    """The base evaluations (before.json) that earlier, possibly interrupted, runs left in
    OUT/*, by the data key recorded in OUT/KEYS_FILE when each started; one without a recorded
    key is evaluated again, not trusted."""
    try:
        keys = json.loads((out / KEYS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    found = {}
    for name, key in keys.items():
        try:
            found.setdefault(key, json.loads((out / name / "before.json").read_text()))
        except (OSError, ValueError):
            continue  # missing or unreadable: evaluated again
    return found


def end_breakdown(report: dict) -> dict | None:
    """The trained model's ends at EOS by what the base did on the same prompt
    (``evaluate.add_end_breakdown``); for a report of an earlier repcheck, the per-answer flags
    are made from its continuations first (a loop from the tokens, an end where the answer
    stopped short of --eval-new-tokens)."""
    from repcheck.repetition import detect_loop
    from repcheck.train.evaluate import add_end_breakdown

    budget = report["config"]["eval_new_tokens"]
    for block in (report["before"], report["after"]):
        g = block["generation"]
        if "looped" not in g:
            g["looped"] = [detect_loop(ids) is not None for ids in g["continuations"]]
            g["ended"] = [len(ids) < budget for ids in g["continuations"]]
    if "eos_breakdown" not in report["after"]["generation"]:
        add_end_breakdown(report["before"], report["after"])
    return report["after"]["generation"].get("eos_breakdown")


def row(report: dict, which: str) -> dict[str, float]:
    from repcheck.train.evaluate import pick

    block = report[which]
    return {
        "tp_last": pick(block, "probe.tp_last"),
        "loop_rate": pick(block, "generation.loop_rate"),
        "seq_rep_4": pick(block, "generation.seq_rep_4"),
        "seq_rep_4_matched": pick(block, "generation.seq_rep_4_matched"),
        "legit": pick(block, "legit.pass_rate"),
        "length": pick(block, "generation.mean_length"),
        "eos": pick(block, "generation.eos_rate"),
        "ppl_general": pick(block, "perplexity_general"),
        "ppl": pick(block, "perplexity"),
    }


def targets(report: dict) -> dict[str, bool]:
    b, a = row(report, "before"), row(report, "after")
    worst = min((r["change"] for r in report.get("legit_by_category", []) if r.get("change") is not None), default=0.0)
    return {
        "TP at the last of 8 copies <= 0.5": a["tp_last"] <= 0.5,
        "legit pass rate >= base - 5 points": a["legit"] >= b["legit"] - 0.05,
        "no legit category worse by more than 10 points": worst >= -0.10,
        "mean answer length >= 0.75x base": a["length"] >= 0.75 * b["length"],
        "EOS rate at most 10 points above base": a["eos"] <= b["eos"] + 0.10,
        "general-prose perplexity <= +5%": a["ppl_general"] <= 1.05 * b["ppl_general"],
        "loop rate at 256 tokens at least halved": a["loop_rate"] <= b["loop_rate"] / 2,
        "length-matched seq-rep-4 at least 30% lower": a["seq_rep_4_matched"] <= 0.7 * b["seq_rep_4_matched"],
        "training <= 15 min": report["training"]["elapsed_s"] <= 15 * 60,
    }


def cost_ratios(methods: list[str], steps: int = 6) -> dict[str, tuple[float, float]]:
    """(method tokens/s, plain MLE Trainer tokens/s) on the same batches, timed in this run."""
    from transformers import Trainer, TrainingArguments

    from repcheck.backends.hf import load_hf
    from repcheck.train.config import TrainConfig
    from repcheck.train.data import read_corpus, repetition_pairs, split_corpus, text_blocks
    from repcheck.train.engine import RepetitionTrainer, StepBatches, one_batch

    model = load_hf("smollm2-135m", device="cpu")
    split = split_corpus(read_corpus(), 0.05, 0)
    out = {}
    for method in methods:
        cfg = TrainConfig(method=method, steps=steps, warmup_steps=0, lora=False)  # the loss's own cost
        blocks = text_blocks(model.tokenizer, split.train, cfg.block_size)
        pairs = repetition_pairs(model.tokenizer, split.train, cfg.block_size)
        # the method's own batches (DITTO and ul-seq only, no MLE steps mixed in)
        batches = StepBatches(TrainConfig(**{**cfg.to_dict(), "rep_rate": 1.0}), blocks, pairs, steps)
        args = TrainingArguments(
            output_dir="/tmp/repcheck-bench-cost", max_steps=steps, per_device_train_batch_size=1, use_cpu=True,
            report_to=[], disable_tqdm=True, save_strategy="no", remove_unused_columns=False, logging_steps=10**6,
        )  # fmt: skip

        def timed(trainer, tokens_per_step):
            trainer.train()  # the first steps warm up; time a second run
            t = time.perf_counter()
            trainer.train()
            return steps * tokens_per_step / (time.perf_counter() - t)

        ours = RepetitionTrainer(
            model=model.model, args=args, train_dataset=batches, data_collator=one_batch, train_config=cfg
        )
        mine = timed(ours, cfg.batch_size * cfg.block_size)  # ul-seq's decoding counts as cost, not as tokens

        plain = Trainer(model=model.model, args=args, train_dataset=_Plain(batches), data_collator=one_batch)
        base = timed(plain, cfg.batch_size * cfg.block_size)
        out[method] = (mine, base)
    return out


class _Plain:
    """The same input ids as a method's batches, under the model's own causal-LM loss."""

    def __init__(self, batches):
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, i):
        ids = self.batches[i]["input_ids"]
        return {"input_ids": ids, "labels": ids}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--out", default="runs/bench-train")
    ap.add_argument("--reuse", action="store_true", help="read OUT/NAME/report.json where an earlier run left one")
    ap.add_argument("--cost", action="store_true", help="also time each method's step against a plain Trainer step")
    ap.add_argument("--threads", type=int, help="torch threads (two runs side by side on 2 cores: 1 each)")
    args = ap.parse_args()
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        raise SystemExit(f"unknown configuration(s): {', '.join(unknown)}; known: {', '.join(CONFIGS)}")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"{os.cpu_count()} cores, {torch.get_num_threads()} threads, CPU: {describe_cpu()}, torch {torch.__version__}"
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    reports = run_all(names, out, args.reuse)
    cols = ("tp_last", "loop_rate", "seq_rep_4_matched", "legit", "length", "eos", "ppl_general", "ppl")
    heads = ("TP last", "loops@256", "seq-rep-4 (matched)", "legit", "length", "EOS", "ppl general", "ppl held-out")
    print("\n| configuration | " + " | ".join(heads) + " | kept step | training |")
    print("|---|" + "---:|" * (len(cols) + 2))
    shown_bases = set()
    for name, r in reports.items():
        key = json.dumps(r["before"].get("probe", {}).get("tp_last"))
        if key not in shown_bases:
            shown_bases.add(key)
            b = row(r, "before")
            print(f"| base ({name}'s data) | " + " | ".join(f"{b[c]:.3f}" for c in cols) + " | | |")
        a = row(r, "after")
        kept = (r["training"].get("selection") or {}).get("kept_step")
        print(f"| {name} | " + " | ".join(f"{a[c]:.3f}" for c in cols)
              + f" | {kept if kept is not None else r['training']['steps']} | {r['training']['elapsed_s'] / 60:.1f} min |")  # fmt: skip
    print("\nanswers ending at EOS after training, by what the base did on the same prompt:")
    for name, r in reports.items():
        e = end_breakdown(r)
        if e:
            print(f"  {name}: {sum(e[k] for k in ('base_ended', 'base_looped', 'base_went_on'))} of {e['answers']}: "
                  f"the base ended too {e['base_ended']}, looped {e['base_looped']}, went on {e['base_went_on']}")  # fmt: skip
    for name in reports:
        print(f"\ntargets, {name}:")
        for what, ok in targets(reports[name]).items():
            print(f"  {'met ' if ok else 'MISSED'}  {what}")
    if args.cost:
        print(
            "\ntraining cost: tokens/s of each method against a plain MLE Trainer step on the same batches (this run)"
        )
        methods = sorted({CONFIGS[n].get("method", "ditto") for n in names})
        for method, (mine, plain) in cost_ratios(methods).items():
            print(f"  {method:9s} {mine:7.1f} vs {plain:7.1f} tokens/s = {mine / plain:.2f}x")
    Path(out, "benchmark.json").write_text(json.dumps({n: {k: r[k] for k in ("before", "after", "training")}
                                                        for n, r in reports.items()}, default=str))  # fmt: skip


if __name__ == "__main__":
    os.environ.setdefault("TQDM_DISABLE", "1")
    main()
