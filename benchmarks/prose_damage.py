"""Where a trained checkpoint's general-prose perplexity goes: per token against the base.

The training evaluation's "perplexity on general prose" (wiki_en, in the same blocks of
--block-size tokens after a BOS) says how much; this says where. It scores the text with the
base and the trained model and prints the mean change of log-probability at sentence starts
(the token after a sentence's final punctuation) and elsewhere, the tokens that lost most, and
at sentence starts each model's most likely token and the mean probability of the special
tokens (end of turn, end of text): a cure that moves probability there ends answers early.

Usage: python benchmarks/prose_damage.py TRAINED [TRAINED ...] [--base smollm2-135m] [--block-size 128]
"""

from __future__ import annotations

import argparse
from collections import Counter


def token_logps(model, blocks):
    """([N] log-probability of each scored token, [N, V] probabilities there), blocks concatenated;
    every token after each block's first is scored."""
    import torch

    lps, probs = [], []
    with torch.no_grad():
        for block in blocks:
            ids = torch.tensor([block], device=model.device)
            p = model.model(ids).logits[0, :-1].float().softmax(-1).cpu()
            probs.append(p)
            lps.append(p.gather(-1, ids[0, 1:, None].cpu())[:, 0].log())
    return torch.cat(lps), torch.cat(probs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("trained", nargs="+")
    ap.add_argument("--base", default="smollm2-135m")
    ap.add_argument("--block-size", type=int, default=128)
    ap.add_argument("--show", type=int, default=12, help="tokens that lost most, shown per model")
    args = ap.parse_args()

    from repcheck import load_model
    from repcheck.gate.suite import read_set
    from repcheck.train.data import text_blocks

    base = load_model(args.base, device="cpu")
    tok = base.tokenizer
    blocks = text_blocks(tok, [" ".join(read_set("wiki_en", None))], args.block_size)
    targets = [t for b in blocks for t in b[1:]]
    previous = [t for b in blocks for t in b[:-1]]
    words = tok.convert_ids_to_tokens(targets)
    # [N] True where the scored token starts a sentence (the token before it ends one)
    starts = [w.strip("Ġ▁ ") in {".", "!", "?", "。"} for w in tok.convert_ids_to_tokens(previous)]
    at = [i for i, s in enumerate(starts) if s]
    rest = [i for i, s in enumerate(starts) if not s]
    special = {name: tok.convert_tokens_to_ids(t) for name, t in (("eos", tok.eos_token), ("bos", tok.bos_token)) if t}
    base_lp, base_p = token_logps(base, blocks)
    print(f"{len(targets)} tokens of wiki_en in {len(blocks)} blocks; {len(at)} sentence starts")

    def top_at_starts(p):
        return Counter(tok.convert_ids_to_tokens(int(p[i].argmax())) for i in at).most_common(3)

    def special_at_starts(p):
        return {
            f"{name} {tok.convert_ids_to_tokens(i)}": round(float(p[at, i].mean()), 3) for name, i in special.items()
        }

    print(f"base: perplexity {float((-base_lp).mean().exp()):.2f}; at sentence starts: top-1 {top_at_starts(base_p)}, "
          f"mean P {special_at_starts(base_p)}")  # fmt: skip
    for spec in args.trained:
        lp, p = token_logps(load_model(spec, device="cpu"), blocks)
        delta = lp - base_lp  # [N] nats gained (> 0) or lost (< 0) per token
        print(f"\n{spec}: perplexity {float((-lp).mean().exp()):.2f}; change of log-probability per token: "
              f"sentence starts {float(delta[at].mean()):+.3f}, elsewhere {float(delta[rest].mean()):+.3f} "
              f"(share of the loss from sentence starts {float(delta[at].sum() / delta.sum()):.0%})")  # fmt: skip
        print(f"  at sentence starts: top-1 {top_at_starts(p)}, mean P {special_at_starts(p)}")
        for i in delta.argsort()[: args.show].tolist():
            context = tok.decode(targets[max(0, i - 6) : i]).replace("\n", " ")
            print(f"  {delta[i]:+6.2f}  {words[i]!r:14s} after …{context!r}")


if __name__ == "__main__":
    main()
