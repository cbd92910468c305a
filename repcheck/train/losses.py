"""The training losses, each checkable against its paper (and DITTO's code).

All take ``logits [B, T, V]`` and ``input_ids [B, T]`` of full blocks (no padding). Row t of
the logits predicts token t+1, so the targets are ``input_ids[:, 1:]`` and every per-token
quantity below lives on target positions i = 0 .. T-2 (target i is token i+1).

    logp[b, i, v] = log softmax(logits[b, i])[v]          (float32)
    p[b, i]       = exp(logp[b, i, y_i]),  y_i = input_ids[b, i + 1]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def _targets(logits: torch.Tensor, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logp [B, T-1, V], targets [B, T-1]): each position's log-distribution and its target."""
    return logits[:, :-1].float().log_softmax(-1), input_ids[:, 1:]


def mle(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood of every target token."""
    logp, y = _targets(logits, input_ids)
    return -logp.gather(-1, y[..., None]).mean()


def anchored(
    logits: torch.Tensor,
    base_logits: torch.Tensor,
    input_ids: torch.Tensor,
    own: torch.Tensor,
    ends: Sequence[int] = (),
    end_scale: float = 1.0,
) -> torch.Tensor:
    """MLE whose targets on the model's own text are the base model's whole distribution
    (repcheck's ``--anchor kl``, not in the papers). At each target position i:

        loss_i = KL(q_i || p_i) = sum_v q_i(v) (log q_i(v) - log p_i(v))   where own[b, i + 1]
        loss_i = -log p_i(y_i)                                            elsewhere

    with q_i = softmax(base_logits[b, i]) the frozen base model's distribution and p_i the
    trained model's; averaged over all target positions. MLE on text the base model sampled at
    temperature 1 estimates the same KL (plus q's entropy, a constant) from one token per
    position; the exact KL has no sampling noise, and unlike MLE on temperature-0.7 samples it
    does not sharpen the model. The other tokens (the user's text, asked-for examples) are
    plain MLE: there the sampled token is the right one.

    ``end_scale`` c (repcheck's ``--end-scale``; 1 is the plain KL): the target's probability
    of the ``ends`` tokens is scaled by c and q renormalized,

        q'_i(v) = c q_i(v) / Z_i  for v in ends,  q_i(v) / Z_i  otherwise,  Z_i = 1 - (1 - c) sum_{v in ends} q_i(v)

    so where the base model would surely end (q = 0.95, c = 0.5: q' = 0.90) the target still
    ends, where ending is a coin toss (q = 0.3: q' = 0.18) it leans to going on, and where the
    base would not end nothing changes. Sharpening (MLE on temperature-0.7 samples) lowers
    the end of turn too, but every other token's as well (docs/training.md).

    base_logits: [B, T, V] (no gradient); own: [B, T] bool, aligned with ``input_ids``.
    """
    logp, y = _targets(logits, input_ids)
    nll = -logp.gather(-1, y[..., None]).squeeze(-1)  # [B, T-1]
    base = base_logits[:, :-1].float()  # [B, T-1, V]
    if ends and end_scale != 1.0:  # log c added to the end tokens' logits: the softmax divides by Z_i
        tilt = base.new_zeros(base.shape[-1])  # [V]: log c at the end tokens, 0 elsewhere
        tilt[list(ends)] = math.log(end_scale)
        base = base + tilt
    logq = base.log_softmax(-1)  # [B, T-1, V]
    kl = (logq.exp() * (logq - logp)).sum(-1)  # [B, T-1]
    return torch.where(own[:, 1:], kl, nll).mean()


def end_hold(
    logits: torch.Tensor, base_logits: torch.Tensor, own: torch.Tensor, ends: Sequence[int], eps: float = 1e-3
) -> torch.Tensor:
    """How far the probability of ending moved from the base model's where ``own`` marks (the
    model's own text of an MLE step; every token of a DITTO sample), repcheck's
    ``--end-weight``, not in the papers. At each target position i where ``own[b, i + 1]``:

        e_i    = sum_{v in ends} p_i(v)      (the trained model's probability of ending here)
        f_i    = sum_{v in ends} q_i(v)      (the frozen base model's)
        loss_i = (log(e_i + eps) - log(f_i + eps))^2

    averaged over those positions (0 where there are none). The KL of ``anchored`` weighs the
    end tokens by their probability, small almost everywhere: doubling a 2% chance of ending
    costs it about 0.01 nats, yet under greedy decoding it ends answers. The squared log-ratio
    costs a doubling the same (0.48) wherever ending is a real option; ``eps`` makes it vanish
    where neither model would end (both far below eps).

    logits, base_logits: [B, T, V] (base without gradient); own: [B, T] bool; ends: token ids.
    """
    index = torch.tensor(list(ends), device=logits.device)
    e = logits[:, :-1].float().softmax(-1)[..., index].sum(-1)  # [B, T-1]
    f = base_logits[:, :-1].float().softmax(-1)[..., index].sum(-1)  # [B, T-1]
    mask = own[:, 1:]
    if not mask.any():
        return logits.new_zeros((), dtype=torch.float32)
    return ((torch.log(e + eps) - torch.log(f + eps)) ** 2)[mask].mean()


def ditto(
    logits: torch.Tensor,
    input_ids: torch.Tensor,
    starts: Sequence[int],
    periods: Sequence[int],
    lam: float = 0.5,
    sentence_starts: bool = True,
    spared: Sequence[int] = (),
) -> torch.Tensor:
    """DITTO's sentence-level repetition penalty (Xu et al. 2022, Eq. 4;
    ``fairseq/custom/repetetion_penalty_accum_loss.py``, ``compute_loss`` with ``loss_type='nl'``
    and ``obtain_rep_baseline_prob``):

        loss_i = -log( clamp(1 - |p_i - lam * sg(p_{i-L})|, 1e-20) )

    for every target position i >= start (start = prefix length + L; as in DITTO's code, whose
    mask starts at target index prefix_len + rep_len, the first token of the second copy is
    not penalized; repcheck's ``free_copies`` k moves the start k copies later), where p_{i-L}
    is the probability of the same token one copy (L = period tokens) earlier, detached: the
    gradient flows into p_i only. Averaged over the penalized positions (DITTO divides the
    summed loss by their count).

    ``sentence_starts=False`` (not the paper's) also leaves out the positions that predict the
    first token of a later copy, i = start - 1 + m * L (m >= 1): after a finished sentence the
    only way to lower the copy's probability that the rest of the text never punishes is the
    end of the turn, and a chat model learns to take it.

    ``spared`` (not the paper's; repcheck's ``--spare-ends``): token ids left out of the softmax
    that p is computed with, the end-of-text and end-of-turn tokens. Their logits get no
    gradient, so the probability the penalty takes from a repeated token goes to the text's
    other continuations, never to ending (running text, which DITTO's samples are, does not end
    there). A target among them would count as p = 0.
    """
    if spared:
        logits = logits.index_fill(-1, torch.tensor(list(spared), device=logits.device), float("-inf"))
    logp, y = _targets(logits, input_ids)
    p = logp.gather(-1, y[..., None]).squeeze(-1).exp()  # [B, T-1]
    total, count = p.new_zeros(()), 0
    for b, (start, period) in enumerate(zip(starts, periods)):
        cur = p[b, start:]  # p_i for i >= start
        baseline = p[b, start - period : p.shape[1] - period].detach()  # sg(p_{i-L})
        loss = -torch.log(torch.clamp(1.0 - (cur - lam * baseline).abs(), min=1e-20))
        if not sentence_starts:
            keep = (torch.arange(1, loss.numel() + 1, device=loss.device) % period) != 0  # i - start + 1 = m * L
            loss = loss[keep]
        total = total + loss.sum()
        count += loss.numel()
    return total / max(count, 1)


def _previous_target_probs(logp: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For every position i and every earlier target j < i that is the first occurrence of its
    token: (probs [B, T', T'] = P(y_j at position i), mask [B, T', T'] of such (i, j)). The
    unique earlier targets of position i are {y_j : mask[b, i, j]}."""
    B, n = y.shape
    j = torch.arange(n, device=y.device)
    earlier = j[None, :] < j[:, None]  # [i, j]: j < i
    same = y[:, :, None] == y[:, None, :]  # [b, j, k]: y_j == y_k
    first = ~(same & (j[None, :] < j[:, None])[None]).any(-1)  # [b, j]: no k < j with y_k == y_j
    mask = earlier[None] & first[:, None, :]  # [b, i, j]
    probs = logp.gather(-1, y[:, None, :].expand(B, n, n)).exp()  # [b, i, j] = P(y_j | context of i)
    return probs, mask


def unlikelihood_token(
    logits: torch.Tensor, input_ids: torch.Tensor, alpha: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-level unlikelihood training (Welleck et al. 2019, Eq. 4-5): MLE plus

        alpha * sum_{c in C_i} -log( clamp(1 - p(c | context_i), 1e-5) )

    per position, where the negative candidates C_i are the distinct earlier targets of the
    sequence other than the current target y_i. Returns (nll, unlikelihood), each averaged
    over target positions; the loss is nll + alpha * unlikelihood.
    """
    logp, y = _targets(logits, input_ids)
    nll = -logp.gather(-1, y[..., None]).mean()
    probs, mask = _previous_target_probs(logp, y)
    mask = mask & (y[:, None, :] != y[:, :, None])  # not the current target
    ul = -(torch.log(torch.clamp(1.0 - probs, min=1e-5)) * mask).sum() / y.numel()
    return nll, alpha * ul


def scalegrad(logits: torch.Tensor, input_ids: torch.Tensor, gamma: float = 0.2) -> torch.Tensor:
    """ScaleGrad (Lin et al. 2021, "Straight to the Gradient", Eq. 3): at each position the
    novel tokens (not among the earlier targets) have their probability scaled by gamma and
    the distribution is renormalized; the loss is the NLL of the target under it:

        p~(v) = gamma * p(v) / Z if v is novel, p(v) / Z otherwise,
        Z = gamma * (1 - S) + S,  S = sum of p over the distinct earlier targets.

    Averaged over target positions. gamma = 1 is MLE.
    """
    logp, y = _targets(logits, input_ids)
    log_target = logp.gather(-1, y[..., None]).squeeze(-1)  # [B, T']
    probs, mask = _previous_target_probs(logp, y)
    seen_mass = (probs * mask).sum(-1)  # S [B, T']
    j = torch.arange(y.shape[1], device=y.device)
    target_seen = ((y[:, :, None] == y[:, None, :]) & (j[None, :] < j[:, None])[None]).any(-1)  # y_i among y_<i
    log_scale = torch.where(target_seen, torch.zeros_like(log_target), torch.full_like(log_target, float(gamma)).log())
    log_z = torch.log(gamma + (1.0 - gamma) * seen_mass.clamp(max=1.0))
    return -(log_target + log_scale - log_z).mean()


def repeated_ngram_mask(tokens: Sequence[int], n: int = 4) -> list[bool]:
    """True at every token that is part of an n-gram which already occurred earlier in the
    sequence (sequence-level unlikelihood's negative candidates, Welleck et al. 2019, Sec. 5.2)."""
    mask = [False] * len(tokens)
    seen: set[tuple] = set()
    for i in range(len(tokens) - n + 1):
        gram = tuple(tokens[i : i + n])
        if gram in seen:
            for k in range(i, i + n):
                mask[k] = True
        seen.add(gram)
    return mask


def unlikelihood_sequence(
    logits: torch.Tensor, input_ids: torch.Tensor, continuation_start: int, n: int = 4
) -> torch.Tensor:
    """Sequence-level unlikelihood (Welleck et al. 2019, Eq. 6-7) on a model's own greedy
    continuation: -log(clamp(1 - p, 1e-20)) at every continuation token inside a repeated
    n-gram of that continuation, summed and divided by the number of continuation tokens.

    input_ids: prefix + continuation, the continuation from ``continuation_start`` on."""
    logp, y = _targets(logits, input_ids)
    p = logp.gather(-1, y[..., None]).squeeze(-1).exp()  # p[b, i] scores token i+1
    cont = input_ids[:, continuation_start:]
    mask = torch.tensor([repeated_ngram_mask(row.tolist(), n) for row in cont], device=p.device)
    p_cont = p[:, continuation_start - 1 :]  # the continuation's tokens
    loss = -(torch.log(torch.clamp(1.0 - p_cont, min=1e-20)) * mask).sum()
    return loss / cont.numel()
