"""The metric math on hand-made arrays: no model."""

import math

import numpy as np
import pytest
import torch

from repcheck.metrics import next_token_probs, per_copy_metrics, repeated_input, sentence_summary


def test_repeated_input_is_token_level_concatenation():
    assert repeated_input([1], [5, 6, 7], 3) == [1, 5, 6, 7, 5, 6, 7, 5, 6, 7]
    assert repeated_input([], [9], 1) == [9]


def test_per_copy_metrics_by_hand():
    # K = 3 copies, L = 2 positions.
    p = np.array([[0.2, 0.5], [0.3, 0.4], [0.9, 0.6]])
    pmax = np.array([[0.5, 0.5], [0.3, 0.5], [0.9, 0.6]])
    c = per_copy_metrics(p, pmax)
    assert [x.n for x in c] == [0, 1, 2]
    assert c[0].tp == pytest.approx(0.35) and c[0].mp == pytest.approx(0.5)
    # copy 0: position 1 is an argmax (p == pmax), position 0 is not.
    assert c[0].ar == pytest.approx(0.5)
    assert math.isnan(c[0].ip) and math.isnan(c[0].wr)
    # copy 1: only position 0 increased (0.3 > 0.2) and it is the argmax; position 1 fell.
    assert c[1].ip == pytest.approx(0.5) and c[1].wr == pytest.approx(0.5) and c[1].ar == pytest.approx(0.5)
    # copy 2: both increased, both argmax.
    assert (c[2].tp, c[2].ip, c[2].wr, c[2].ar) == (pytest.approx(0.75), 1.0, 1.0, 1.0)


def test_increase_without_winning_counts_for_ip_not_wr():
    p = np.array([[0.1], [0.2]])
    pmax = np.array([[0.5], [0.6]])  # increased, but another token is still more likely
    c = per_copy_metrics(p, pmax)
    assert c[1].ip == 1.0 and c[1].wr == 0.0 and c[1].ar == 0.0


def test_equal_probability_is_not_an_increase():
    p = np.array([[0.4, 0.4], [0.4, 0.5]])
    c = per_copy_metrics(p, p.copy())
    assert c[1].ip == 0.5  # 0.4 -> 0.4 is not an increase; 0.4 -> 0.5 is


def test_ties_at_the_max_count_as_argmax():
    # Two tokens share the maximum 0.5: the repeated one is an argmax even if argmax() picks the other.
    p = np.array([[0.5], [0.5]])
    c = per_copy_metrics(p, np.array([[0.5], [0.5]]))
    assert c[0].ar == 1.0 and c[1].ar == 1.0


def test_shape_errors():
    with pytest.raises(ValueError):
        per_copy_metrics(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError):
        per_copy_metrics(np.zeros((2, 0)), np.zeros((2, 0)))


def test_next_token_probs_alignment():
    # Logits row t predicts token t+1. Make row t put all mass on token (t + 1) % V,
    # except row 2 which spreads evenly over the 4-token vocabulary.
    V, T = 4, 5
    logits = torch.full((T, V), -1e4)
    for t in range(T):
        logits[t, (t + 1) % V] = 0.0
    logits[2] = 0.0
    ids = torch.tensor([0, 1, 2, 0, 0])
    logp, max_logp, arg = next_token_probs(logits, ids, start=1, count=4)
    p, pmax = logp.exp(), max_logp.exp()
    # token 1 predicted by row 0 (mass on 1): p = 1; token 2 by row 1 (mass on 2): p = 1;
    # token 0 by row 2 (uniform): p = 0.25, max 0.25; token 0 by row 3 (mass on 0): p = 1.
    assert p.tolist() == pytest.approx([1.0, 1.0, 0.25, 1.0])
    assert pmax.tolist() == pytest.approx([1.0, 1.0, 0.25, 1.0])
    assert arg[:2].tolist() == [1, 2] and arg[3].item() == 0
    # an argmax target has p == pmax exactly (the metric relies on it)
    assert bool((p[[0, 1, 3]] == pmax[[0, 1, 3]]).all())


def test_next_token_probs_refuses_position_zero():
    from repcheck.errors import RepcheckError

    with pytest.raises(RepcheckError, match=r"start >= 1"):
        next_token_probs(torch.zeros(3, 2), torch.tensor([0, 1, 0]), start=0, count=1)


def test_position_zero_is_refused_under_python_O_too():
    """The check is the library's error, not an assert that `python -O` strips."""
    import subprocess
    import sys

    code = (
        "import torch\nfrom repcheck.metrics import next_token_probs\nfrom repcheck.errors import RepcheckError\n"
        "try:\n    next_token_probs(torch.zeros(3, 2), torch.tensor([0, 1, 0]), start=0, count=1)\n"
        "except RepcheckError as e:\n    print('refused', e.param)\n"
    )
    out = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "refused start"


def test_sentence_summary():
    p = np.array([[0.2], [0.5], [0.95], [0.97]])
    s = sentence_summary(per_copy_metrics(p, p.copy()))
    assert s.tp_first == pytest.approx(0.2) and s.tp_last == pytest.approx(0.97)
    assert s.tp_rise == pytest.approx(0.77)
    assert s.tp_mean_repeats == pytest.approx((0.5 + 0.95 + 0.97) / 3)
    assert s.lock_in_copy == 2 and s.ip_last == 1.0 and s.wr_last == 1.0


def test_summary_single_copy_and_no_lock_in():
    s = sentence_summary(per_copy_metrics(np.array([[0.3]]), np.array([[0.4]])))
    assert math.isnan(s.tp_mean_repeats) and math.isnan(s.ip_last) and s.lock_in_copy is None
