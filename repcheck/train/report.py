"""The training report: ``report.json`` (the source of truth) and ``before_after.png``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..provenance import envelope, json_safe
from .evaluate import add_end_breakdown, add_length_matched, comparison, legit_by_category


def report_document(
    config: dict[str, Any],
    data: dict[str, Any],
    training: dict[str, Any] | None,
    before: dict[str, Any],
    after: dict[str, Any],
    models: dict[str, Any],
) -> dict[str, Any]:
    add_length_matched(before, after)
    add_end_breakdown(before, after)
    return json_safe(
        {
            **envelope("train"),
            "config": config,
            "models": models,  # {"before": model info, "after": model info}
            "data": data,
            "training": training,  # None for --eval-only
            "before": before,
            "after": after,
            "comparison": comparison(before, after),
            "legit_by_category": legit_by_category(before, after),
        }
    )


def plot_before_after(doc: dict[str, Any], path: str | Path):
    """TP per copy before and after (95% bands); what the method removed (seq-rep-4, also
    length-matched, loop rate) and what it cost (perplexity, answer length, EOS); and, with a
    legit suite, legitimate repetition passed per category."""
    from ..plotkit import BLUE, RED, clip, copy_axis, figure, save, style

    method = doc["config"]["method"] if doc.get("training") else "checkpoint"
    b, a = doc["before"], doc["after"]
    legit = bool(doc.get("legit_by_category"))
    with style():
        ratios = [1.6, 1.3, 1.4] if legit else [1.7, 1.3]
        fig, axes = figure(15.5 if legit else 11.5, 4.8, 1, len(ratios), gridspec_kw={"width_ratios": ratios})
        ax, bars = axes[0], axes[1]
        for key, color, label in (("before", BLUE, "before"), ("after", RED, f"after ({method})")):
            rows = doc[key]["probe"]["per_copy"]
            ns = [r["n"] for r in rows]
            ax.plot(ns, [r["tp"] for r in rows], marker="o", ms=4, color=color, label=f"{label}: TP")
            lo = [r["ci95"]["tp"][0] for r in rows]
            if all(v is not None for v in lo):
                hi = [r["ci95"]["tp"][1] for r in rows]
                ax.fill_between(ns, [clip(v) for v in lo], [clip(v) for v in hi], color=color, alpha=0.15, lw=0)
        ax.set_ylim(-0.02, 1.05)
        copy_axis(ax, len(b["probe"]["per_copy"]))
        ax.set_ylabel("TP (held-out sentences)")
        ax.grid(alpha=0.3)
        ax.legend(frameon=False, fontsize=8, loc="lower right")
        n = b["probe"]["per_copy"][0]["n_sentences"]
        ax.set_title(f"Self-reinforcement on {n} held-out sentences (95% bands)", fontsize=10)

        g_b, g_a = b["generation"], a["generation"]
        length_b = g_b.get("mean_length")
        entries = [
            ("seq-rep-4", g_b["seq_rep_4"], g_a["seq_rep_4"]),
            ("seq-rep-4\nlength-\nmatched", g_b.get("seq_rep_4_matched"), g_a.get("seq_rep_4_matched")),
            ("loop rate", g_b["loop_rate"], g_a["loop_rate"]),
            ("EOS rate", g_b.get("eos_rate"), g_a.get("eos_rate")),
            ("length\n(÷ before)", 1.0 if length_b else None, g_a.get("mean_length") / length_b if length_b else None),
            ("perplexity\n(÷ before)", 1.0, a["perplexity"] / b["perplexity"]),
        ]
        x = range(len(entries))
        for offset, idx, color, label in ((-0.2, 1, BLUE, "before"), (0.2, 2, RED, "after")):
            values = [math.nan if e[idx] is None else e[idx] for e in entries]
            bars.bar([i + offset for i in x], values, 0.4, color=color, label=label)
        bars.set_xticks(list(x), [e[0] for e in entries], fontsize=7)
        bars.axhline(1.0, color="grey", lw=0.6, ls=":")
        bars.set_title(f"greedy generation; perplexity {b['perplexity']:.1f} → {a['perplexity']:.1f}", fontsize=10)
        bars.legend(frameon=False, fontsize=8)
        bars.grid(axis="y", alpha=0.3)
        if legit:
            cats = doc["legit_by_category"]
            panel = axes[2]
            names = ["all"] + [r["category"] for r in cats]
            before = [b["legit"]["pass_rate"]] + [r["before"] for r in cats]
            after = [a["legit"]["pass_rate"]] + [r["after"] for r in cats]
            y = range(len(names))
            panel.barh([i + 0.2 for i in y], before, 0.4, color=BLUE, label="before")
            panel.barh(
                [i - 0.2 for i in y], [math.nan if v is None else v for v in after], 0.4, color=RED, label="after"
            )
            panel.set_yticks(list(y), names, fontsize=8)
            panel.invert_yaxis()
            panel.set_xlim(0, 1.0)
            panel.set_xlabel("share of cases passed")
            panel.grid(axis="x", alpha=0.3)
            panel.legend(frameon=False, fontsize=8, loc="lower right")
            panel.set_title(f"legitimate repetition ({b['legit']['n']} cases, greedy)", fontsize=10)
        fig.suptitle(
            f"{doc['models']['before']['name']} → {doc['models']['after']['name']}"
            + (f": {doc['training']['steps']} steps of {method}" if doc.get("training") else ""),
            fontsize=10,
        )
        return save(fig, path)
