"""The metric math of the self-reinforcement probe, checkable line by line against the paper.

Xu et al., "Learning to Break the Loop" (NeurIPS 2022, arXiv:2206.02369), Section 2.
A sentence s = (x_0 .. x_{L-1}) of L tokens is repeated K times after a prefix:

    input = prefix_ids + s + s + ... + s          (K copies, token-level concatenation)

Every number comes from ONE teacher-forced forward pass. Copy n (0-based) token l sits at
sequence position t = P + n*L + l, where P = len(prefix_ids). The model's logits at
position t-1 are its prediction for position t, so (with probs = softmax(logits)):

    p[n, l]    = probs[t-1, x_l]          probability of repeating the token       (red bar)
    pmax[n, l] = max_v probs[t-1, v]      the largest next-token probability       (blue bar)
    top[n, l]  = p[n, l] == pmax[n, l]    x_l is an argmax there (ties count as argmax)

Per-copy metrics, each a mean over the L positions of copy n:

    TP(n) = mean_l p[n, l]                                     (paper: TP, "token probability")
    MP(n) = mean_l pmax[n, l]                                  (paper: MP, "max probability")
    IP(n) = mean_l 1[p[n, l] > p[0, l]]            n >= 1      (paper: IP, increased-probability rate)
    WR(n) = mean_l 1[p[n, l] > p[0, l] and top[n, l]]  n >= 1  (paper: WR, winner rate)
    AR(n) = mean_l 1[top[n, l]]                                (argmax rate; DITTO's code calls it Win_Rate)

IP and WR compare against the first copy, so they are undefined (NaN) at n = 0.

Two refinements the reference code reports:

    IPs(n) = 1[TP(n) > TP(0)]                       n >= 1  (sentence-level IP: the share of
                                                             sentences whose probability rose,
                                                             as the ICL-from-repetition code counts)
    by position: TP, IP and AR over l = 0 (first token of the copy), l = 1..L-2 (middle) and
    l = L-1 (last, often the sentence's final punctuation), as DITTO's position study splits them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: TP at or above this marks the copy where the model "locks in" to repeating.
LOCK_IN_THRESHOLD = 0.9


def repeated_input(prefix_ids: list[int], token_ids: list[int], repeats: int) -> list[int]:
    """prefix_ids + token_ids * repeats: every copy is exactly the same L tokens."""
    return list(prefix_ids) + list(token_ids) * repeats


def next_token_probs(
    logits: torch.Tensor, input_ids: torch.Tensor, start: int, count: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Log-probability of each actual token and the maximum log-probability, for ``count`` tokens.

    logits:    [T, V]  one sequence's logits (row t predicts token t+1)
    input_ids: [T]     that sequence's tokens
    start:     position of the first token to score (>= 1: token 0 has no prediction)
    Returns logp, max_logp, argmax, each [count]: for positions t = start .. start+count-1,
    p = exp(logp) = P(x_t | x_<t), pmax = exp(max_logp) = max_v P(v | x_<t), argmax = the
    (first) token reaching pmax.
    """
    if start < 1:  # an error, not an assert: `python -O` must refuse it too
        from .errors import RepcheckError

        raise RepcheckError("scoring needs at least one token of context (start >= 1)", param="start")
    # Row t-1 of the logits predicts token t: shift the logits one step back.
    pred = logits[start - 1 : start - 1 + count].float()  # [count, V], softmax in fp32
    targets = input_ids[start : start + count]  # [count]
    logprobs = pred.log_softmax(dim=-1)  # [count, V]
    logp = logprobs.gather(-1, targets[:, None]).squeeze(-1)  # [count]
    max_logp, argmax = logprobs.max(dim=-1)  # [count], [count]
    # The same fp32 values: a target that is an argmax gets p == pmax exactly.
    return logp, max_logp, argmax


@dataclass
class CopyMetrics:
    """Metrics of one copy n (0-based), each a mean over the sentence's L positions."""

    n: int
    tp: float
    mp: float
    ip: float  # NaN at n = 0
    wr: float  # NaN at n = 0
    ar: float
    ip_sentence: float  # 1.0 if TP(n) > TP(0) else 0.0; NaN at n = 0


#: Token positions within a copy, as DITTO's position study splits them.
POSITION_GROUPS = ("first", "middle", "last")


def position_slices(L: int) -> dict[str, slice]:
    """first: l = 0; middle: l = 1..L-2 (empty when L < 3); last: l = L-1 (= first when L = 1)."""
    return {"first": slice(0, 1), "middle": slice(1, max(1, L - 1)), "last": slice(L - 1, L)}


def position_metrics(p: np.ndarray, pmax: np.ndarray) -> dict[str, dict[str, list[float]]]:
    """TP, IP and AR per copy over each position group: {group: {metric: [K values]}}.

    p, pmax: [K, L]. A group without positions (middle when L < 3) is NaN throughout."""
    p = np.asarray(p, dtype=np.float64)
    pmax = np.asarray(pmax, dtype=np.float64)
    K, L = p.shape
    out: dict[str, dict[str, list[float]]] = {}
    for group, cols in position_slices(L).items():
        pg, mg = p[:, cols], pmax[:, cols]
        if pg.shape[1] == 0:
            out[group] = {m: [float("nan")] * K for m in ("tp", "ip", "ar")}
            continue
        ip = (pg > pg[0:1, :]).mean(axis=1)  # against the same positions of copy 0
        ip[0] = np.nan
        out[group] = {
            "tp": pg.mean(axis=1).tolist(),
            "ip": ip.tolist(),
            "ar": (pg >= mg).mean(axis=1).tolist(),
        }
    return out


