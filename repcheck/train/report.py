"""The training report: ``report.json`` (the source of truth) and ``before_after.png``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..provenance import envelope, json_safe
from .evaluate import comparison


def report_document(
    config: dict[str, Any],
    data: dict[str, Any],
    training: dict[str, Any] | None,
    before: dict[str, Any],
    after: dict[str, Any],
    models: dict[str, Any],
) -> dict[str, Any]:
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
        }
    )


def plot_before_after(doc: dict[str, Any], path: str | Path):
    """TP per copy before and after (95% bands), and seq-rep-4 and perplexity as bars."""
    from ..plotkit import BLUE, RED, clip, copy_axis, figure, save, style

    method = doc["config"]["method"] if doc.get("training") else "checkpoint"
    with style():
        fig, (ax, bars) = figure(11, 4.6, 1, 2, gridspec_kw={"width_ratios": [1.7, 1]})
        for key, color, label in (("before", BLUE, "before"), ("after", RED, f"after ({method})")):
            rows = doc[key]["probe"]["per_copy"]
            ns = [r["n"] for r in rows]
            ax.plot(ns, [r["tp"] for r in rows], marker="o", ms=4, color=color, label=f"{label}: TP")
            lo = [r["ci95"]["tp"][0] for r in rows]
            if all(v is not None for v in lo):
                hi = [r["ci95"]["tp"][1] for r in rows]
                ax.fill_between(ns, [clip(v) for v in lo], [clip(v) for v in hi], color=color, alpha=0.15, lw=0)
        ax.set_ylim(-0.02, 1.05)
        copy_axis(ax, len(doc["before"]["probe"]["per_copy"]))
        ax.set_ylabel("TP (held-out sentences)")
        ax.grid(alpha=0.3)
        ax.legend(frameon=False, fontsize=8, loc="lower right")
        n = doc["before"]["probe"]["per_copy"][0]["n_sentences"]
        ax.set_title(f"Self-reinforcement on {n} held-out sentences (95% bands)", fontsize=10)

        labels = ["seq-rep-4\n(greedy)", "loop rate\n(greedy)", "perplexity\n(relative to before)"]
        b, a = doc["before"], doc["after"]
        before_vals = [b["generation"]["seq_rep_4"], b["generation"]["loop_rate"], 1.0]
        after_vals = [a["generation"]["seq_rep_4"], a["generation"]["loop_rate"], a["perplexity"] / b["perplexity"]]
        x = range(len(labels))
        bars.bar(
            [i - 0.2 for i in x], [math.nan if v is None else v for v in before_vals], 0.4, color=BLUE, label="before"
        )
        bars.bar(
            [i + 0.2 for i in x], [math.nan if v is None else v for v in after_vals], 0.4, color=RED, label="after"
        )
        bars.set_xticks(list(x), labels, fontsize=8)
        bars.axhline(1.0, color="grey", lw=0.6, ls=":")
        bars.set_title(f"perplexity {b['perplexity']:.1f} → {a['perplexity']:.1f}", fontsize=10)
        bars.legend(frameon=False, fontsize=8)
        bars.grid(axis="y", alpha=0.3)
        fig.suptitle(
            f"{doc['models']['before']['name']} → {doc['models']['after']['name']}"
            + (f": {doc['training']['steps']} steps of {method}" if doc.get("training") else ""),
            fontsize=10,
        )
        return save(fig, path)
