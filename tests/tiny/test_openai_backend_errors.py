"""The openai backend's contract with a server that misbehaves: one line, exit 2, retries
where a retry can help, the legacy echo format read exactly, and the key kept out of reports."""


import numpy as np
import pytest
from cli_helpers import assert_usage_error, run
from openai_stub import ScriptedServer, vllm_like_server

from repcheck import load_model, probe
from repcheck.errors import RepcheckError


@pytest.mark.parametrize("legacy", [False, True])
def test_scores_read_exactly_in_both_formats(tiny_llama_model, legacy):
    with vllm_like_server(tiny_llama_model, legacy=legacy) as server:
        served = load_model("tiny", backend="openai", base_url=server.base_url, tokenizer=tiny_llama_model.spec)
        a = probe(served, ["Paris is the capital of France.", "Water boils."], repeats=3)
    b = probe(tiny_llama_model, ["Paris is the capital of France.", "Water boils."], repeats=3)
    for x, y in zip(a.sentences, b.sentences, strict=True):
        np.testing.assert_allclose(x.p, y.p, rtol=1e-5)
        np.testing.assert_allclose(x.pmax, y.pmax, rtol=1e-5)
        assert (x.argmax_ids == y.argmax_ids).all()
    assert a.model["backend"] == "openai"


def test_retries_a_warming_server(tiny_llama_model):
    with vllm_like_server(tiny_llama_model, fail_first=2) as server:
        load_model("tiny", backend="openai", base_url=server.base_url, tokenizer=tiny_llama_model.spec)
        assert [r[0] for r in server.requests[:3]] == ["GET", "GET", "GET"]  # two 503s, then the answer


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"models": ["other"]}, "does not serve 'tiny'; it serves: other"),
        ({"tokens": [1, 2, 3]}, "tokenizer differs from the server's"),
        ({"no_logprobs": True}, "returned no prompt logprobs"),
    ],
)
def test_server_problems_are_one_line(tiny_llama, tiny_llama_model, kwargs, needle, tmp_path):
    with vllm_like_server(tiny_llama_model, **kwargs) as server:
        res = run("probe", "Water boils.", "-k", "2", "--backend", "openai", "--base-url", server.base_url,
                  "--tokenizer", tiny_llama, "--model", "tiny", "--out", tmp_path / "o")  # fmt: skip
    assert_usage_error(res, needle)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("status", "payload", "needle"),
    [
        (200, b"<html>not json</html>", "did not return JSON"),
        (401, {"error": {"message": "invalid API key"}}, "refused the request: 401 invalid API key"),
        (500, {"error": "boom"}, "server error 500 after 2 attempts"),
        (200, [1, 2], "returned list, not a JSON object"),
    ],
)
def test_malformed_and_refused_answers(status, payload, needle):
    with ScriptedServer(lambda m, p, b: (status, payload)) as server:
        with pytest.raises(RepcheckError, match=needle):
            load_model("tiny", backend="openai", base_url=server.base_url, retries=1)


def test_a_slow_server_times_out():
    import time

    def slow(m, p, b):
        time.sleep(1.0)
        return 200, {"data": []}

    with ScriptedServer(slow) as server:
        with pytest.raises(RepcheckError, match=r"no answer within 0.2 s after 1 attempts"):
            load_model("tiny", backend="openai", base_url=server.base_url, timeout=0.2, retries=0)


def test_server_down_and_bad_options(tiny_llama, tmp_path):
    res = run("probe", "x", "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1", "--model", "m")
    assert_usage_error(res, "cannot connect", "is the server up?")
    assert_usage_error(run("probe", "x", "--backend", "openai"), "--base-url")
    assert_usage_error(run("probe", "x", "--backend", "openai", "--base-url", "ftp://h/v1"), "http://")
    assert_usage_error(run("probe", "x", "--backend", "nope"), "--backend")
    assert_usage_error(run("probe", "x", "--tokenizer", "t", "--model", tiny_llama), "--tokenizer goes with")
    res = run("probe", "x", "--backend", "openai", "--base-url", "http://h/v1", "--attn-implementation", "eager")
    assert_usage_error(res, "--attn-implementation")
    res = run("probe", "x", "--backend", "openai", "--base-url", "http://h/v1", "--dtype", "bfloat16")
    assert_usage_error(res, "dtype and device are the server's")


def test_settings_and_probe_under_decoding_the_server_cannot_do(tiny_llama, tiny_llama_model):
    with vllm_like_server(tiny_llama_model) as server:
        common = ["--backend", "openai", "--base-url", server.base_url, "--tokenizer", tiny_llama, "--model", "tiny"]
        res = run("compare", "Once upon a time", "-s", "dry_multiplier=0.8", *common)
        assert_usage_error(res, "cannot apply dry_multiplier", "backends that can: hf")
        res = run("compare", "-s", "greedy", "--probe", "Water boils.", *common)
        assert_usage_error(res, "full next-token distributions", "backends that do: hf, llamacpp")