def per_copy_metrics(p: np.ndarray, pmax: np.ndarray) -> list[CopyMetrics]:
    """p, pmax: [K, L] as defined above. Returns K CopyMetrics."""
    p = np.asarray(p, dtype=np.float64)
    pmax = np.asarray(pmax, dtype=np.float64)
    if p.ndim != 2 or p.shape != pmax.shape or p.shape[1] == 0:
        raise ValueError(f"p and pmax must both be [K, L] with L >= 1, got {p.shape} and {pmax.shape}")
    top = p >= pmax  # x is an argmax (p can only equal pmax, never exceed it)
    increased = p > p[0:1, :]  # p[n, l] > p[0, l]; row 0 is all False and is reported as NaN
    tp = p.mean(axis=1)  # TP(n)
    mp = pmax.mean(axis=1)  # MP(n)
    ip = increased.mean(axis=1)  # IP(n)
    wr = (increased & top).mean(axis=1)  # WR(n)
    ar = top.mean(axis=1)  # AR(n)
    ips = (tp > tp[0]).astype(np.float64)  # IPs(n): the copy as a whole is likelier than copy 0
    ip[0] = wr[0] = ips[0] = np.nan  # no earlier copy to compare the first copy with
    return [
        CopyMetrics(n, float(tp[n]), float(mp[n]), float(ip[n]), float(wr[n]), float(ar[n]), float(ips[n]))
        for n in range(p.shape[0])
    ]


def ditto_per_copy(ps: list[np.ndarray], pmaxs: list[np.ndarray]) -> list[dict[str, float]]:
    """Per-copy metrics as DITTO's own code computes them (fairseq/custom/
    repetition_para_parse.py, ``main``), for ``--convention ditto``.

    Two differences from the definitions above:

    * the window of copy n is shifted by one token: tokens 1..L-1 of copy n and token 0 of
      copy n+1, because DITTO's ``target_probs[i]`` is the probability of token i+1
      (evaluate_utils.py, ``single_token_prob_fetch_para``) and its windows start where the
      copies start. So copy n runs over n = 0..K-2: the last window would need copy K.
    * sums are pooled over every sentence and divided by the total token count (its
      ``AvgMetric``), instead of a mean per sentence then over sentences.

    ps, pmaxs: one [K, L] array per sentence (L may differ). Returns K-1 rows with TP (their
    Repeat_AVG_Prob; at n = 0 their First_AVG_Prob), MP, IP (Improve_Rate), WR (increase and
    argmax) and AR (what their code calls Win_Rate).
    """
    K = ps[0].shape[0]
    windows = []  # per sentence: (p, pmax) as [K-1, L] windows
    for p, pmax in zip(ps, pmaxs):
        L = p.shape[1]
        flat, flat_max = p.reshape(-1), pmax.reshape(-1)
        rows = [slice(n * L + 1, (n + 1) * L + 1) for n in range(K - 1)]  # shifted by one token
        windows.append((np.stack([flat[r] for r in rows]), np.stack([flat_max[r] for r in rows])))
    total = sum(w.shape[1] for w, _ in windows)  # tokens per window, over all sentences
    out = []
    for n in range(K - 1):
        tp = sum(w[n].sum() for w, _ in windows) / total
        mp = sum(m[n].sum() for _, m in windows) / total
        up = [w[n] > w[0] for w, _ in windows]  # against the same tokens of window 0
        top = [w[n] >= m[n] for w, m in windows]
        ip = sum(u.sum() for u in up) / total if n > 0 else float("nan")
        wr = sum((u & t).sum() for u, t in zip(up, top)) / total if n > 0 else float("nan")
        ar = sum(t.sum() for t in top) / total
        out.append({"n": n, "tp": float(tp), "mp": float(mp), "ip": float(ip), "wr": float(wr), "ar": float(ar)})
    return out


@dataclass
class SentenceSummary:
    """Scalars a CI gate can compare across checkpoints (K = number of copies)."""

    tp_first: float  # TP(0): how likely the sentence is the first time
    tp_last: float  # TP(K-1)
    tp_mean_repeats: float  # mean TP(n) over n = 1..K-1: area under the curve (NaN if K = 1)
    tp_rise: float  # TP(K-1) - TP(0)
    ip_last: float  # IP(K-1) (NaN if K = 1)
    wr_last: float  # WR(K-1) (NaN if K = 1)
    lock_in_copy: int | None  # first n with TP(n) >= 0.9, or None


def sentence_summary(copies: list[CopyMetrics]) -> SentenceSummary:
    tps = np.array([c.tp for c in copies])
    last = copies[-1]
    locked = np.nonzero(tps >= LOCK_IN_THRESHOLD)[0]
    return SentenceSummary(
        tp_first=float(tps[0]),
        tp_last=float(tps[-1]),
        tp_mean_repeats=float(tps[1:].mean()) if len(tps) > 1 else float("nan"),
        tp_rise=float(tps[-1] - tps[0]),
        ip_last=last.ip,
        wr_last=last.wr,
        lock_in_copy=int(locked[0]) if len(locked) else None,
    )
