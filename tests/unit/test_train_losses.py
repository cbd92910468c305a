"""The training losses on hand-made probability tensors, against hand-computed values."""

import math

import pytest
import torch

from repcheck.train import losses
from repcheck.train.data import repetition_sample


def logits_for(probs_rows):
    """Logits whose softmax is exactly the given rows (log of the probabilities)."""
    return torch.tensor(probs_rows, dtype=torch.float64).log()[None].float()


def test_mle_is_the_mean_nll():
    # 3 positions over a 3-token vocabulary; targets are tokens 1, 2, 0 of input [0, 1, 2, 0]
    logits = logits_for([[0.2, 0.5, 0.3], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1], [1 / 3] * 3])
    ids = torch.tensor([[0, 1, 2, 0]])
    expected = -(math.log(0.5) + math.log(0.8) + math.log(0.6)) / 3
    assert losses.mle(logits, ids).item() == pytest.approx(expected, rel=1e-5)


def test_anchored_is_kl_on_own_tokens_and_nll_elsewhere():
    # input [0, 1, 2, 0]: targets 1, 2, 0. Token 1 and token 3 are the model's own text, so
    # targets 0 and 2 are scored by KL(q || p); target 1 (token 2) by its NLL.
    p = [[0.2, 0.5, 0.3], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1], [1 / 3] * 3]
    q = [[0.3, 0.4, 0.3], [0.5, 0.25, 0.25], [0.7, 0.2, 0.1], [1 / 3] * 3]
    ids = torch.tensor([[0, 1, 2, 0]])
    own = torch.tensor([[False, True, False, True]])
    logits = logits_for(p).requires_grad_(True)
    loss = losses.anchored(logits, logits_for(q), ids, own)

    def kl(a, b):
        return sum(x * math.log(x / y) for x, y in zip(a, b))

    expected = (kl(q[0], p[0]) - math.log(0.8) + kl(q[2], p[2])) / 3
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    # where the model already is the base model, its own text costs nothing and pulls nowhere
    same = logits_for(q).requires_grad_(True)
    zero = losses.anchored(same, logits_for(q), ids, torch.ones_like(own))
    zero.backward()
    assert zero.item() == pytest.approx(0.0, abs=1e-6) and same.grad.abs().max() < 1e-6
    # nothing marked: plain MLE
    assert losses.anchored(logits, logits_for(q), ids, torch.zeros_like(own)).item() == pytest.approx(
        losses.mle(logits, ids).item(), rel=1e-6
    )


def test_end_scale_tilts_the_anchor_s_target_away_from_ending():
    # vocabulary [a, b, end]; ends = {2}; every target is the model's own text (rows 0-2
    # predict targets 0-2; the last row predicts nothing)
    q = [[0.35, 0.35, 0.3], [0.025, 0.025, 0.95], [0.5, 0.5, 0.0001], [1 / 3] * 3]
    ids, own = torch.tensor([[0, 1, 0, 1]]), torch.ones(1, 4, dtype=torch.bool)

    def tilted(row, c):  # the docstring's q': ending scaled by c, renormalized
        z = 1 - (1 - c) * row[2]
        return [row[0] / z, row[1] / z, c * row[2] / z]

    target = [tilted(r, 0.5) for r in q]
    assert target[0][2] == pytest.approx(0.15 / 0.85)  # a coin toss leans to going on (0.3 -> 0.18)
    assert target[1][2] == pytest.approx(0.475 / 0.525)  # a sure end stays one (0.95 -> 0.90)
    # the tilted target is where the loss is 0 and pulls nowhere; the base's own q is not
    at_target = logits_for(target).requires_grad_(True)
    zero = losses.anchored(at_target, logits_for(q), ids, own, ends=[2], end_scale=0.5)
    zero.backward()
    assert zero.item() == pytest.approx(0.0, abs=1e-6) and at_target.grad.abs().max() < 1e-6
    at_base = logits_for(q).requires_grad_(True)
    loss = losses.anchored(at_base, logits_for(q), ids, own, ends=[2], end_scale=0.5)
    loss.backward()

    def kl(a, b):
        return sum(x * math.log(x / y) for x, y in zip(a, b))

    assert loss.item() == pytest.approx(sum(kl(t, r) for t, r in zip(target[:3], q)) / 3, rel=1e-4)
    assert at_base.grad[0, 0, 2] > 0 and at_base.grad[0, 1, 2] > 0  # descent lowers the end's logit
    assert abs(at_base.grad[0, 2, 2]) < 1e-4  # where the base would not end, almost nothing
    # c = 1, or no end tokens: the plain KL
    plain = losses.anchored(logits_for(q), logits_for(q), ids, own)
    assert losses.anchored(logits_for(q), logits_for(q), ids, own, ends=[2], end_scale=1.0).item() == plain.item()
    assert losses.anchored(logits_for(q), logits_for(q), ids, own, ends=(), end_scale=0.5).item() == plain.item()


