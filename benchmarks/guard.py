"""The loop guard's thresholds, measured: what they catch, how late, what they wrongly flag, and
what they cost.

On the built-in model (or --model), in one run:
  * loops: greedy answers to the open-ended prompts (and the chat and reasoning sets, as chat)
    at --new-tokens tokens; for every answer that ends in a loop (``detect_loop``), the delay
    between the loop's start and the guard's confirmation, in tokens and in periods;
  * false positives: the guard run over the model's passing answers to the legitimate-
    repetition suite (greedy) and over the shipped human text (wiki_en, zh, the training
    corpus), each as one stream;
  * cost: tokens/s of the guard alone (a batch of 16 streams), and greedy generation of the
    same prompts with and without --stop-on-loop's StoppingCriteria, on prompts that do not loop
    (the overhead) and on all (the tokens saved);
for the default thresholds and a grid around them, with the CPU's kind and the load.

Usage: python benchmarks/guard.py [--new-tokens 256] [--model smollm2-135m]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--new-tokens", type=int, default=256)
    args = ap.parse_args()

    import numpy as np

    from repcheck import load_model
    from repcheck.cpu import describe_cpu
    from repcheck.decoding import parse_setting
    from repcheck.generation import generate
    from repcheck.guard import DEFAULT_GUARD, BatchLoopGuard, GuardConfig, find_loop
    from repcheck.legit import load_legit_suite, run_legit
    from repcheck.prompts import read_prompts
    from repcheck.repetition import detect_loop
    from repcheck.sentences import read_sentences
    from repcheck.threads import LoadMeter
    from repcheck.train.data import read_corpus

    print(f"{os.cpu_count()} cores, CPU: {describe_cpu()}")
    model = load_model(args.model)
    tok = model.tokenizer
    greedy = parse_setting("greedy")
    with LoadMeter() as load:
        prompts = read_prompts("open_ended")
        chats = read_prompts("chat_en") + read_prompts("reasoning_en") + read_prompts("chat_zh")
        answers = []
        for batch in (prompts, chats):
            run = generate(model, batch, greedy, max_new_tokens=args.new_tokens, batch_size=16)
            answers += [g.token_ids for g in run.generations]
        legit = run_legit(model, load_legit_suite(), greedy)
    passing = [c.token_ids for c in legit.cases if c.passed]
    human = {
        name: tok(" ".join(read_sentences(name)), add_special_tokens=False)["input_ids"] for name in ("wiki_en", "zh")
    }
    human["python_docs"] = tok(" ".join(read_corpus()), add_special_tokens=False)["input_ids"]
    looping = [(a, detect_loop(a)) for a in answers]
    looping = [(a, loop) for a, loop in looping if loop is not None]
    print(f"\n{len(answers)} greedy answers of {args.new_tokens} tokens, {len(looping)} end in a loop; "
          f"{len(passing)} passing legit answers; {sum(map(len, human.values()))} tokens of human text; {load.describe()}")  # fmt: skip

    print(
        "\n| max period | min repeats | min tokens | loops caught | delay (tokens) median / max | delay (periods) "
        "median | legit answers flagged | human text flagged |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    grid = sorted({(64, r, t) for r in (2, 3, 4) for t in (16, 32, 48, 64)} | {(128, 3, 48)})
    for mp, r, t in grid:
        cfg = GuardConfig(mp, r, t)
        delays, periods = [], []
        for a, loop in looping:
            found = find_loop(a, cfg)
            if found is not None:
                delays.append(found.at - loop.start)
                periods.append((found.at - loop.start) / loop.period)
        flagged = sum(find_loop(a, cfg) is not None for a in passing)
        texts = [name for name, ids in human.items() if find_loop(ids, cfg) is not None]
        mark = " (default)" if cfg == DEFAULT_GUARD else ""
        print(f"| {mp} | {r} | {t}{mark} | {len(delays)}/{len(looping)} | "
              f"{statistics.median(delays) if delays else '-'} / {max(delays) if delays else '-'} | "
              f"{statistics.median(periods) if periods else float('nan'):.1f} | {flagged}/{len(passing)} | "
              f"{', '.join(texts) or 'none'} |")  # fmt: skip

    # the guard alone: a batch of 16 streams
    streams = np.random.default_rng(0).integers(0, len(tok), size=(16, 4096))
    guard = BatchLoopGuard(16, DEFAULT_GUARD)
    began = time.perf_counter()
    for step in range(streams.shape[1]):
        guard.feed(streams[:, step])
    rate = streams.size / (time.perf_counter() - began)
    print(f"\nthe guard alone: {rate:,.0f} tokens/s over 16 streams (numpy)")

    # overhead inside generation: the prompts that do not loop, with and without the guard
    quiet = [p for p, a in zip(prompts, answers) if detect_loop(a) is None][:16]
    if quiet:
        t0 = time.perf_counter()
        generate(model, quiet, greedy, max_new_tokens=args.new_tokens, batch_size=16)
        plain = time.perf_counter() - t0
        t0 = time.perf_counter()
        generate(model, quiet, greedy, max_new_tokens=args.new_tokens, batch_size=16, stop_on_loop=DEFAULT_GUARD)
        guarded = time.perf_counter() - t0
        print(f"generation of {len(quiet)} non-looping prompts: {plain:.1f} s without the guard, {guarded:.1f} s with "
              f"it ({guarded / plain - 1:+.1%}; the same run, this machine's noise included)")  # fmt: skip
    run = generate(model, prompts, greedy, max_new_tokens=args.new_tokens, batch_size=16, stop_on_loop=DEFAULT_GUARD)
    summary = run.guard_summary()
    print(f"open-ended prompts with --stop-on-loop: {summary['stopped']} of {len(prompts)} stopped, "
          f"{summary['tokens_saved']} of {len(prompts) * args.new_tokens} tokens not generated")  # fmt: skip


if __name__ == "__main__":
    os.environ.setdefault("TQDM_DISABLE", "1")
    main()
