"""Where trained answers end, on more prompts than the training evaluation's 32.

Greedy answers (as chat, --new-tokens) of the base and of each trained checkpoint to the
requests of a file (by default every other line of ``benchmarks/data/story_beginnings.txt``:
96 beginnings of a story or an account, of the kind of the open-ended evaluation prompts and
none of them). Prints each model's EOS rate, loops and mean length, and for each trained
model where its answers end against the base's answer to the same prompt
(``repcheck.train.evaluate.add_end_breakdown``: the base ended there too, looped there, or
went on without a loop), with how many of the last ended within --short tokens.

Usage: python benchmarks/where_answers_end.py TRAINED [TRAINED ...] [--base smollm2-135m]
       [--requests FILE] [--every 2] [--new-tokens 256] [--threads N]
"""

from __future__ import annotations

import argparse
import time


def answers(spec: str, requests: list[str], new_tokens: int) -> dict:
    """The training evaluation's greedy answers and their metrics (with the per-answer
    ``ended`` and ``looped`` flags the breakdown reads)."""
    from repcheck import load_model
    from repcheck.train.evaluate import answer_metrics, greedy_answers

    return answer_metrics(greedy_answers(load_model(spec, device="cpu"), requests, new_tokens))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("trained", nargs="+")
    ap.add_argument("--base", default="smollm2-135m")
    ap.add_argument("--requests", default="benchmarks/data/story_beginnings.txt")
    ap.add_argument("--every", type=int, default=2, help="take every N-th request of the file")
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--short", type=int, default=64, help="an end within this many tokens is early")
    ap.add_argument("--threads", type=int)
    args = ap.parse_args()

    import torch

    from repcheck.cpu import describe_cpu
    from repcheck.threads import LoadMeter
    from repcheck.train.evaluate import add_end_breakdown
    from repcheck.train.selfgen import read_requests

    if args.threads:
        torch.set_num_threads(args.threads)
    requests = read_requests(args.requests)[:: args.every]
    print(f"{len(requests)} requests of {args.requests}; greedy, as chat where the model has a template, {args.new_tokens} new tokens; "
          f"{torch.get_num_threads()} threads, CPU: {describe_cpu()}")  # fmt: skip
    base = None
    for spec in [args.base, *args.trained]:
        started = time.perf_counter()
        with LoadMeter() as load:
            block = answers(spec, requests, args.new_tokens)
        n = len(block["ended"])
        print(f"{spec}: EOS {sum(block['ended'])} of {n}, loops {sum(block['looped'])}, mean length "
              f"{block['mean_length']:.0f} ({time.perf_counter() - started:.0f} s; {load.describe()})")  # fmt: skip
        if base is None:
            base = block
            continue
        before, after = {"generation": dict(base)}, {"generation": block}
        add_end_breakdown(before, after)
        e = block["eos_breakdown"]
        lengths = map(len, block["continuations"])
        early = sum(
            1
            for ended, length, b_ended, b_looped in zip(block["ended"], lengths, base["ended"], base["looped"])
            if ended and length < args.short and not b_ended and not b_looped
        )
        print(f"  ends at EOS where the base ended too {e['base_ended']}, looped {e['base_looped']}, went on "
              f"{e['base_went_on']} ({early} of them within {args.short} tokens)")  # fmt: skip


if __name__ == "__main__":
    main()