def test_end_hold_is_the_squared_log_ratio_of_ending_on_own_tokens():
    # vocabulary [a, b, end]; ends = {2}. Targets 0..2; own marks tokens 1 and 3 (targets 0 and 2).
    p = [[0.5, 0.3, 0.2], [0.1, 0.1, 0.8], [0.6, 0.38, 0.02], [1 / 3] * 3]
    q = [[0.6, 0.3, 0.1], [0.2, 0.2, 0.6], [0.6, 0.39, 0.01], [1 / 3] * 3]
    own = torch.tensor([[False, True, False, True]])
    eps = 1e-3
    logits = logits_for(p).requires_grad_(True)
    hold = losses.end_hold(logits, logits_for(q), own, [2], eps)

    def term(e, f):
        return (math.log(e + eps) - math.log(f + eps)) ** 2

    assert hold.item() == pytest.approx((term(0.2, 0.1) + term(0.02, 0.01)) / 2, rel=1e-4)
    # a doubling costs about the same wherever ending is a real option, unlike the KL
    assert term(0.2, 0.1) == pytest.approx(term(0.02, 0.01), rel=0.15)
    hold.backward()
    assert logits.grad[0, 0, 2] > 0  # lowers the end token where it rose above the base's
    assert logits.grad[0, 1].abs().max() == 0  # not own: no gradient
    # the base model itself costs nothing; no own token: zero; several end tokens count together
    assert losses.end_hold(logits_for(q), logits_for(q), own, [2]).item() == pytest.approx(0.0, abs=1e-9)
    assert losses.end_hold(logits_for(p), logits_for(q), torch.zeros_like(own), [2]).item() == 0.0
    both = losses.end_hold(logits_for(p), logits_for(q), own, [1, 2], eps).item()
    assert both == pytest.approx((term(0.5, 0.4) + term(0.4, 0.4)) / 2, rel=1e-4)
    # far below eps on both sides, a large ratio costs almost nothing
    tiny_p, tiny_q = [[0.5, 0.49999, 1e-5]] * 2, [[0.5, 0.499999, 1e-6]] * 2
    assert (
        losses.end_hold(logits_for(tiny_p), logits_for(tiny_q), torch.ones(1, 2, dtype=torch.bool), [2]).item() < 1e-4
    )


def test_ditto_by_hand_and_its_stop_gradient():
    """Period L = 2 starting at target 2: positions 2 and 3 are compared with 0 and 1."""
    # target probabilities p_i of input [0, 1, 0, 1, 0]: targets are 1, 0, 1, 0
    p = [0.4, 0.3, 0.5, 0.1]
    rows = []
    for i, target in enumerate([1, 0, 1, 0]):
        row = [0.0, 0.0]
        row[target] = p[i]
        row[1 - target] = 1 - p[i]
        rows.append(row)
    rows.append([0.5, 0.5])
    logits = logits_for(rows).requires_grad_(True)
    ids = torch.tensor([[0, 1, 0, 1, 0]])
    lam = 0.5
    loss = losses.ditto(logits, ids, starts=[2], periods=[2], lam=lam)
    expected = (-math.log(1 - abs(0.5 - lam * 0.4)) - math.log(1 - abs(0.1 - lam * 0.3))) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    grad = logits.grad[0]
    assert grad[2].abs().sum() > 0 and grad[3].abs().sum() > 0  # p_n gets the gradient
    assert grad[0].abs().sum() == 0 and grad[1].abs().sum() == 0  # sg(p_{n-1}): none to the baseline
    # without sentence starts: target 3 predicts token 4, the first token of the third copy
    inner = losses.ditto(logits, ids, starts=[2], periods=[2], lam=lam, sentence_starts=False)
    assert inner.item() == pytest.approx(-math.log(1 - abs(0.5 - lam * 0.4)), rel=1e-5)


def test_ditto_spares_the_end_tokens():
    """With token 2 spared, p is computed over tokens 0 and 1 only, and token 2's logit gets no
    gradient: the penalty cannot move probability to it."""
    rows = [[0.3, 0.5, 0.2], [0.6, 0.2, 0.2], [0.2, 0.4, 0.4], [0.5, 0.25, 0.25], [1 / 3] * 3]
    logits = logits_for(rows).requires_grad_(True)
    ids = torch.tensor([[0, 1, 0, 1, 0]])  # targets 1, 0, 1, 0; period 2 from target 2
    lam = 0.9
    loss = losses.ditto(logits, ids, starts=[2], periods=[2], lam=lam, spared=[2])
    p = [0.5 / 0.8, 0.6 / 0.8, 0.4 / 0.6, 0.5 / 0.75]  # renormalized over tokens 0 and 1
    expected = (-math.log(1 - abs(p[2] - lam * p[0])) - math.log(1 - abs(p[3] - lam * p[1]))) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert logits.grad[0, :, 2].abs().max() == 0 and logits.grad[0, 2:4, :2].abs().sum() > 0
    plain = logits_for(rows).requires_grad_(True)
    losses.ditto(plain, ids, starts=[2], periods=[2], lam=lam).backward()
    assert plain.grad[0, 2:4, 2].abs().sum() > 0  # the paper's: the end token takes its share


