"""Repetition metrics for generated text, on token ids (or whitespace words).

Sources: seq-rep-n (Welleck et al. 2019, "Neural Text Generation with Unlikelihood
Training"; DITTO reports seq-rep-4), rep-n and diversity exactly as SimCTG's
``simctg/evaluation.py`` computes them (Su et al. 2022), distinct-n (Li et al. 2016), rep-sen
(Xu et al. 2022, DITTO's sentence-level repetition) and its consecutive variant, and
Welleck et al.'s next-token metrics on human text (rep/wrep at several context lengths,
accuracy, perplexity, uniq; ``custom/metrics.py`` of the unlikelihood code).
Undefined values (a continuation shorter than n) are NaN and left out of means.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from .sentences import split_sentences

MAX_LOOP_PERIOD = 64
MIN_LOOP_REPEATS = 3


def ngrams(tokens: Sequence[Hashable], n: int) -> list[tuple]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def seq_rep_n(tokens: Sequence[Hashable], n: int) -> float:
    """1 - |unique n-grams| / |n-grams| of one continuation (NaN when it has no n-gram)."""
    grams = ngrams(tokens, n)
    return 1.0 - len(set(grams)) / len(grams) if grams else math.nan


def simctg_rep_n(continuations: Sequence[Sequence[Hashable]], n: int) -> float:
    """SimCTG's rep-n: 1 - sum of each continuation's unique n-grams / sum of their n-grams.

    Unique n-grams are counted within each continuation, so an n-gram shared by two
    continuations is not a repetition. As in SimCTG's ``eval_text`` (its loop runs while
    ``end_idx < len(tokens)``), the last n-gram of each continuation is not counted: a text of
    T tokens contributes T - n n-grams, not T - n + 1. NaN when no continuation has one.
    """
    unique = total = 0
    for tokens in continuations:
        grams = ngrams(tokens, n)[:-1]  # SimCTG leaves out each text's last n-gram
        unique += len(set(grams))
        total += len(grams)
    return 1.0 - unique / total if total else math.nan


def pooled_rep_n(continuations: Sequence[Sequence[Hashable]], n: int) -> float:
    """rep-n over all continuations as one pool (not SimCTG's): 1 - |unique n-grams of the
    pool| / |n-grams of the pool|, every n-gram counted; an n-gram shared by two continuations
    counts as a repetition, so this also measures how alike the continuations are."""
    grams = [g for tokens in continuations for g in ngrams(tokens, n)]
    return 1.0 - len(set(grams)) / len(grams) if grams else math.nan


def diversity(continuations: Sequence[Sequence[Hashable]]) -> float:
    """SimCTG's diversity exactly as ``measure_repetition_and_diversity`` computes it: product
    over n = 2, 3, 4 of (1 - rep-n), each rep-n first rounded as SimCTG reports it (a percentage
    with two decimals, ``round(rep * 100, 2)``)."""
    out = 1.0
    for n in (2, 3, 4):
        rep = simctg_rep_n(continuations, n)
        if math.isnan(rep):
            return math.nan
        out *= 1.0 - round(rep * 100, 2) / 100
    return out


def distinct_n(continuations: Sequence[Sequence[Hashable]], n: int) -> float:
    """|unique n-grams| / |n-grams| over the given continuations (Li et al. 2016)."""
    grams = [g for tokens in continuations for g in ngrams(tokens, n)]
    return len(set(grams)) / len(grams) if grams else math.nan


def rep_sen(text: str) -> float:
    """Share of a continuation's sentences that repeat an earlier sentence verbatim."""
    sentences = split_sentences(text)
    if not sentences:
        return math.nan
    seen: set[str] = set()
    repeats = 0
    for s in sentences:
        repeats += s in seen
        seen.add(s)
    return repeats / len(sentences)


def rep_sen_consecutive(text: str) -> float:
    """Share of a continuation's sentences equal to the sentence right before them (the
    consecutive sentence-repetition ratio of Xu et al.'s appendix figure)."""
    sentences = split_sentences(text)
    if not sentences:
        return math.nan
    return sum(a == b for a, b in zip(sentences, sentences[1:])) / len(sentences)


@dataclass(frozen=True)
class Loop:
    """A verbatim loop at the end of a continuation."""

    period: int  # tokens in one cycle
    start: int  # index of the first token of the periodic tail
    repeats: float  # cycles in the tail, (len - start) / period


def detect_loop(
    tokens: Sequence[Hashable], max_period: int = MAX_LOOP_PERIOD, min_repeats: int = MIN_LOOP_REPEATS
) -> Loop | None:
    """The shortest period p <= max_period whose block repeats at least ``min_repeats``
    times at the end of ``tokens``; the loop starts where the tail stops being periodic."""
    n = len(tokens)
    for p in range(1, min(max_period, n // min_repeats) + 1):
        tail = tokens[n - min_repeats * p :]
        if all(tail[i] == tail[i + p] for i in range(len(tail) - p)):
            start = n - min_repeats * p
            while start > 0 and tokens[start - 1] == tokens[start - 1 + p]:
                start -= 1
            return Loop(period=p, start=start, repeats=(n - start) / p)
    return None


def words(text: str) -> list[str]:
    return text.split()


#: Context lengths of Welleck et al.'s next-token repetition metrics.
REPEAT_CONTEXTS = (16, 32, 128, 512)


def next_token_metrics(targets: Sequence[Sequence[int]], predictions: Sequence[Sequence[int]], logps) -> dict:
    """Welleck et al.'s next-token metrics on human text (teacher forced, greedy prediction),
    pooled over every token of every text, as ``custom/metrics.py`` of the unlikelihood code
    (``TrainingMetrics.repeat_at_1``) counts them. At position t with target y_t and
    prediction p_t = argmax P(. | y_<t), over the previous l targets y_{t-l} .. y_{t-1}:

        rep/l   = share of positions where p_t is one of them
        wrep/l  = share where p_t is one of them and p_t != y_t   (a wrong repetition)
        hrep/l  = share where y_t itself is one of them            (the human text's own rate)
        acc     = share where p_t == y_t
        ppl     = exp(mean over positions of -log P(y_t | y_<t))
        uniq    = number of distinct predicted tokens

    targets, predictions: per text, the scored tokens and the argmax at each; logps: per text,
    log P(y_t | y_<t) at each.
    """
    total = sum(len(t) for t in targets)
    if total == 0:
        return {}
    out: dict = {}
    for l in REPEAT_CONTEXTS:
        rep = wrep = hrep = 0
        for ys, ps in zip(targets, predictions):
            for t, (y, p) in enumerate(zip(ys, ps)):
                window = set(ys[max(0, t - l) : t])
                rep += p in window
                wrep += p in window and p != y
                hrep += y in window
        out[f"rep/{l}"], out[f"wrep/{l}"], out[f"hrep/{l}"] = rep / total, wrep / total, hrep / total
    out["acc"] = sum(int(p == y) for ys, ps in zip(targets, predictions) for y, p in zip(ys, ps)) / total
    out["ppl"] = math.exp(-sum(float(v) for lp in logps for v in lp) / total)
    out["uniq"] = len({int(p) for ps in predictions for p in ps})
    out["tokens"] = total
    return out


def length_matched_seq_rep(
    before: Sequence[Sequence[Hashable]], after: Sequence[Sequence[Hashable]], n: int = 4
) -> tuple[float, float]:
    """seq-rep-n of paired continuations (the same prompts, two models) each cut to the shorter
    one's length, mean over the pairs where that length has an n-gram: shorter answers repeat
    less for that reason alone, and this comparison takes it out."""
    pairs = [(b[: min(len(b), len(a))], a[: min(len(b), len(a))]) for b, a in zip(before, after, strict=True)]
    pairs = [(b, a) for b, a in pairs if len(b) >= n]
    if not pairs:
        return math.nan, math.nan
    return (
        sum(seq_rep_n(b, n) for b, _ in pairs) / len(pairs),
        sum(seq_rep_n(a, n) for _, a in pairs) / len(pairs),
    )


def continuation_metrics(token_ids: Sequence[int], text: str) -> dict:
    """Every per-continuation metric, on token ids and on whitespace words."""
    loop = detect_loop(token_ids)
    w = words(text)
    out = {"n_tokens": len(token_ids)}
    for n in (1, 2, 3, 4):
        out[f"seq_rep_{n}"] = seq_rep_n(token_ids, n)
        out[f"seq_rep_{n}_words"] = seq_rep_n(w, n)
    out["distinct_1"] = distinct_n([token_ids], 1)
    out["distinct_2"] = distinct_n([token_ids], 2)
    out["rep_sen"] = rep_sen(text)
    out["rep_sen_consecutive"] = rep_sen_consecutive(text)
    out["loop"] = loop is not None
    out["loop_period"] = loop.period if loop else None
    out["loop_start"] = loop.start if loop else None
    return out


def pooled_metrics(token_lists: Sequence[Sequence[int]], texts: Sequence[str]) -> dict:
    """Metrics over all continuations of one setting (tokens and words). ``rep_n_words`` and
    ``diversity_words`` are SimCTG's numbers exactly (it splits on white space);
    ``rep_n_pooled`` is the pooled variant (see ``pooled_rep_n``)."""
    word_lists = [words(t) for t in texts]
    out = {}
    for n in (2, 3, 4):
        out[f"rep_{n}"] = simctg_rep_n(token_lists, n)
        out[f"rep_{n}_words"] = simctg_rep_n(word_lists, n)
        out[f"rep_{n}_pooled"] = pooled_rep_n(token_lists, n)
    out["diversity"] = diversity(token_lists)
    out["diversity_words"] = diversity(word_lists)
    out["distinct_1_pooled"] = distinct_n(token_lists, 1)
    out["distinct_2_pooled"] = distinct_n(token_lists, 2)
    return out
