"""SGLang's and TGI's native APIs, against servers that answer in their documented formats
from the tiny model: the probe and greedy generation equal the transformers backend's, the
keys a server gives another meaning are refused, a tokenizer that differs is refused, and a
malformed answer is one line naming the server and the field."""

import numpy as np
import pytest
from cli_helpers import assert_usage_error, run
from server_stubs import ScriptedServer, sglang_like_server, tgi_like_server

from repcheck import load_model, probe
from repcheck.decoding import parse_setting
from repcheck.generation import generate

SENTENCES = ["Paris is the capital of France.", "Water boils."]
PROMPTS = ["Once upon a time", "The capital of France is", "Water boils at"]
SERVERS = {"sglang": sglang_like_server, "tgi": tgi_like_server}


@pytest.fixture(scope="module")
def expected(tiny_llama_model):
    return (
        probe(tiny_llama_model, SENTENCES, repeats=3),
        generate(tiny_llama_model, PROMPTS, parse_setting("greedy"), max_new_tokens=12),
    )


@pytest.mark.parametrize("kind", SERVERS)
def test_probe_and_greedy_generation_equal_hf(kind, tiny_llama_model, tiny_llama, expected):
    probed, greedy = expected
    with SERVERS[kind](tiny_llama_model) as server:
        served = load_model("tiny", backend=kind, base_url=server.base_url, tokenizer=str(tiny_llama))
        got = probe(served, SENTENCES, repeats=3)
        gen = generate(served, PROMPTS, parse_setting("greedy"), max_new_tokens=12)
    assert served.info()["server"] == kind and served.versions()["server_version"]
    for x, y in zip(got.sentences, probed.sentences, strict=True):
        np.testing.assert_allclose(x.p, y.p, rtol=1e-5)
        np.testing.assert_allclose(x.pmax, y.pmax, rtol=1e-5)
        assert (x.argmax_ids == y.argmax_ids).all()
    for a, b in zip(gen.generations, greedy.generations, strict=True):
        assert a.token_ids == b.token_ids and a.finished == b.finished
    assert any(g.finished for g in gen.generations)  # the stop token came back and was removed


def test_sglang_sends_every_key_against_the_checkpoints_defaults(tiny_llama_model, tiny_llama, expected):
    _, greedy = expected
    with sglang_like_server(tiny_llama_model, defaults={"repetition_penalty": 1.3, "temperature": 0.7}) as server:
        served = load_model("tiny", backend="sglang", base_url=server.base_url, tokenizer=str(tiny_llama))
        gen = generate(served, PROMPTS, parse_setting("greedy"), max_new_tokens=12)
        bodies = [b for _, p, b, _ in server.requests if p == "/generate" and "input_ids" in (b or {})]
    assert [g.token_ids for g in gen.generations] == [g.token_ids for g in greedy.generations]
    assert all(b["sampling_params"]["repetition_penalty"] == 1.0 for b in bodies)
    assert gen.sent["temperature"] == 0.0 and gen.sent["repetition_penalty"] == 1.0


@pytest.mark.parametrize("kind", SERVERS)
def test_sampling_is_seeded(kind, tiny_llama_model, tiny_llama):
    setting = parse_setting("temperature=0.9,top_k=50")
    with SERVERS[kind](tiny_llama_model) as server:
        served = load_model("tiny", backend=kind, base_url=server.base_url, tokenizer=str(tiny_llama))
        a = generate(served, PROMPTS[:1], setting, max_new_tokens=8, samples=3, seed=1)
        b = generate(served, PROMPTS[:1], setting, max_new_tokens=8, samples=3, seed=1)
    assert [g.token_ids for g in a.generations] == [g.token_ids for g in b.generations]
    assert len({tuple(g.token_ids) for g in a.generations}) > 1


@pytest.mark.parametrize(
    ("kind", "setting", "needle"),
    [
        ("sglang", "repetition_penalty=1.3", "cannot apply repetition_penalty"),
        ("tgi", "frequency_penalty=0.5", "cannot apply frequency_penalty"),
        ("tgi", "min_p=0.1", "cannot apply min_p"),
    ],
)
def test_keys_the_server_means_otherwise_are_refused_before_connecting(kind, setting, needle, tiny_llama):
    res = run("compare", "Once upon a time", "-s", setting, "--backend", kind, "--base-url", "http://127.0.0.1:9/v1",
              "--tokenizer", tiny_llama, "--model", "tiny")  # fmt: skip
    assert_usage_error(res, needle, "backends that can")


@pytest.mark.parametrize("kind", SERVERS)
def test_another_tokenizer_is_refused(kind, tiny_llama_model, tiny_gpt2, tmp_path):
    with SERVERS[kind](tiny_llama_model) as server:
        res = run("probe", "Water boils.", "--backend", kind, "--base-url", server.base_url, "--tokenizer", tiny_gpt2,
                  "--model", "tiny", "--out", tmp_path / "o")  # fmt: skip
    assert_usage_error(res, "tokenizer differs from the server's")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("kind", SERVERS)
def test_a_model_the_server_does_not_serve(kind, tiny_llama_model, tiny_llama):
    with SERVERS[kind](tiny_llama_model) as server:
        res = run("probe", "x", "--backend", kind, "--base-url", server.base_url, "--tokenizer", tiny_llama,
                  "--model", "other")  # fmt: skip
    assert_usage_error(res, "does not serve 'other'", "tiny")


@pytest.mark.parametrize(
    ("kind", "answers", "needle"),
    [
        ("sglang", {"/get_model_info": {"model_path": 3}}, "malformed field model_path"),
        ("sglang", {"/generate": {"meta_info": {"input_token_logprobs": [[None, "x"]]}}}, "input_token_logprobs.0.1"),
        ("tgi", {"/info": {"model_id": None}}, "malformed field model_id"),
        ("tgi", {"/tokenize": {"tokens": []}}, "returned dict, not a JSON array"),
    ],
)
def test_malformed_answers_name_the_field(kind, answers, needle, tiny_llama_model, tiny_llama):
    inner = SERVERS[kind](tiny_llama_model)
    script = inner.script
    inner.httpd.server_close()

    def answer(method, path, body):
        return (200, answers[path]) if path in answers else script(method, path, body)

    with ScriptedServer(answer) as server:
        res = run("probe", "Water boils.", "--backend", kind, "--base-url", server.base_url, "--tokenizer",
                  tiny_llama, "--model", "tiny")  # fmt: skip
    assert_usage_error(res, needle, "127.0.0.1")


def test_tgi_refuses_neutral_values_so_they_are_not_sent(tiny_llama_model, tiny_llama):
    with tgi_like_server(tiny_llama_model) as server:
        served = load_model("tiny", backend="tgi", base_url=server.base_url, tokenizer=str(tiny_llama))
        generate(served, PROMPTS[:1], parse_setting("temperature=0.8"), max_new_tokens=4, samples=2)
        params = [b["parameters"] for _, p, b, _ in server.requests if p == "/generate"]
    assert params and all("top_p" not in q and "top_k" not in q and q["repetition_penalty"] == 1.0 for q in params)
