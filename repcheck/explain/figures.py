"""Figures of an explain run, drawn from its JSON document alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..plotkit import BLUE, BROWN, PURPLE, RED, copy_axis, figure, save, short, style


def explain_figures(doc: dict[str, Any], directory: Path, fmt: str) -> list[Path]:
    written = [directory / f"heads.{fmt}", directory / f"ablation.{fmt}", directory / f"profile.{fmt}"]
    plot_heads(doc, written[0])
    plot_ablation(doc, written[1])
    plot_profile(doc, written[2])
    return written


def _subject(doc: dict[str, Any]) -> str:
    s = doc["sentences"]
    return f"“{short(s[0], 70)}”" if len(s) == 1 else f"{len(s)} sentences"


def plot_heads(doc: dict[str, Any], path: str | Path):
    """Layer x head heatmap of the induction score, the top heads outlined."""
    from matplotlib.patches import Rectangle

    layers, heads = doc["settings"]["layers"], doc["settings"]["heads_per_layer"]
    grid = np.zeros((layers, heads))
    for h in doc["heads"]:
        grid[h["layer"], h["head"]] = h["induction"]
    with style():
        fig, ax = figure(max(5.0, 0.45 * heads + 2.5), max(4.0, 0.22 * layers + 1.8))
        im = ax.imshow(grid, aspect="auto", cmap="viridis", vmin=0, vmax=max(grid.max(), 1e-6), origin="lower")
        for layer, head in doc["top_heads"]:
            ax.add_patch(Rectangle((head - 0.5, layer - 0.5), 1, 1, fill=False, edgecolor=RED, lw=1.8))
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        ax.set_xticks(range(heads))
        fig.colorbar(im, ax=ax, label="induction score: attention to the token after the previous occurrence")
        ax.set_title(
            f"Induction heads, {doc['model']['name']}: {_subject(doc)}, K={doc['repeats']}\n"
            f"(red: the top {len(doc['top_heads'])})",
            fontsize=9,
        )
        return save(fig, path)


def plot_ablation(doc: dict[str, Any], path: str | Path):
    """TP per copy: baseline, top heads ablated, random heads (mean and range over draws),
    top neurons ablated, random neurons."""
    from matplotlib.patches import Patch

    ab = doc["ablations"]
    K = doc["repeats"]
    # (color, line style, marker, line width, z-order, label): the baseline is drawn thick and
    # underneath, the others thinner with hollow markers on top, so a curve equal to the
    # baseline (random neurons often are) stays visible
    styles = {
        "baseline": ("black", "-", "o", 3.2, 2, "no ablation"),
        "top_heads": (RED, "-", "s", 1.6, 4, f"top {doc['settings']['top']} heads ablated"),
        "random_heads": (BLUE, "--", "^", 1.4, 5, f"{doc['settings']['top']} random heads (mean over draws)"),
        "top_neurons": (PURPLE, "-", "D", 1.6, 4, f"top {doc['settings']['neurons_ablated']} neurons ablated"),
        "random_neurons": (BROWN, ":", "v", 1.8, 6, "as many random neurons (mean over draws)"),
    }
    with style():
        fig, ax = figure(8.4, 4.8)
        banded = False
        for i, (name, (color, ls, marker, lw, z, label)) in enumerate(styles.items()):
            rows = ab[name]["per_copy"]
            # each curve a little to the side of its copy: equal values stay side by side, not hidden
            ns = [r["n"] + 0.05 * (i - 2) for r in rows]
            hollow = {} if name == "baseline" else {"mfc": "white", "mew": 1.2}
            ax.plot(ns, [r["tp"] for r in rows], color=color, ls=ls, lw=lw, marker=marker, ms=5, zorder=z,
                    label=label, **hollow)  # fmt: skip
            if ab[name]["draws"] > 1:
                banded = True
                ax.fill_between(
                    ns, [r["tp_min"] for r in rows], [r["tp_max"] for r in rows], color=color, alpha=0.15, lw=0
                )
        handles, labels = ax.get_legend_handles_labels()
        if banded:
            handles.append(Patch(color="grey", alpha=0.3, lw=0))
            labels.append("shaded: range over the random draws")
        ax.set_ylim(-0.02, 1.05)
        copy_axis(ax, K)
        ax.set_ylabel("TP (probability of the repeat)")
        ax.grid(alpha=0.3)
        ax.legend(handles, labels, fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.01, 0.5))
        ax.set_title(f"Ablations ({doc['settings']['ablation']}), {doc['model']['name']}: {_subject(doc)}", fontsize=9)
        return save(fig, path)


def plot_profile(doc: dict[str, Any], path: str | Path):
    """The top heads' induction score per copy beside TP: does the copying rise with the curve?"""
    import matplotlib

    prof = doc["profile"]
    K = doc["repeats"]
    cmap = matplotlib.colormaps["tab10"]
    with style():
        fig, ax = figure(8.4, 4.8)
        ax.plot(range(K), prof["tp"], color="black", lw=2.4, marker="o", ms=4, label="TP (no ablation)")
        for i, ((layer, head), values) in enumerate(zip(prof["heads"], prof["induction"])):
            ax.plot(range(K), values, color=cmap(i % 10), ls="--", marker=".", label=f"head {layer}.{head} induction")
        ax.set_ylim(-0.02, 1.05)
        copy_axis(ax, K)
        ax.set_ylabel("probability / attention weight")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.01, 0.5))
        ax.set_title(f"Copying attention per copy, {doc['model']['name']}: {_subject(doc)}", fontsize=9)
        return save(fig, path)
