"""How close a call each end of a trained model's answers is.

Each checkpoint answers the open-ended evaluation prompts (the training evaluation's greedy
answers: ``sample_prompts/open_ended.txt``, as chat where the model has a template,
--new-tokens). At the position where an answer ends at EOS, the checkpoint's own next-token
distribution (its answer teacher-forced) gives the probability of ending (``repcheck.train.data.end_tokens``) and the best other
token; the base model's probability of ending at the same place is printed beside it. An end
whose margin over the best other token is under --margin is a close call: a small change to
the chance of ending (``--end-scale``, docs/training.md) decides that answer.

Usage: python benchmarks/end_calls.py TRAINED [TRAINED ...] [--base smollm2-135m] [--margin 0.1]
"""

from __future__ import annotations

import argparse


def end_points(model, base, prompts: list[str], new_tokens: int, ends: list[int]) -> list[dict]:
    """For each answer of ``model`` that ends at EOS: P(end) under it and under ``base``, and the best other token."""
    import torch

    from repcheck.train.evaluate import greedy_answers, rendered_prompts

    tok = model.tokenizer
    raw, _, _ = greedy_answers(model, prompts, new_tokens)
    _, ids, _ = rendered_prompts(model, prompts)  # the prompts greedy_answers gave the model
    rows = []
    with torch.no_grad():
        for i, (prompt, g) in enumerate(zip(ids, raw, strict=True)):
            if not g.finished:
                continue
            answer = [t for t in g.token_ids if t not in ends]
            x = torch.tensor([list(prompt) + answer], device=model.device)
            p = model.model(x).logits[0, -1].float().softmax(-1)  # [V]: what follows the answer
            q = base.model(x.to(base.device)).logits[0, -1].float().softmax(-1)
            other = p.clone()
            other[ends] = 0
            best = int(other.argmax())
            rows.append({"prompt": i, "tokens": len(answer), "p_end": float(p[ends].sum()), "base_p_end": float(q[ends].sum()),
                         "other": tok.decode([best]), "p_other": float(other[best])})  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("trained", nargs="+")
    ap.add_argument("--base", default="smollm2-135m")
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--margin", type=float, default=0.1)
    ap.add_argument("--threads", type=int)
    args = ap.parse_args()

    import torch

    from repcheck import load_model
    from repcheck.gate.suite import read_set
    from repcheck.train.data import end_tokens

    if args.threads:
        torch.set_num_threads(args.threads)
    base = load_model(args.base, device="cpu")
    ends = end_tokens(base.tokenizer, getattr(base.model, "generation_config", None))
    prompts = read_set("open_ended", None)
    for spec in args.trained:
        rows = end_points(load_model(spec, device="cpu"), base, prompts, args.new_tokens, ends)
        close = [r for r in rows if r["p_end"] - r["p_other"] < args.margin]
        print(f"{spec}: {len(rows)} of {len(prompts)} answers end at EOS; {len(close)} within {args.margin} of the best "
              f"other token")  # fmt: skip
        for r in rows:
            print(f"  prompt {r['prompt']:2d} after {r['tokens']:3d} tokens: P(end) {r['p_end']:.2f} (base "
                  f"{r['base_p_end']:.3f}), best other {r['other']!r} {r['p_other']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
