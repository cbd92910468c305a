"""Figures, drawn from a JSON document alone (``summary.json`` is the source of truth).

Probe (``probe_figures``):

* ``bars``: the paper's Figure 1. For each copy n, a red bar for the probability of the
  repeated token and a blue bar for the maximum probability, averaged over positions (and
  sentences, with 95% error bars), or at one token position; beyond 30 copies, lines.
* ``curve``: TP, MP, IP and WR against n (95% bands for a set), and beside it TP of the
  first, middle and last token of a copy.
* ``by_initial`` (sets): the mean TP curve of each quantile bin of TP(0), as the paper
  plots its third finding, with Spearman's correlation of TP(0) and the rise.

Compare (``compare_figures``): ``metrics`` (lower-is-better and higher-is-better metrics on
separate panels) and, with a probe, ``curves``. Diff (``diff_figures``): ``curves`` and
``bars`` (one panel per model and a panel of paired deltas).

Everything is drawn with ``repcheck.plotkit`` (fonts with fallback, no pyplot).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .metric_info import METRICS, label
from .plotkit import (
    BLUE,
    GREEN,
    PURPLE,
    RED,
    clip,
    cmap,
    copy_axis,
    distinct_colors,
    figure,
    interval_errors,
    place_labels,
    save,
    short,
    style,
)
from .stats import SMALL_N

#: Each curve has its own color, line style and marker, so equal values stay visible.
CURVE_STYLES = {
    "tp": dict(color=RED, ls="-", marker="o", ms=5, lw=2.0, zorder=4),
    "mp": dict(color=BLUE, ls="--", marker="s", ms=4, lw=1.5, zorder=3),
    "ip": dict(color=GREEN, ls=":", marker="^", ms=6, lw=2.0, zorder=5),
    "wr": dict(color=PURPLE, ls="-.", marker="x", ms=6, lw=1.5, zorder=6),
}
POSITION_STYLES = {"first": ("-", "o"), "middle": ("--", "s"), "last": (":", "^")}
MAX_BARS = 30  # beyond this many copies, bars become an unreadable strip: draw lines


def curve_label(key: str) -> str:
    """A curve's legend entry, from the one table of metric facts."""
    info = METRICS[key]
    return f"{info.label}: {info.description}"


def _subject(sentences: list[str], width: int = 90) -> str:
    if len(sentences) == 1:
        return f"“{short(sentences[0], width)}”"
    return f"mean of {len(sentences)} sentences"


def _band_note(n: int) -> str:
    if n < 2:
        return ""
    few = ", few sentences: read with care" if n < SMALL_N else ""
    return f" (band: 95% interval over N={n} sentences{few})"


# ---- probe ---------------------------------------------------------------------------------
def probe_figures(doc: dict[str, Any], directory: Path, fmt: str, position: int | None = None) -> list[Path]:
    """Every probe figure into ``directory``; returns the paths written."""
    written = [directory / f"bars.{fmt}", directory / f"curve.{fmt}"]
    plot_bars(doc, written[0], position=position)
    plot_curve(doc, written[1])
    if len(doc["sentences"]) >= 2:
        written.append(directory / f"by_initial.{fmt}")
        plot_by_initial(doc, written[-1])
    return written


def _title(doc: dict[str, Any], what: str) -> str:
    subject = _subject([s["text"] for s in doc["sentences"]])
    return f"{what}\n{doc['model']['name']} ({doc['dtype']}), {subject}"


def plot_bars(doc: dict[str, Any], path: str | Path, position: int | None = None):
    """Red/blue bars per copy. ``position`` l draws one token position of a single sentence."""
    K = doc["repeats"]
    n_sent = len(doc["sentences"])
    labels = red_err = blue_err = None
    if position is None:
        red = [row["tp"] for row in doc["per_copy"]]
        blue = [row["mp"] for row in doc["per_copy"]]
        if n_sent > 1:
            red_err = [row["ci95"]["tp"] for row in doc["per_copy"]]
            blue_err = [row["ci95"]["mp"] for row in doc["per_copy"]]
        what = "Self-reinforcement: mean over token positions" + (
            f", N={n_sent} sentences, 95% intervals" if n_sent > 1 else ""
        )
    else:
        s = doc["sentences"][0]
        red = [s["p"][n][position] for n in range(K)]
        blue = [s["pmax"][n][position] for n in range(K)]
        labels = [s["argmax_tokens"][n][position] for n in range(K)]
        what = f"Self-reinforcement of token {position} {s['tokens'][position].strip()!r}"
    with style():
        fig, ax = figure(max(6.4, min(16, 0.45 * min(K, MAX_BARS) + 2.5)), 4.8)
        _draw_bars(ax, red, blue, labels, red_err, blue_err)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False, ncol=2)
        ax.set_title(_title(doc, what), fontsize=10)
        return save(fig, path)


