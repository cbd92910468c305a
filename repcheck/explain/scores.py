"""Which heads copy and which neurons rise: scores from one pass over the probe's own input.

For a sentence of L tokens repeated K times after a P-token prefix, position t of copy n
holds token x_l (t = P + n*L + l). Over the positions of copies n >= 1, for every layer and
head (A = the head's attention weights, rows are queries):

    induction(h)     = mean_t A[t, t - L + 1]     the token after the previous occurrence of
                                                  x_t: the one to copy next (Olsson et al. 2022)
    induction_any(h) = mean_t sum_{k>=1} A[t, t - k*L + 1]   the same, in every earlier copy
    duplicate_token(h) = mean_t A[t, t - L]       the previous occurrence of x_t itself: a
                                                  duplicate-token head (Olsson et al. 2022);
                                                  not a previous-token head, which attends to t - 1
    profile(h, n)    = mean over t in copy n of A[t, t - L + 1]

each averaged over positions, then over sentences. And TransformerLens' induction score
(``head_detector.detect_head(..., "induction_head")``, error measure "mul") on the whole
unpadded sequence: sum(A * D) / sum(A), with D[i, j] = 1 where token j-1 equals token i and
j - 1 < i; comparable with TransformerLens on [BOS] + R + R random tokens (``--random``).

Repetition neurons (after Hiraoka & Inui 2025): a neuron's rise is its mean activation (the
input of the MLP's down projection) over copies n >= 1 minus its mean over copy 0, averaged
over sentences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..backends.base import HookableBackend
from ..progress import ProgressCallback


@dataclass
class Trace:
    induction: np.ndarray  # [layers, heads]
    induction_any: np.ndarray  # [layers, heads]
    duplicate_token: np.ndarray  # [layers, heads]
    tl_induction: np.ndarray  # [layers, heads]
    profile: np.ndarray  # [layers, heads, K]; NaN at copy 0
    neuron_rise: np.ndarray  # [layers, neurons]
    head_means: dict[int, torch.Tensor] = field(default_factory=dict)  # per layer [heads * head_dim]
    neuron_means: dict[int, torch.Tensor] = field(default_factory=dict)  # per layer [neurons]


def tl_induction_pattern(tokens: torch.Tensor) -> torch.Tensor:
    """TransformerLens' induction detection pattern D [n, n] for one sequence of n tokens."""
    n = tokens.shape[0]
    eq = tokens[:, None] == tokens[None, :]  # eq[i, k]: token i == token k
    k = torch.arange(n)
    earlier = k[None, :] < k[:, None]  # k < i
    d = torch.zeros(n, n, dtype=torch.bool)
    d[:, 1:] = (eq & earlier)[:, :-1]  # D[i, j] = eq[i, j-1] and j-1 < i
    return d.float()


class _Sums:
    """Running sums over sentences (scores) and over positions (means for mean ablation)."""

    def __init__(self, layers: int, heads: int, neurons: int, repeats: int):
        self.scores = {
            name: np.zeros((layers, heads))
            for name in ("induction", "induction_any", "duplicate_token", "tl_induction")
        }
        self.profile = np.zeros((layers, heads, repeats))
        self.rise = np.zeros((layers, neurons))
        self.head_sum: dict[int, torch.Tensor] = {}
        self.neuron_sum: dict[int, torch.Tensor] = {}
        self.positions = 0
        self.sentences = 0

    def add(self, traced, b: int, tokens: Sequence[int], prefix_len: int, L: int) -> None:
        """Row b of a ``TraceBatch`` (its real tokens start at ``traced.offsets[b]``)."""
        attentions, offset = traced.attentions, traced.offsets[b]
        K = self.profile.shape[2]
        o, n = offset, len(tokens)
        first, start = o + prefix_len, o + prefix_len + L  # copy 0, copy 1
        ts = torch.arange(start, o + n)  # positions of copies n >= 1
        copy_of = (ts - first) // L
        d = tl_induction_pattern(torch.tensor(list(tokens)))
        for layer, layer_att in enumerate(attentions):
            att = layer_att[b].float().cpu()  # [H, T, T]
            ind = att[:, ts, ts - L + 1]  # [H, positions]: to the token after the previous occurrence
            self.scores["induction"][layer] += ind.mean(-1).numpy()
            self.scores["duplicate_token"][layer] += att[:, ts, ts - L].mean(-1).numpy()
            any_copy = torch.zeros_like(ind)
            for k in range(1, K):
                cols = ts - k * L + 1
                ok = cols >= first + 1  # the earlier occurrence must lie in copy 0 or later
                any_copy[:, ok] += att[:, ts[ok], cols[ok]]
            self.scores["induction_any"][layer] += any_copy.mean(-1).numpy()
            for c in range(1, K):
                self.profile[layer, :, c] += ind[:, copy_of == c].mean(-1).numpy()
            a = att[:, o:, o:]  # the unpadded sequence
            self.scores["tl_induction"][layer] += ((a * d).sum((1, 2)) / a.sum((1, 2))).numpy()
            x = traced.neurons[layer][b].float().cpu()  # [T, neurons]
            self.rise[layer] += (x[start : o + n].mean(0) - x[first:start].mean(0)).numpy()
            self.neuron_sum[layer] = self.neuron_sum.get(layer, 0) + x[o : o + n].sum(0)
            heads_in = traced.heads[layer][b].float().cpu()
            self.head_sum[layer] = self.head_sum.get(layer, 0) + heads_in[o : o + n].sum(0)
        self.positions += n
        self.sentences += 1

    def result(self) -> Trace:
        N, P = self.sentences, self.positions
        profile = self.profile / N
        profile[:, :, 0] = np.nan
        return Trace(
            **{name: value / N for name, value in self.scores.items()},
            profile=profile,
            neuron_rise=self.rise / N,
            head_means={layer: s / P for layer, s in self.head_sum.items()},
            neuron_means={layer: s / P for layer, s in self.neuron_sum.items()},
        )


def trace(
    backend: HookableBackend,
    sequences: Sequence[Sequence[int]],
    prefix_len: int,
    period: Sequence[int],
    repeats: int,
    *,
    batch_size: int = 4,
    progress: ProgressCallback | None = None,
) -> Trace:
    """Score every head and neuron over the probe inputs ``sequences`` (prefix + K copies of a
    sentence of ``period[i]`` tokens), one eager forward pass per batch (``backend.traced``)."""
    units = backend.units()
    sums = _Sums(units.layers, units.heads, units.neurons, repeats)
    for traced in backend.traced(sequences, batch_size=batch_size):
        for b, i in enumerate(traced.indices):
            sums.add(traced, b, sequences[i], prefix_len, period[i])
        if progress:
            progress("scoring heads and neurons", sums.sentences, len(sequences))
    return sums.result()
