"""The legitimate-repetition suite's cost on the built-in model: the shipped suite under one
setting in one batched request (each case with its own budget), and a sample of its cases one
generate call at a time, both in this run.

Prints the suite's wall time (the target: under 2 minutes on a 2-core CPU), new tokens/s
batched and one case at a time and their ratio, the pass rate, the CPU and the load it ran under.

Usage: python benchmarks/legit_suite.py [--setting greedy] [--one-at-a-time 24]
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--setting", default="greedy")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--one-at-a-time", type=int, default=24, help="cases generated one call each, for the ratio")
    args = ap.parse_args()

    import torch

    from repcheck import load_model
    from repcheck.cpu import describe_cpu
    from repcheck.decoding import parse_setting
    from repcheck.legit import LegitSuite, load_legit_suite, run_legit
    from repcheck.threads import LoadMeter, apply_threads

    apply_threads()
    model = load_model(device="cpu")
    suite = load_legit_suite()
    setting = parse_setting(args.setting)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32; CPU: {describe_cpu()}")
    run_legit(model, LegitSuite("warm-up", suite.cases[:2]), setting)  # warm up
    with LoadMeter() as load:
        start = time.perf_counter()
        batched = run_legit(model, suite, setting, batch_size=args.batch_size)
        wall = time.perf_counter() - start
        sample = LegitSuite("sample", suite.cases[:: max(1, len(suite) // args.one_at_a_time)][: args.one_at_a_time])
        alone = run_legit(model, sample, setting, batch_size=1)
        same = run_legit(model, sample, setting, batch_size=args.batch_size)
    rate_batched = batched.new_tokens / batched.elapsed_s
    print(
        f"shipped suite ({len(suite)} cases), {setting.name}: {wall:.1f} s wall "
        f"({batched.elapsed_s:.1f} s generating, {batched.new_tokens} new tokens, {rate_batched:.1f} tokens/s); "
        f"pass rate {batched.pass_rate:.3f} [{batched.ci95[0]:.3f}, {batched.ci95[1]:.3f}]"
    )
    r_alone, r_same = alone.new_tokens / alone.elapsed_s, same.new_tokens / same.elapsed_s
    print(
        f"{len(sample)} of its cases: one generate call each {r_alone:.1f} tokens/s, batched {r_same:.1f} tokens/s: "
        f"{r_same / r_alone:.2f}x; identical continuations: "
        f"{[c.token_ids for c in alone.cases] == [c.token_ids for c in same.cases]}"
    )
    print(f"target: the suite under 2 minutes: {'met' if wall < 120 else 'MISSED'} ({wall:.1f} s); {load.describe()}")


if __name__ == "__main__":
    os.environ.setdefault("TQDM_DISABLE", "1")
    main()
