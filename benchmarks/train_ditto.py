"""The result that counts for `repcheck train`: DITTO on the built-in SmolLM2-135M, on this CPU.

Trains once per method (DITTO, the MLE control, token- and sequence-level unlikelihood,
ScaleGrad) with the shipped corpus and the default budget, and prints before -> after on the
held-out split: TP at the last of 8 copies, greedy seq-rep-4 on the open-ended prompts, and
held-out perplexity, with the targets:

  * DITTO brings TP at the last copy from its base value (~0.95) to 0.5 or less,
  * cuts greedy seq-rep-4 by at least half,
  * keeps held-out perplexity within +10% of the base model,
  * and the MLE control does neither of the first two;

then the training cost of each method against a plain MLE step of transformers' Trainer on
the same batches (the model's own loss, labels = input ids), in this same run: tokens/s of
each against the plain step's (target >= 0.8; sequence-level unlikelihood also decodes).

Usage: python benchmarks/train_ditto.py [--steps 200] [--methods ditto,mle,...] [--out runs/bench-train] [--reuse]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from repcheck.cpu import describe_cpu

METHODS = ("ditto", "mle", "ul-token", "ul-seq", "scalegrad")


def train_all(steps: int, methods: list[str], out: Path, reuse: bool = False) -> dict[str, dict]:
    from repcheck.train import TrainConfig, train
    from repcheck.train.run import last_checkpoint

    reports = {}
    for method in methods:
        done = out / method / "report.json"
        if reuse and done.is_file():  # an earlier, interrupted run of this benchmark trained it already
            report = json.loads(done.read_text())
            if report["training"]["steps"] == steps:
                wall = float(report.get("wall_s") or report["training"]["elapsed_s"])
                reports[method] = {**report, "wall_s": wall}
                print(f"  {method:9s} reused from {done} ({wall / 60:5.1f} min of training)", flush=True)
                continue
        # an interrupted run left a checkpoint: continue it (its training time then covers only this sitting)
        resume = reuse and last_checkpoint(out / method) is not None
        if resume:
            print(f"  {method:9s} resuming from {last_checkpoint(out / method)}", flush=True)
        started = time.perf_counter()
        result = train(
            TrainConfig(method=method, steps=steps, out=str(out / method), overwrite=not resume, resume=resume)
        )
        wall = time.perf_counter() - started
        reports[method] = {**result.report, "wall_s": wall}
        print(f"  {method:9s} trained in {wall / 60:5.1f} min wall", flush=True)
    return reports


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
        cfg = TrainConfig(method=method, steps=steps, warmup_steps=0)
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
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--out", default="runs/bench-train")
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="read OUT/METHOD/report.json where an earlier run left one; resume from its last checkpoint where it left only that",
    )
    args = ap.parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    import torch

    print(f"{os.cpu_count()} cores, CPU: {describe_cpu()}, torch {torch.__version__}, {args.steps} steps per method")
    reports = train_all(args.steps, methods, Path(args.out), args.reuse)
    base = next(iter(reports.values()))["before"]
    print("\nbefore -> after on the held-out split (TP: last of 8 copies; seq-rep-4: greedy, open-ended prompts)")
    print(f"  {'method':9s} {'TP(K-1)':>17s} {'seq-rep-4':>17s} {'perplexity':>19s}  wall")
    print(
        f"  {'base':9s} {base['probe']['tp_last']:17.3f} {base['generation']['seq_rep_4']:17.3f} {base['perplexity']:19.2f}"
    )
    for method, r in reports.items():
        a = r["after"]
        print(
            f"  {method:9s} {base['probe']['tp_last']:.3f} -> {a['probe']['tp_last']:.3f} "
            f"{base['generation']['seq_rep_4']:8.3f} -> {a['generation']['seq_rep_4']:.3f} "
            f"{base['perplexity']:9.2f} -> {a['perplexity']:6.2f} ({a['perplexity'] / base['perplexity'] - 1:+.1%})"
            f"  {r['wall_s'] / 60:.1f} min"
        )
    if "ditto" in reports:
        a = reports["ditto"]["after"]
        checks = {
            "DITTO: TP at the last copy <= 0.5": a["probe"]["tp_last"] <= 0.5,
            "DITTO: seq-rep-4 cut by at least half": a["generation"]["seq_rep_4"]
            <= base["generation"]["seq_rep_4"] / 2,
            "DITTO: perplexity within +10%": a["perplexity"] <= 1.1 * base["perplexity"],
            "DITTO: at most 20 minutes": reports["ditto"]["wall_s"] <= 20 * 60,
        }
        if "mle" in reports:
            m = reports["mle"]["after"]
            checks["MLE control: TP at the last copy not <= 0.5"] = m["probe"]["tp_last"] > 0.5
            checks["MLE control: seq-rep-4 not cut by half"] = (
                m["generation"]["seq_rep_4"] > base["generation"]["seq_rep_4"] / 2
            )
        print("\ntargets:")
        for name, ok in checks.items():
            print(f"  {'met ' if ok else 'MISSED'}  {name}")
    print("\ntraining cost: tokens/s of each method against a plain MLE Trainer step on the same batches (this run)")
    for method, (mine, plain) in cost_ratios(methods).items():
        print(f"  {method:9s} {mine:7.1f} vs {plain:7.1f} tokens/s = {mine / plain:.2f}x")
    summary = {m: {k: r[k] for k in ("before", "after", "training", "wall_s")} for m, r in reports.items()}
    Path(args.out, "benchmark.json").write_text(json.dumps(summary, indent=1, default=str))


if __name__ == "__main__":
    os.environ.setdefault("TQDM_DISABLE", "1")
    main()
