"""The README's figure of the probe in its three layouts on the built-in model: the copies as
plain text, as one assistant answer (probe --chat), and as the same answer in K turns to K
different questions (probe --turns), on the same wiki_en sentences.

Usage: python scripts/probe_layouts.py [--sentences 24] [--repeats 8] [--out docs/img/probe_layouts.png]
"""

from __future__ import annotations

import argparse
import json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sentences", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=8)
    ap.add_argument("--out", default="docs/img/probe_layouts.png")
    args = ap.parse_args()
    from repcheck import load_model, probe, read_sentences
    from repcheck.plots import plot_layouts
    from repcheck.probing import CHAT_USER, probe_turns

    model = load_model()
    sentences = read_sentences("wiki_en", limit=args.sentences)
    results = {
        "plain (BOS, then the copies)": probe(model, sentences, repeats=args.repeats),
        f"chat: one answer to {CHAT_USER!r}": probe(model, sentences, repeats=args.repeats, chat=CHAT_USER),
        "turns: the same answer to K questions": probe_turns(model, sentences, repeats=args.repeats),
    }
    docs = {label: r.to_dict() for label, r in results.items()}
    for label, doc in docs.items():
        rows = doc["per_copy"]
        print(f"{label:42s} TP per copy: " + " ".join(f"{r['tp']:.3f}" for r in rows))
    plot_layouts(docs, args.out, f"{model.name}: TP and MP per copy in three layouts, {len(sentences)} wiki_en "
                 "sentences, 95% intervals")  # fmt: skip
    print(json.dumps({label: [round(r["tp"], 4) for r in doc["per_copy"]] for label, doc in docs.items()}))


if __name__ == "__main__":
    main()