def test_unlikelihood_token_by_hand():
    # input [0, 1, 0, 2]: targets 1, 0, 2. Candidates: position 1 (target 0) -> {1};
    # position 2 (target 2) -> {1, 0}; position 0 -> none.
    rows = [[0.2, 0.7, 0.1], [0.5, 0.3, 0.2], [0.25, 0.35, 0.4], [1 / 3] * 3]
    logits = logits_for(rows)
    ids = torch.tensor([[0, 1, 0, 2]])
    nll, ul = losses.unlikelihood_token(logits, ids, alpha=1.0)
    assert nll.item() == pytest.approx(-(math.log(0.7) + math.log(0.5) + math.log(0.4)) / 3, rel=1e-5)
    expected_ul = (-math.log(1 - 0.3) - math.log(1 - 0.35) - math.log(1 - 0.25)) / 3
    assert ul.item() == pytest.approx(expected_ul, rel=1e-5)
    _, ul2 = losses.unlikelihood_token(logits, ids, alpha=2.0)
    assert ul2.item() == pytest.approx(2 * expected_ul, rel=1e-5)


def test_unlikelihood_token_counts_a_repeated_candidate_once():
    # input [3, 3, 3, 1]: targets 3, 3, 1. At position 2 (target 1) the earlier targets are
    # 3 and 3: one distinct candidate.
    rows = [[0.25] * 4, [0.1, 0.2, 0.3, 0.4], [0.1, 0.5, 0.2, 0.2], [0.25] * 4]
    _, ul = losses.unlikelihood_token(logits_for(rows), torch.tensor([[3, 3, 3, 1]]))
    assert ul.item() == pytest.approx(-math.log(1 - 0.2) / 3, rel=1e-5)  # only position 2, token 3 once


def test_scalegrad_by_hand_and_gamma_one_is_mle():
    rows = [[0.2, 0.7, 0.1], [0.5, 0.3, 0.2], [0.25, 0.35, 0.4], [1 / 3] * 3]
    logits = logits_for(rows)
    ids = torch.tensor([[0, 1, 0, 2]])  # targets 1, 0, 2; none repeats an earlier target
    g = 0.2
    # position 0: no earlier target, S = 0, target novel: p~ = g*0.7 / g
    # position 1: earlier {1}, S = 0.3, target 0 novel: p~ = g*0.5 / (g + (1-g)*0.3)
    # position 2: earlier {1, 0}, S = 0.35 + 0.25, target 2 novel: p~ = g*0.4 / (g + (1-g)*0.6)
    expected = -(math.log(0.7) + math.log(g * 0.5 / (g + 0.8 * 0.3)) + math.log(g * 0.4 / (g + 0.8 * 0.6))) / 3
    assert losses.scalegrad(logits, ids, g).item() == pytest.approx(expected, rel=1e-5)
    assert losses.scalegrad(logits, ids, 1.0).item() == pytest.approx(losses.mle(logits, ids).item(), rel=1e-5)
    # a repeated target is not scaled: input [0, 1, 1]: targets 1, 1
    two = logits_for([[0.2, 0.7, 0.1], [0.1, 0.6, 0.3], [1 / 3] * 3])
    expected = -(math.log(0.7) + math.log(0.6 / (g + 0.8 * 0.6))) / 2
    assert losses.scalegrad(two, torch.tensor([[0, 1, 1]]), g).item() == pytest.approx(expected, rel=1e-5)


def test_repeated_ngram_mask_and_sequence_unlikelihood():
    assert losses.repeated_ngram_mask([1, 2, 3, 4, 1, 2, 3, 4, 5], 4) == [False] * 4 + [True] * 4 + [False]
    assert losses.repeated_ngram_mask([1, 2, 3], 4) == [False] * 3
    # prefix [9], continuation [5, 5, 5, 5, 5] with n = 2: bigrams (5,5) repeat from the second on
    ids = torch.tensor([[9, 5, 5, 5, 5, 5]])
    rows = [[0.0] * 5 + [0.6] + [0.0] * 3 + [0.4]] * 6
    rows = [[max(v, 1e-9) for v in r] for r in rows]
    loss = losses.unlikelihood_sequence(logits_for(rows), ids, continuation_start=1, n=2)
    mask = losses.repeated_ngram_mask([5, 5, 5, 5, 5], 2)  # [F, T, T, T, T]
    assert mask == [False, True, True, True, True]
    assert loss.item() == pytest.approx(4 * -math.log(1 - 0.6) / 5, rel=1e-4)


def test_repetition_sample_fills_the_block_with_identical_copies():
    s = repetition_sample(prefix=[1, 7, 8], sentence=[4, 5, 6, 2], block_size=16)
    ids = list(s.input_ids)
    assert len(ids) == 16 and ids[:3] == [1, 7, 8]
    assert ids[3:7] == ids[7:11] == ids[11:15] == [4, 5, 6, 2] and ids[15] == 4  # a partial last copy
    assert s.start == 7 and s.period == 4  # the loss starts at the second copy
