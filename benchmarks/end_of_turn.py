"""Where a trained checkpoint ends its answers: the end of turn after a sentence, against the base.

A cure that lowers the probability of repeating a sentence can move it to ending the answer
instead. This scores the same text with the base and each trained model and prints, at every
sentence end (after a token ending in . ! ? 。 or a newline) of an answer, the mean
probability of the end tokens (``repcheck.train.data.end_tokens``: EOS, the template's end of
turn) under each, for three kinds of conversation:

* ``open prompts``: the base's greedy answers (--new-tokens) to the open-ended evaluation
  prompts (``sample_prompts/open_ended.txt``, the training evaluation's), as chat;
* ``tasks`` and ``beginnings``: the model's own training answers (``repcheck train``'s cached
  self-generated data, made if missing) to the requests of each kind (``selfgen.TASKS``,
  ``selfgen.BEGINNINGS``), the first --answers of each.

Usage: python benchmarks/end_of_turn.py TRAINED [TRAINED ...] [--base smollm2-135m] [--answers 40]
"""

from __future__ import annotations

import argparse
from statistics import fmean


def sentence_end_probs(model, conversations, ends) -> list[float]:
    """P(any of ``ends``) at each sentence end of each (prompt ids, answer ids) conversation."""
    import torch

    tok = model.tokenizer
    out = []
    with torch.no_grad():
        for prompt, answer in conversations:
            ids = torch.tensor([list(prompt) + list(answer)], device=model.device)
            p = model.model(ids).logits[0].float().softmax(-1)[:, ends].sum(-1).cpu()  # [T]
            for j, word in enumerate(tok.convert_ids_to_tokens(list(answer)), start=1):
                if j < len(answer) and (word.strip("Ġ▁ ")[-1:] in {".", "!", "?", "。"} or "Ċ" in word or "\n" in word):
                    out.append(float(p[len(prompt) + j - 1]))  # predicts answer token j
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("trained", nargs="+")
    ap.add_argument("--base", default="smollm2-135m")
    ap.add_argument("--answers", type=int, default=40, help="training answers of each kind")
    ap.add_argument("--new-tokens", type=int, default=256)
    args = ap.parse_args()

    from repcheck import load_model
    from repcheck.gate.suite import read_set
    from repcheck.train.config import TrainConfig
    from repcheck.train.data import end_tokens
    from repcheck.train.evaluate import greedy_answers, rendered_prompts
    from repcheck.train.selfgen import BEGINNINGS, instructions, self_generated

    base = load_model(args.base, device="cpu")
    tok = base.tokenizer
    ends = end_tokens(tok, getattr(base.model, "generation_config", None))
    prompts = read_set("open_ended", None)
    greedy, _, _ = greedy_answers(base, prompts, args.new_tokens)  # the training evaluation's answers
    _, ids, _ = rendered_prompts(base, prompts)
    kinds = {"open prompts": list(zip(ids, [g.token_ids for g in greedy], strict=True))}

    cfg = TrainConfig()
    own = self_generated(base, cfg.self_samples, cfg.self_new_tokens, seed=cfg.seed)
    beginning = tuple(b.split("{t}")[0] for b in BEGINNINGS)
    requests = iter(instructions(cfg.self_samples, cfg.seed))  # the kept documents are in this order
    kinds.update(tasks=[], beginnings=[])
    for doc, answer in zip(own.documents, own.answers, strict=True):
        request = next(r for r in requests if r in doc)  # chat or plain text, the request is in it
        kind = "beginnings" if request.startswith(beginning) else "tasks"
        if len(kinds[kind]) < args.answers:
            head = doc[: doc.index(answer)]
            kinds[kind].append((tok(head, add_special_tokens=False)["input_ids"],
                                tok(answer, add_special_tokens=False)["input_ids"]))  # fmt: skip

    names = tok.convert_ids_to_tokens(ends)
    print(f"mean P({' + '.join(names)}) at sentence ends; base {args.base}")
    base_p = {kind: sentence_end_probs(base, conv, ends) for kind, conv in kinds.items()}
    for kind, values in base_p.items():
        print(f"  {kind:13s} {len(values):4d} sentence ends in {len(kinds[kind])} answers: base {fmean(values):.4f}")
    for spec in args.trained:
        model = load_model(spec, device="cpu")
        row = []
        for kind, conv in kinds.items():
            p = fmean(sentence_end_probs(model, conv, ends))
            row.append(f"{kind} {p:.4f} ({p / fmean(base_p[kind]):.1f}x)")
        print(f"{spec}: " + "; ".join(row))


if __name__ == "__main__":
    main()