def _draw_bars(ax, red, blue, labels=None, red_ci=None, blue_ci=None) -> None:
    """Red P(repeated token) and blue max-P per copy on ``ax``: bars up to MAX_BARS copies,
    lines beyond; optional argmax labels and 95% error bars."""
    K = len(red)
    ns = list(range(K))
    blue_label = "max next-token P" + (" (label: argmax token)" if labels is not None and K <= MAX_BARS else "")
    if K <= MAX_BARS:
        kw = dict(width=0.4, capsize=2, error_kw={"lw": 0.8})
        ax.bar(
            [n - 0.2 for n in ns], red, color=RED, label="P(repeated token)", yerr=interval_errors(red, red_ci), **kw
        )
        ax.bar([n + 0.2 for n in ns], blue, color=BLUE, label=blue_label, yerr=interval_errors(blue, blue_ci), **kw)
        if labels is not None:
            for n, (b, lab) in enumerate(zip(blue, labels)):
                text = repr(lab.strip() or lab)[1:-1]
                ax.text(n + 0.2, b + 0.01, text, ha="center", va="bottom", fontsize=7, rotation=60)
    else:
        for values, ci, color, name, style in (
            (red, red_ci, RED, "P(repeated token)", "-"),
            (blue, blue_ci, BLUE, blue_label, "--"),
        ):
            ax.plot(ns, values, color=color, ls=style, lw=1.8, marker="o", ms=2.5, label=name)
            if ci is not None:
                ax.fill_between(ns, [clip(c[0]) for c in ci], [clip(c[1]) for c in ci], color=color, alpha=0.15, lw=0)
    ax.set_ylim(0, 1.2 if labels is not None and K <= MAX_BARS else 1.05)
    copy_axis(ax, K)
    ax.set_ylabel("probability")
    ax.grid(axis="y", alpha=0.3)


def plot_curve(doc: dict[str, Any], path: str | Path):
    """TP, MP, IP, WR against n with 95% bands for a set; TP by token position beside it."""
    rows = doc["per_copy"]
    K, n_sent = doc["repeats"], len(doc["sentences"])
    with style():
        fig, (ax, side) = figure(10.4, 4.6, 1, 2, gridspec_kw={"width_ratios": [2.3, 1]})
        for m in ("tp", "mp", "ip", "wr"):
            pts = [(r["n"], r[m], r["ci95"][m]) for r in rows if r[m] is not None]
            if not pts:
                continue
            ns, ys, cis = zip(*pts)
            ax.plot(ns, ys, label=curve_label(m), **CURVE_STYLES[m])
            if n_sent > 1 and all(c[0] is not None for c in cis):
                ax.fill_between(
                    ns,
                    [clip(c[0]) for c in cis],
                    [clip(c[1]) for c in cis],
                    color=CURVE_STYLES[m]["color"],
                    alpha=0.13,
                    lw=0,
                )
        ax.set_ylim(-0.02, 1.05)
        copy_axis(ax, K)
        ax.set_ylabel("rate / probability")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), fontsize=8, frameon=False, ncol=2)
        ax.set_title(_title(doc, "Self-reinforcement curve" + _band_note(n_sent)), fontsize=10)
        for group, (ls, marker) in POSITION_STYLES.items():
            ys = [r["by_position"][group]["tp"] for r in rows]
            if all(y is None for y in ys):
                continue
            side.plot(
                range(K),
                [math.nan if y is None else y for y in ys],
                ls=ls,
                marker=marker,
                ms=4,
                color=RED,
                label=f"{group} token",
            )
        side.set_ylim(-0.02, 1.05)
        copy_axis(side, K, "copy n", max_ticks=10)
        side.set_title("TP by position in the copy", fontsize=9)
        side.grid(alpha=0.3)
        side.legend(fontsize=8, frameon=False, loc="lower right")
        return save(fig, path)


