"""explain's pieces that need no model: TransformerLens' detection pattern and head specs."""

import pytest
import torch

from repcheck.errors import RepcheckError
from repcheck.explain.ablation import parse_heads
from repcheck.explain.scores import tl_induction_pattern


def transformerlens_induction_pattern(tokens: torch.Tensor) -> torch.Tensor:
    """TransformerLens' get_induction_head_detection_pattern, step by step as its
    head_detector.py builds it: the duplicate-token pattern (equal tokens, diagonal zeroed,
    lower triangle), rolled one column right, first column zeroed, lower triangle."""
    n = tokens.shape[-1]
    eq = (tokens[None, :] == tokens[:, None]).int()
    eq.fill_diagonal_(0)
    duplicate = torch.tril(eq.float())
    shifted = torch.roll(duplicate, shifts=1, dims=1)
    return torch.tril(torch.cat((torch.zeros(n, 1), shifted[:, 1:]), dim=1))


@pytest.mark.parametrize("seed", range(5))
def test_detection_pattern_is_transformerlens(seed):
    g = torch.Generator().manual_seed(seed)
    r = torch.randint(0, 6, (9,), generator=g)  # a small alphabet: many coincidental repeats
    tokens = torch.cat([torch.tensor([99]), r, r])
    assert torch.equal(tl_induction_pattern(tokens), transformerlens_induction_pattern(tokens))


def test_detection_pattern_on_bos_r_r():
    # [BOS] a b c a b c: the second a (position 4) should attend to 2, the b after the first a;
    # the second c (6) to 4, the token after the first c (3)
    tokens = torch.tensor([0, 1, 2, 3, 1, 2, 3])
    d = tl_induction_pattern(tokens)
    assert d[4, 2] == 1 and d[5, 3] == 1 and d[6, 4] == 1
    assert d.sum() == 3 and d[:4].sum() == 0  # nothing before the repeat starts


def test_parse_heads():
    assert parse_heads("2.3, 0.1,2.3") == [(0, 1), (2, 3)]
    assert parse_heads([(1, 0)]) == [(1, 0)]
    for bad, needle in [("3", "LAYER.HEAD"), ("a.b", "LAYER.HEAD"), ("1.-1", "LAYER.HEAD"), (",", "no head")]:
        with pytest.raises(RepcheckError, match=needle):
            parse_heads(bad)


def test_heads_and_neurons_that_do_not_exist_are_refused():
    from repcheck.backends.hf_hooks import Layout, check_units

    lay = Layout(out_proj=[None] * 3, down_proj=[None] * 3, heads=4, head_dim=8, neurons=16)
    check_units(lay, [(2, 3)], [(0, 15)])
    with pytest.raises(RepcheckError, match=r"head 3\.0 does not exist: the model has layers 0-2 and heads 0-3"):
        check_units(lay, [(3, 0)], [])
    with pytest.raises(RepcheckError, match=r"head 0\.4 does not exist"):
        check_units(lay, [(0, 4)], [])
    with pytest.raises(RepcheckError, match=r"neuron 1\.16 does not exist"):
        check_units(lay, [], [(1, 16)])


def test_random_controls_draw_without_replacement_from_the_complement():
    import numpy as np

    from repcheck.explain.run import draw_without, require_drawable

    rng = np.random.default_rng(0)
    for _ in range(50):
        drawn = draw_without(rng, 10, {0, 1, 2, 3, 4}, 5)
        assert sorted(drawn) == [5, 6, 7, 8, 9]  # exactly the complement: no rejection loop, no repeats
    require_drawable(2, 4, "heads", "top")
    with pytest.raises(RepcheckError, match="3 top heads and 3 random ones .* need 6 heads; the model has 4"):
        require_drawable(3, 4, "heads", "top")
    with pytest.raises(RepcheckError, match="at most 50"):
        require_drawable(60, 101, "neurons", "neuron_share")
