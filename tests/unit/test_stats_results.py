import json
import math

import numpy as np
import pytest

from repcheck.results import ProbeResult, SentenceResult
from repcheck.stats import mean_ci95, t_critical_95


def test_t_critical_values():
    assert t_critical_95(1) == pytest.approx(12.706)
    assert t_critical_95(30) == pytest.approx(2.042)
    assert t_critical_95(60) == pytest.approx(2.000, abs=2e-3)
    assert t_critical_95(1000) == pytest.approx(1.962, abs=2e-3)


def test_mean_ci95():
    mean, lo, hi = mean_ci95([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert hi - mean == pytest.approx(4.303 * 1.0 / math.sqrt(3))
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
    assert doc["schema_version"] == 1 and doc["kind"] == "probe"
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
    with pytest.raises(ValueError):
        ProbeResult.from_dict({"schema_version": 99, "kind": "probe"})