def plot_by_initial(doc: dict[str, Any], path: str | Path):
    """Mean TP per copy for each quantile bin of TP(0): do likelier sentences reinforce more?"""
    info = doc["initial_probability"]
    K = doc["repeats"]
    colors = cmap("viridis")
    with style():
        fig, ax = figure(7.6, 4.8)
        bins = info["bins"]
        for i, b in enumerate(bins):
            color = colors(0.1 + 0.8 * i / max(1, len(bins) - 1))
            lo, hi = b["tp_first_range"]
            ax.plot(range(K), b["tp"], color=color, marker="o", ms=3, label=f"TP(0) {lo:.3f}–{hi:.3f} (N={b['n']})")
            if b["n"] > 1:
                ax.fill_between(
                    range(K),
                    [clip(c[0]) for c in b["ci95"]],
                    [clip(c[1]) for c in b["ci95"]],
                    color=color,
                    alpha=0.12,
                    lw=0,
                )
        rho, rho_lock = info["spearman_tp_first_vs_rise"], info["spearman_tp_first_vs_lock_in_copy"]
        fmt = lambda v: "–" if v is None else f"{v:+.2f}"  # noqa: E731
        ax.text(
            0.99, 0.03,
            f"Spearman ρ(TP(0), rise) = {fmt(rho)}\nρ(TP(0), lock-in copy) = {fmt(rho_lock)}",
            transform=ax.transAxes, ha="right", va="bottom", fontsize=8,
        )  # fmt: skip
        ax.set_ylim(-0.02, 1.05)
        copy_axis(ax, K)
        ax.set_ylabel("TP (mean over the bin's sentences)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, frameon=False, loc="upper left", title="bins of TP(0)", title_fontsize=8)
        ax.set_title(
            f"Sentences with a higher initial probability reinforce more strongly?\n"
            f"{doc['model']['name']} ({doc['dtype']}), {len(doc['sentences'])} sentences in {len(bins)} quantile bins",
            fontsize=10,
        )
        return save(fig, path)


# ---- compare -------------------------------------------------------------------------------
def compare_figures(doc: dict[str, Any], directory: Path, fmt: str) -> list[Path]:
    written = []
    if any("metrics" in s for s in doc["settings"]):
        written.append(directory / f"metrics.{fmt}")
        plot_compare_metrics(doc, written[-1])
    if any("metrics" in s and "legit" in s for s in doc["settings"]):
        written.append(directory / f"tradeoff.{fmt}")
        plot_tradeoff(doc, written[-1])
    if any("loop_rate_by_length" in s for s in doc["settings"]):
        written.append(directory / f"loops_by_length.{fmt}")
        plot_loops_by_length(doc, written[-1])
    if any("probe" in s for s in doc["settings"]):
        written.append(directory / f"curves.{fmt}")
        plot_compare_curves(doc, written[-1])
    return written


def plot_compare_metrics(doc: dict[str, Any], path: str | Path):
    """Grouped bars per setting: the lower-is-better repetition metrics on one panel,
    distinct-2 (higher is better) on another; 95% intervals over prompts."""
    import numpy as np

    settings = [s for s in doc["settings"] if "metrics" in s]
    panels = [
        ("lower is better", ["seq_rep_4", "rep_sen", "loop"]),
        ("higher is better", ["distinct_2"]),
    ]
    x = np.arange(len(settings))
    n_prompts = len(doc["prompts"])
    with style():
        fig, axes = figure(max(8, 1.25 * len(settings) + 3), 5.2, 1, 2, gridspec_kw={"width_ratios": [3, 1.4]})
        for ax, (title, keys) in zip(axes, panels):
            width = 0.8 / len(keys)
            for i, key in enumerate(keys):
                means = [s["metrics"][key]["mean"] for s in settings]
                means = [math.nan if m is None else m for m in means]
                cis = [s["metrics"][key]["ci95"] for s in settings]
                err = interval_errors(means, cis) if n_prompts > 1 else None
                name = "loop rate" if key == "loop" else label(key)
                ax.bar(x + (i - (len(keys) - 1) / 2) * width, means, width, label=name, yerr=err, capsize=2)
            # rotated one-line labels: wrapped ones overlapped on the narrow panel
            ax.set_xticks(x, [short(s["name"], 32) for s in settings], fontsize=7, rotation=35, ha="right")
            ax.set_ylim(0, 1.05)
            ax.set_title(title, fontsize=9)
            ax.grid(axis="y", alpha=0.3)
            ax.legend(fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, 1.0), ncol=len(keys))
        axes[0].set_ylabel(f"rate (mean over N={n_prompts} prompts" + (", 95% intervals)" if n_prompts > 1 else ")"))
        fig.suptitle(
            f"Repetition by decoding setting, {doc['model']['name']} ({doc['dtype']}): "
            f"{n_prompts} prompt{'s' if n_prompts != 1 else ''} × {doc['max_new_tokens']} new tokens, seed {doc['seed']}",
            fontsize=10,
        )
        return save(fig, path)


