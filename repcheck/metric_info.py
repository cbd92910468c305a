"""One table of facts about every metric: its label, which way is better, who produces it.

The suite and the gate (default directions), compare's table highlighting, the plots
(labels and axes) and the docs all read this table, so a metric's direction is written once.
Definitions live in ``repcheck.metrics`` (probe) and ``repcheck.repetition`` (generation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Direction = Literal["lower", "higher"] | None


@dataclass(frozen=True)
class MetricInfo:
    key: str
    label: str  # short, for table headers and legends
    direction: Direction  # which way is better; None: reported, never gated
    command: Literal["probe", "compare"]
    scope: Literal["copy", "sentence", "continuation", "setting"]
    description: str
    unit_interval: bool = True  # a probability or rate in [0, 1]


def _m(key, label, direction, command, scope, description, unit_interval=True) -> MetricInfo:
    return MetricInfo(key, label, direction, command, scope, description, unit_interval)


METRICS: dict[str, MetricInfo] = {
    m.key: m
    for m in [
        # ---- probe, per copy n (repcheck.metrics) ----------------------------------------
        _m("tp", "TP", "lower", "probe", "copy", "mean probability of the repeated token"),
        _m("mp", "MP", None, "probe", "copy", "mean maximum next-token probability"),
        _m("ip", "IP", "lower", "probe", "copy", "share of tokens more likely than in copy 0"),
        _m("wr", "WR", "lower", "probe", "copy", "share more likely than in copy 0 and the argmax (winner rate)"),
        _m("ar", "AR", "lower", "probe", "copy", "share of tokens that are the argmax"),
        _m("ip_sentence", "IPs", "lower", "probe", "copy", "share of sentences whose TP rose over copy 0"),
        # ---- probe, per sentence (gated as means over sentences) -------------------------
        _m("tp_first", "TP(0)", None, "probe", "sentence", "TP of the first copy: how likely the sentence is"),
        _m("tp_last", "TP(K-1)", "lower", "probe", "sentence", "TP of the last copy"),
        _m("tp_mean_repeats", "mean TP(1..K-1)", "lower", "probe", "sentence", "area under the TP curve"),
        _m("tp_rise", "TP rise", "lower", "probe", "sentence", "TP(K-1) - TP(0)", unit_interval=False),
        _m("ip_last", "IP(K-1)", "lower", "probe", "sentence", "IP of the last copy"),
        _m("wr_last", "WR(K-1)", "lower", "probe", "sentence", "WR of the last copy"),
        _m("lock_in_rate", "lock-in rate", "lower", "probe", "sentence", "share of sentences reaching TP >= 0.9"),
        # ---- compare, per continuation (repcheck.repetition) -----------------------------
        *[
            _m(
                f"seq_rep_{n}{w}",
                f"seq-rep-{n}{' (words)' if w else ''}",
                "lower",
                "compare",
                "continuation",
                f"share of repeated {n}-grams in a continuation",
            )
            for n in (1, 2, 3, 4)
            for w in ("", "_words")
        ],  # fmt: skip
        _m("distinct_1", "distinct-1", "higher", "compare", "continuation", "unique unigrams / unigrams"),
        _m("distinct_2", "distinct-2", "higher", "compare", "continuation", "unique bigrams / bigrams"),
        _m("rep_sen", "rep-sen", "lower", "compare", "continuation", "share of sentences repeating an earlier one"),
        _m(
            "rep_sen_consecutive",
            "rep-sen (consecutive)",
            "lower",
            "compare",
            "continuation",
            "share of sentences equal to the sentence right before them",
        ),  # fmt: skip
        _m("loop", "loop", "lower", "compare", "continuation", "ends in a verbatim loop"),
        _m("loop_rate", "loop rate", "lower", "compare", "setting", "share of continuations ending in a loop"),
        _m(
            "mean_logprob",
            "mean log-prob",
            None,
            "compare",
            "continuation",
            "mean log-probability under the unmodified model",
            unit_interval=False,
        ),  # fmt: skip
        _m("n_tokens", "tokens", None, "compare", "continuation", "continuation length", unit_interval=False),
        _m("eos_rate", "EOS rate", None, "compare", "setting", "share of continuations that end at a stop token"),
        # ---- the legitimate-repetition suite (repcheck.legit) -------------------------------
        _m(
            "pass_rate",
            "legit pass",
            "higher",
            "compare",
            "setting",
            "share of legitimate-repetition cases passed",
        ),
    ]
}

#: Per-copy metrics of a probe, in display order.
COPY_METRICS = ("tp", "mp", "ip", "wr", "ar", "ip_sentence")
#: Metrics reported per position group (first / middle / last token of a copy).
POSITION_METRICS = ("tp", "ip", "ar")
#: Per-sentence scalars, in display order.
SUMMARY_METRICS = ("tp_first", "tp_last", "tp_mean_repeats", "tp_rise", "ip_last", "wr_last")
#: What the gate measures from a probe and from each compare setting.
GATE_PROBE_METRICS = ("tp_first", "tp_last", "tp_rise", "tp_mean_repeats", "ip_last", "wr_last", "lock_in_rate")
GATE_COMPARE_METRICS = ("seq_rep_4", "rep_sen", "loop_rate", "distinct_2", "mean_logprob")
#: Per-continuation metrics summarized per compare setting (means over prompts).
CONTINUATION_METRICS = (
    *(f"seq_rep_{n}" for n in (1, 2, 3, 4)),
    *(f"seq_rep_{n}_words" for n in (1, 2, 3, 4)),
    "distinct_1",
    "distinct_2",
    "rep_sen",
    "rep_sen_consecutive",
    "loop",
    "mean_logprob",
    "n_tokens",
)


def direction(name: str) -> Direction:
    """Default direction of a metric, also for gate names such as ``compare.greedy.seq_rep_4``."""
    info = METRICS.get(name.rsplit(".", 1)[-1])
    return info.direction if info else None


def label(key: str) -> str:
    return METRICS[key].label if key in METRICS else key


def best(key: str, values: list[float]) -> float | None:
    """The best of ``values`` by the metric's direction (None without a direction or values)."""
    d = direction(key)
    if d is None or not values:
        return None
    return min(values) if d == "lower" else max(values)
