"""The drawing kit every figure of repcheck uses: colors, fonts with fallback, a figure through
matplotlib's object API (no pyplot), scoped style, and the axes and labels that recur.

Matplotlib's object API is used without pyplot, inside ``rc_context``: a notebook's backend
and style are never changed. Text in any script is drawn with the first installed font that
has its glyphs (a CJK font, e.g. Debian's fonts-noto-cjk or fonts-wqy-microhei, is optional);
missing glyphs fall back silently. Figures of the probe, compare and diff (``plots``), of
explain (``explain.figures``) and of training (``train.report``) all draw with it.
"""

from __future__ import annotations

import contextlib
import functools
import math
import warnings
from pathlib import Path

RED, BLUE, GREEN, PURPLE, BROWN = "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b"
COPY_AXIS = "copy n (the sentence already appears n times in the context)"
#: Fonts with CJK (and other) glyphs, tried after DejaVu Sans when installed.
FALLBACK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Droid Sans Fallback",
    "AR PL UMing CN",
    "PingFang SC",
    "Microsoft YaHei",
    "SimHei",
    "Arial Unicode MS",
    "Noto Emoji",
    "Symbola",
)


@functools.cache
def font_families() -> list[str]:
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return ["DejaVu Sans", *[f for f in FALLBACK_FONTS if f in installed]]


@contextlib.contextmanager
def style():
    """Scoped settings for every figure: fonts with fallback, no glyph warnings."""
    import matplotlib

    with matplotlib.rc_context({"font.family": "sans-serif", "font.sans-serif": font_families()}):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Glyph .* missing from")
            warnings.filterwarnings("ignore", message=r"Matplotlib currently does not support")
            yield


def figure(width: float, height: float, nrows: int = 1, ncols: int = 1, **kwargs):
    """A figure and its axes through matplotlib's object API (no pyplot)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=120)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def cmap(name: str = "tab10"):
    import matplotlib

    return matplotlib.colormaps[name]


def distinct_colors(n: int):
    """``n`` colors no two of which are the same: tab10 up to 10, tab20 beyond (then wrapping)."""
    return [cmap("tab10" if n <= 10 else "tab20")(i % (10 if n <= 10 else 20)) for i in range(n)]


def place_labels(ax, xs: list[float], ys: list[float], texts: list[str], fontsize: float = 7) -> None:
    """Annotate each point with its text where it overlaps no label placed before it: the
    points are taken from the top, and each label tries positions right of its point, then
    below, above and to the left, further out each round (a label's size is estimated from its
    characters). Points whose x or y is NaN get no label."""
    import math

    ax.autoscale_view()
    to_px = ax.transData.transform
    char_w, line_h = 0.62 * fontsize, 1.25 * fontsize  # points
    placed: list[tuple[float, float, float, float]] = []
    scale = ax.figure.dpi / 72
    order = sorted(range(len(xs)), key=lambda i: -ys[i] if not math.isnan(ys[i]) else math.inf)
    for i in order:
        if math.isnan(xs[i]) or math.isnan(ys[i]):
            continue
        px, py = to_px((xs[i], ys[i])) / scale  # in points
        w, h = char_w * len(texts[i]), line_h
        offsets = [(6, 3)] + [(dx, dy) for r in range(1, 6) for dx, dy in
                   ((6, 3 - r * h), (6, 3 + r * h), (-6 - w, 3 - (r - 1) * h), (-6 - w, 3 + r * h))]  # fmt: skip
        for dx, dy in offsets:
            box = (px + dx, py + dy, px + dx + w, py + dy + h)
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
                break
        placed.append(box)
        ax.annotate(texts[i], (xs[i], ys[i]), textcoords="offset points", xytext=(dx, dy), fontsize=fontsize,
                    arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "grey"} if (dx, dy) != (6, 3) else None)  # fmt: skip


def save(fig, path: str | Path):
    fig.savefig(path, bbox_inches="tight")
    return fig


def copy_axis(ax, K: int, label: str = COPY_AXIS, max_ticks: int = 20) -> None:
    """Integer ticks on a copy axis (at most ``max_ticks``: a narrow panel takes fewer), also for K = 1."""
    from matplotlib.ticker import MaxNLocator

    if K <= max_ticks:
        ax.set_xticks(range(K))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=max_ticks))
    ax.set_xlim(-0.6, K - 0.4)
    ax.set_xlabel(label)


def short(text: str, width: int) -> str:
    """One line of at most ``width`` characters, cut with an ellipsis (also a long run without
    spaces, such as a setting ``repetition_penalty=1.3,penalty_last_n=64``)."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    cut = text[: width - 1]
    boundary = max(cut.rfind(" "), cut.rfind(","))
    if boundary >= width * 2 // 3:  # end at a word or a setting's key=value when that loses little
        cut = cut[:boundary]
    return cut.rstrip(" ,") + "…"


def clip(v: float | None) -> float:
    """A probability interval end inside [0, 1] (None: NaN, not drawn)."""
    return math.nan if v is None else min(1.0, max(0.0, v))


def interval_errors(values: list[float], intervals: list[list[float]] | None):
    """Asymmetric error bar lengths from [low, high] intervals, clipped to [0, 1]."""
    if intervals is None:
        return None
    lows = [v - clip(lo) if lo is not None else 0 for v, (lo, _hi) in zip(values, intervals)]
    highs = [clip(hi) - v if hi is not None else 0 for v, (_lo, hi) in zip(values, intervals)]
    return [[max(0, x) for x in lows], [max(0, x) for x in highs]]