def pareto_front(points: list[tuple[float, float]]) -> list[bool]:
    """Which (cost, benefit) points no other point beats on both: no other has a cost as low
    and a benefit as high, one of them strictly."""
    return [
        not any(c2 <= c and b2 >= b and (c2 < c or b2 > b) for j, (c2, b2) in enumerate(points) if j != i)
        for i, (c, b) in enumerate(points)
    ]


def plot_loops_by_length(doc: dict[str, Any], path: str | Path):
    """Left: the share of continuations whose first L tokens end in a loop, against L (log
    scale), per setting, with Wilson 95% intervals; right: where the loops begin (the token
    index of each looping continuation's onset), per setting."""
    from .stats import wilson_ci95

    settings = [s for s in doc["settings"] if "loop_rate_by_length" in s]
    colors = distinct_colors(len(settings))
    with style():
        fig, (ax, hist) = figure(12.5, 4.8, 1, 2)
        for i, s in enumerate(settings):
            rates = s["loop_rate_by_length"]
            lengths = [int(n) for n in rates]
            n = s["continuations"]
            ys = [rates[str(length)] for length in lengths]
            cis = [wilson_ci95(round(y * n), n) for y in ys]
            dodge = 2 ** (0.04 * (i - (len(settings) - 1) / 2))  # side by side on the log axis: equal ones stay visible
            ax.errorbar([v * dodge for v in lengths], ys, yerr=interval_errors(ys, [list(c) for c in cis]), marker="o", ms=4, capsize=2,
                        color=colors[i], label=short(s["name"], 32))  # fmt: skip
        ax.set_xscale("log", base=2)
        ax.set_xticks(lengths, [str(v) for v in lengths])
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("new tokens generated (L)")
        ax.set_ylabel("share of continuations ending in a loop by L")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, frameon=False)
        top = max(int(n) for s in settings for n in s["loop_rate_by_length"])
        bins = [top * k / 16 for k in range(17)]
        onsets = [s["loop_onsets"] for s in settings]
        drawn = [(o, colors[i], short(settings[i]["name"], 32)) for i, o in enumerate(onsets) if o]
        if drawn:
            hist.hist([o for o, _, _ in drawn], bins=bins, color=[c for _, c, _ in drawn],
                      label=[f"{name} ({len(o)})" for o, _, name in drawn])  # fmt: skip
            hist.legend(fontsize=7, frameon=False)
        else:
            hist.text(0.5, 0.5, "no loops", ha="center", va="center", transform=hist.transAxes)
        hist.set_xlabel("token index where the loop begins")
        hist.set_ylabel("continuations")
        hist.grid(alpha=0.3)
        fig.suptitle(
            f"Loops by generation length, {doc['model']['name']} ({doc['dtype']}): {len(doc['prompts'])} prompts, "
            f"up to {doc['max_new_tokens']} new tokens; 95% intervals (Wilson)",
            fontsize=9,
        )
        return save(fig, path)


