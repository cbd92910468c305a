import json
import math

import numpy as np
import pytest

from repcheck.results import ProbeResult, SentenceResult
from repcheck.stats import mean_ci95, t_critical_95


@pytest.mark.parametrize("df", [*range(1, 61), 75, 100, 200, 1000, 10_000])
def test_t_critical_values_against_scipy(df):
    """The table (1..30 df) and the Cornish-Fisher expansion beyond it, against scipy's
    exact Student-t quantile (an independent computation)."""
    from scipy.stats import t

    exact = t.ppf(0.975, df)
    assert t_critical_95(df) == pytest.approx(exact, abs=6e-4)


def test_mean_ci95_against_scipy():
    from scipy import stats

    x = [0.12, 0.5, 0.31, 0.97, 0.44]
    mean, lo, hi = mean_ci95(x)
    s_lo, s_hi = stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
    assert (
        mean == pytest.approx(np.mean(x))
        and lo == pytest.approx(s_lo, abs=1e-3)
        and hi == pytest.approx(s_hi, abs=1e-3)
    )
    mean, lo, hi = mean_ci95([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert math.isnan(mean_ci95([5.0])[1])
    assert mean_ci95([1.0, float("nan"), 3.0])[0] == 2.0


def _result(n_sent=2, K=3, L=2):
    rng = np.random.default_rng(0)
    sents = []
    for i in range(n_sent):
        p = rng.uniform(0.1, 0.5, (K, L))
        sents.append(
            SentenceResult(
                text=f"s{i}",
                token_ids=[10, 11][:L],
                tokens=["a", "b"][:L],
                p=p,
                pmax=p + 0.1,
                argmax_ids=np.zeros((K, L), int),
                argmax_tokens=[["x"] * L for _ in range(K)],
            )
        )
    return ProbeResult(
        model={"spec": "m", "name": "m"},
        dtype="float32",
        device="cpu",
        repeats=K,
        prefix=None,
        prefix_ids=[0],
        sentences=sents,
    )


def test_json_round_trip_and_nulls():
    r = _result()
    text = r.to_json()
    doc = json.loads(text)  # strict JSON: NaN would have failed allow_nan=False
    assert doc["schema_version"] == 2 and doc["kind"] == "probe"
    assert {"repcheck_version", "created", "versions"} <= set(doc) and "torch_version" in doc["versions"]
    assert doc["per_copy"][0]["ip"] is None and doc["per_copy"][1]["ip"] is not None
    back = ProbeResult.from_dict(doc)
    assert back.to_dict() == doc


def test_frames():
    r = _result(n_sent=2, K=3, L=2)
    assert len(r.to_frame()) == 6 and len(r.mean_frame()) == 3 and len(r.token_frame()) == 12
    m = r.mean_frame()
    assert m.loc[1, "tp"] == pytest.approx(np.mean([s.per_copy[1].tp for s in r.sentences]))
    assert set(r.token_frame().columns) >= {"sentence", "n", "l", "token", "token_id", "p", "pmax", "argmax_token"}


def test_from_dict_rejects_other_documents():
    with pytest.raises(ValueError, match="schema_version 99"):
        ProbeResult.from_dict({"schema_version": 99, "kind": "probe"})
    with pytest.raises(ValueError, match="not a repcheck probe"):
        ProbeResult.from_dict({"schema_version": 2, "kind": "compare"})
    with pytest.raises(ValueError, match="malformed"):
        ProbeResult.from_dict({"schema_version": 2, "kind": "probe"})


def test_bootstrap_stderr_matches_the_standard_error_of_the_mean():
    """With many resamples the bootstrap standard error approaches s * sqrt((n-1)/n) / sqrt(n)."""
    from repcheck.stats import bootstrap_stderr

    rng = np.random.default_rng(1)
    x = rng.normal(0.5, 0.2, size=40)
    est = bootstrap_stderr(x, resamples=20_000, seed=0)
    expected = x.std(ddof=0) / math.sqrt(len(x))
    assert est.value == pytest.approx(x.mean()) and est.n == 40
    assert est.stderr == pytest.approx(expected, rel=0.03)
    assert bootstrap_stderr([0.3, None, float("nan")], 100, 0).n == 1


def test_spearman_against_scipy():
    from scipy.stats import spearmanr

    from repcheck.stats import spearman

    a = [0.1, 0.4, 0.4, 0.9, 0.3, 0.7]
    b = [0.2, 0.1, 0.5, 0.8, 0.3, 0.6]
    assert spearman(a, b) == pytest.approx(spearmanr(a, b).statistic)
    assert math.isnan(spearman([1, 2], [3, 4])) and math.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_a_part_counted_in_tokens_reports_in_the_whole_jobs_units():
    # compare: 3 settings of 2 continuations; a long generation's backend counts tokens
    from repcheck.progress import offset

    seen = []
    part = offset(lambda desc, done, total: seen.append((done, total)), 2, 2, 6)
    for tokens in (0, 512, 1024, 2048):  # of 2 x 1024 tokens
        part("generating", tokens, 2048)
    assert seen == [(2, 6), (2, 6), (3, 6), (4, 6)]
    part("generating", 9999, 2048)  # never past its own share
    assert seen[-1] == (4, 6)
    assert offset(None, 0, 1, 1) is None