def plot_tradeoff(doc: dict[str, Any], path: str | Path):
    """What each setting removes against what it breaks: loop rate (left) and seq-rep-4 (right)
    on x, the legitimate-repetition pass rate on y, one point per setting with 95% intervals;
    the settings no other beats on both are filled and joined (the ones worth choosing from)."""
    settings = [s for s in doc["settings"] if "metrics" in s and "legit" in s]
    axes_spec = [
        ("loop rate (share of continuations ending in a loop)", lambda s: s["loop_rate"], lambda s: s["loop_rate_ci95"]),
        ("seq-rep-4 (mean over prompts)", lambda s: s["metrics"]["seq_rep_4"]["mean"],
         lambda s: s["metrics"]["seq_rep_4"]["ci95"]),
    ]  # fmt: skip
    colors = distinct_colors(len(settings))
    with style():
        fig, axes = figure(12.5, 5.4, 1, 2, sharey=True)
        axes[0].set_ylim(-0.02, 1.05)
        for ax, (xlabel, getx, getci) in zip(axes, axes_spec):
            xs = [getx(s) for s in settings]
            ys = [s["legit"]["pass_rate"] for s in settings]
            front = pareto_front([(math.nan if x is None else x, y) for x, y in zip(xs, ys)])
            for i, s in enumerate(settings):
                if xs[i] is None:
                    continue
                xlo, xhi = (v if v is not None else xs[i] for v in getci(s))
                ylo, yhi = s["legit"]["ci95"]
                color = colors[i]
                ax.errorbar(
                    xs[i], ys[i], xerr=[[max(0, xs[i] - xlo)], [max(0, xhi - xs[i])]],
                    yerr=[[max(0, ys[i] - ylo)], [max(0, yhi - ys[i])]], fmt="*" if front[i] else "o",
                    ms=13 if front[i] else 7, color=color, mfc=color if front[i] else "white", capsize=2, lw=0.9,
                    label=short(s["name"], 40) + (" (no better setting)" if front[i] else ""),
                )  # fmt: skip
            best = sorted((x, y) for x, y, f in zip(xs, ys, front) if f and x is not None)
            if len(best) > 1:
                ax.plot(*zip(*best), color="grey", lw=0.8, ls="--", zorder=0)
            ax.set_xlabel(xlabel + "  ← better")
            ax.set_xlim(left=-0.02)
            ax.grid(alpha=0.3)
            drawn = [i for i in range(len(settings)) if xs[i] is not None]
            place_labels(
                ax, [xs[i] for i in drawn], [ys[i] for i in drawn], [short(settings[i]["name"], 28) for i in drawn]
            )
        axes[0].set_ylabel("legitimate repetition passed (share of cases)  ↑ better")
        axes[1].legend(fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.01, 0.5))
        suite = doc.get("legit_suite", {})
        fig.suptitle(
            f"What each setting removes vs what it breaks, {doc['model']['name']} ({doc['dtype']}): "
            f"{len(doc['prompts'])} prompts × {doc['max_new_tokens']} tokens; legit suite {suite.get('name')} "
            f"({suite.get('cases')} cases); 95% intervals; stars: no other setting is better on both",
            fontsize=9,
        )
        return save(fig, path)


def plot_compare_curves(doc: dict[str, Any], path: str | Path):
    """TP (solid) and MP (dashed) per copy under each setting's processors, overlaid."""
    colors = cmap()
    skipped = []
    K = doc.get("probe", {}).get("repeats", 1)
    with style():
        fig, ax = figure(8.4, 4.8)
        for i, s in enumerate(doc["settings"]):
            probe = s.get("probe")
            if probe is None:
                continue
            if "skipped" in probe:
                skipped.append(s["name"])
                continue
            ns = [r["n"] for r in probe["per_copy"]]
            color = colors(i % 10)
            name = short(s["name"], 40)
            ax.plot(ns, [r["tp"] for r in probe["per_copy"]], marker="o", ms=3, color=color, label=f"{name} (TP)")
            ax.plot(ns, [r["mp"] for r in probe["per_copy"]], ls="--", color=color, alpha=0.6, label=f"{name} (MP)")
        ax.set_ylim(-0.02, 1.05)
        copy_axis(ax, K)
        ax.set_ylabel("probability after the setting's processors")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
        sentences = doc.get("probe", {}).get("sentences", [])
        note = f"\n(skipped: {', '.join(skipped)}: no per-token distribution)" if skipped else ""
        ax.set_title(
            f"Self-reinforcement under decoding settings, {doc['model']['name']} ({doc['dtype']})\n"
            f"{_subject(sentences, 70)}{note}",
            fontsize=9,
        )
        return save(fig, path)


# ---- diff ----------------------------------------------------------------------------------
def diff_figures(doc: dict[str, Any], directory: Path, fmt: str) -> list[Path]:
    written = [directory / f"curves.{fmt}", directory / f"bars.{fmt}"]
    plot_diff_curves(doc, written[0])
    plot_diff_bars(doc, written[1])
    return written


def _model_label(model: dict[str, Any]) -> str:
    return f"{model['label']} ({model['dtype']})"


def _overlay_curves(series, colors, repeats: int, band: bool, title: str, path: str | Path):
    """TP (solid, with 95% band where ``band``) and MP (dashed) per copy of several probe
    results, overlaid. ``series``: (legend label, ``per_copy`` rows) pairs, one color each."""
    with style():
        fig, ax = figure(8.4, 4.8)
        for color, (name, rows) in zip(colors, series):
            ns = [r["n"] for r in rows]
            ax.plot(ns, [r["tp"] for r in rows], marker="o", ms=3, color=color, label=f"{name}, TP")
            ax.plot(ns, [r["mp"] for r in rows], ls="--", color=color, alpha=0.6, label=f"{name}, MP")
            lo = [r["ci95"]["tp"][0] for r in rows]
            if band and all(v is not None for v in lo):
                ax.fill_between(
                    ns, [clip(v) for v in lo], [clip(r["ci95"]["tp"][1]) for r in rows], color=color, alpha=0.12, lw=0
                )
        ax.set_ylim(-0.02, 1.05)
        copy_axis(ax, repeats)
        ax.set_ylabel("probability")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
        ax.set_title(title, fontsize=10)
        return save(fig, path)


def plot_layouts(docs: dict[str, dict[str, Any]], path: str | Path, title: str = ""):
    """TP (solid, 95% band) and MP (dashed) per copy of several probe results of one model on
    the same sentences: the plain probe beside its chat forms (``probe --chat``, ``--turns``)."""
    series = [(label, doc["per_copy"]) for label, doc in docs.items()]
    repeats = max([1] + [len(rows) for _, rows in series])
    return _overlay_curves(series, distinct_colors(len(docs)), repeats, True, title, path)


def plot_diff_curves(doc: dict[str, Any], path: str | Path):
    """TP (solid, with 95% band) and MP (dashed) per copy for every model, overlaid."""
    colors = cmap()
    n_sent = len(doc["sentences"])
    series = [(short(_model_label(model), 48), run["per_copy"]) for model, run in zip(doc["models"], doc["runs"])]
    title = f"TP and MP by checkpoint, {_subject(doc['sentences'], 60)}{_band_note(n_sent)}"
    return _overlay_curves(
        series, [colors(i % 10) for i in range(len(series))], doc["repeats"], n_sent > 1, title, path
    )


def plot_diff_bars(doc: dict[str, Any], path: str | Path):
    """The paper's red/blue bars, one panel per model, then the paired delta of TP per copy
    against the first model (mean of per-sentence differences, 95% interval)."""
    runs, models, K = doc["runs"], doc["models"], doc["repeats"]
    n_sent = len(doc["sentences"])
    with style():
        fig, axes = figure(
            max(6.4, min(16, 0.45 * min(K, MAX_BARS) + 2.5)),
            2.7 * (len(runs) + 1) + 0.8,
            len(runs) + 1,
            1,
            sharex=True,
            squeeze=False,
        )
        for ax, model, run in zip(axes[:, 0], models, runs):
            pc = run["per_copy"]
            tp_ci, mp_ci = ([r["ci95"][m] for r in pc] if n_sent > 1 else None for m in ("tp", "mp"))
            _draw_bars(ax, [r["tp"] for r in pc], [r["mp"] for r in pc], None, tp_ci, mp_ci)
            ax.set_title(_model_label(model), fontsize=9, loc="left")
            ax.set_xlabel("")
        delta_ax = axes[-1, 0]
        colors = cmap()
        for i, d in enumerate(doc["copy_deltas"]):
            ns = [r["n"] for r in d["per_copy"]]
            ys = [math.nan if r["delta"] is None else r["delta"] for r in d["per_copy"]]
            color = colors((i + 1) % 10)
            delta_ax.plot(ns, ys, marker="o", ms=3, color=color, label=f"{d['model']} − {d['reference'].split(':')[0]}")
            if n_sent > 1:
                lo = [math.nan if r["ci95"][0] is None else r["ci95"][0] for r in d["per_copy"]]
                hi = [math.nan if r["ci95"][1] is None else r["ci95"][1] for r in d["per_copy"]]
                delta_ax.fill_between(ns, lo, hi, color=color, alpha=0.15, lw=0)
        delta_ax.axhline(0, color="black", lw=0.8)
        delta_ax.set_ylabel("Δ TP (paired)")
        delta_ax.set_title(
            "paired difference of TP per copy" + (", 95% interval" if n_sent > 1 else ""), fontsize=9, loc="left"
        )
        delta_ax.grid(alpha=0.3)
        delta_ax.legend(fontsize=7, frameon=False)
        copy_axis(delta_ax, K)
        axes[0, 0].legend(loc="lower center", bbox_to_anchor=(0.5, 1.15), frameon=False, ncol=2, fontsize=8)
        fig.suptitle(f"Self-reinforcement by checkpoint, {_subject(doc['sentences'], 60)}", fontsize=10)
        return save(fig, path)
