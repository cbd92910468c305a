"""Generation through a server equals generation in-process: every sampling key sent (so a
checkpoint's sampling defaults cannot turn greedy into sampling), the stop token a server
returns removed, chat through /v1/chat/completions, and llama-cpp-python's server (text
prompts, echo logprobs named by text) read exactly."""

import json
import shutil

import numpy as np
import pytest
from server_stubs import llama_cpp_like_server, vllm_like_server

from repcheck import load_model, probe
from repcheck.decoding import parse_setting
from repcheck.errors import RepcheckError
from repcheck.generation import generate

PROMPTS = ["Once upon a time", "The capital of France is", "Water boils at"]
#: sampling defaults real instruct checkpoints ship (Qwen2.5-Instruct has a repetition penalty)
DEFAULTS = {"do_sample": True, "repetition_penalty": 1.3, "top_k": 20, "top_p": 0.8, "temperature": 0.7}


@pytest.fixture(scope="module")
def tiny_with_defaults(tiny_llama, tmp_path_factory):
    """The tiny Llama with a generation_config that samples with a repetition penalty, and
    a second stop token that greedy decoding reaches early (so continuations end on a stop)."""
    path = tmp_path_factory.mktemp("tiny-defaults")
    for f in tiny_llama.iterdir():
        shutil.copy(f, path / f.name)
    plain = load_model(str(tiny_llama), device="cpu")
    third = generate(plain, PROMPTS[:1], parse_setting("greedy"), max_new_tokens=4).generations[0].token_ids[2]
    eos = plain.tokenizer.eos_token_id
    (path / "generation_config.json").write_text(json.dumps({**DEFAULTS, "eos_token_id": [eos, third],
                                                             "bos_token_id": plain.tokenizer.bos_token_id}))  # fmt: skip
    return path, third


def _served(server, tokenizer, **kwargs):
    return load_model("tiny", backend="openai", base_url=server.base_url, tokenizer=str(tokenizer), **kwargs)


def test_greedy_is_greedy_despite_the_checkpoints_sampling_defaults(tiny_with_defaults):
    path, stop = tiny_with_defaults
    local = load_model(str(path), device="cpu")
    expected = generate(local, PROMPTS, parse_setting("greedy"), max_new_tokens=12)
    with vllm_like_server(local, defaults={k: v for k, v in DEFAULTS.items() if k != "do_sample"}) as server:
        served = _served(server, path)
        got = generate(served, PROMPTS, parse_setting("greedy"), max_new_tokens=12)
        sent = [b for m, p, b, _ in server.requests if p.endswith("/completions") and b.get("max_tokens") == 12]
    for a, b in zip(got.generations, expected.generations, strict=True):
        assert a.token_ids == b.token_ids and a.finished == b.finished, (a.text, b.text)
    assert any(g.finished for g in got.generations)  # a stop was reached...
    assert all(stop not in g.token_ids for g in got.generations if g.finished)  # ...and left out, as hf leaves it
    # every key went out, neutral where greedy does not set it; the report says so
    assert sent and all(b["repetition_penalty"] == 1.0 and b["temperature"] == 0.0 and b["top_k"] == -1 for b in sent)
    assert got.sent == {"temperature": 0.0, "top_k": -1, "top_p": 1.0, "min_p": 0.0, "repetition_penalty": 1.0,
                        "presence_penalty": 0.0, "frequency_penalty": 0.0}  # fmt: skip


def test_the_stub_applies_defaults_to_what_a_request_leaves_out(tiny_with_defaults):
    """The check above can fail: requests without the keys get the checkpoint's penalty and
    continue differently."""
    import httpx

    path, _ = tiny_with_defaults
    local = load_model(str(path), device="cpu")
    differ = []
    with vllm_like_server(local, defaults={k: v for k, v in DEFAULTS.items() if k != "do_sample"}) as server:
        for prompt in PROMPTS:
            ids = local.tokenizer(prompt)["input_ids"]
            body = {"model": "tiny", "prompt": ids, "max_tokens": 12, "temperature": 0.0,
                    "return_tokens_as_token_ids": True}  # fmt: skip
            bare = httpx.post(server.base_url + "/completions", json=body).json()
            neutral = httpx.post(server.base_url + "/completions", json={**body, "repetition_penalty": 1.0}).json()
            differ.append(bare["choices"][0]["logprobs"]["tokens"] != neutral["choices"][0]["logprobs"]["tokens"])
    assert any(differ)


def test_sampling_is_seeded_and_reported(tiny_llama_model, tiny_llama):
    setting = parse_setting("temperature=0.9,top_p=0.95")
    with vllm_like_server(tiny_llama_model) as server:
        served = _served(server, tiny_llama)
        a = generate(served, PROMPTS[:1], setting, max_new_tokens=8, samples=3, seed=4)
        b = generate(served, PROMPTS[:1], setting, max_new_tokens=8, samples=3, seed=4)
    assert [g.token_ids for g in a.generations] == [g.token_ids for g in b.generations]
    assert len({tuple(g.token_ids) for g in a.generations}) > 1
    assert a.sent["top_p"] == 0.95 and a.sent["temperature"] == 0.9


def test_chat_through_the_chat_endpoint_equals_hf(chat_llama):
    from repcheck.legit import run_legit
    from repcheck.legit.suite import suite_from_dicts

    cases = [
        {"id": "c1", "category": "copy", "messages": [{"role": "user", "content": "Copy: a b c"}],
         "check": {"type": "contains", "value": "a"}, "max_new_tokens": 10},
        {"id": "c2", "category": "copy", "messages": [{"role": "system", "content": "Be brief."},
         {"role": "user", "content": "Say hi"}], "check": {"type": "contains", "value": "hi"}, "max_new_tokens": 10},
    ]  # fmt: skip
    suite = suite_from_dicts("chat-cases", cases)
    local = load_model(str(chat_llama), device="cpu")
    expected = run_legit(local, suite, parse_setting("greedy"))
    with vllm_like_server(local) as server:
        served = _served(server, chat_llama, api="chat")
        got = run_legit(served, suite, parse_setting("greedy"))
        paths = [p for _, p, _, _ in server.requests]
    assert [c.token_ids for c in got.cases] == [c.token_ids for c in expected.cases]
    assert sum(p.endswith("/chat/completions") for p in paths) == 2


def test_the_chat_endpoint_refuses_plain_text(tiny_llama_model, tiny_llama):
    with vllm_like_server(tiny_llama_model) as server:
        served = _served(server, tiny_llama, api="chat")
        with pytest.raises(RepcheckError, match="takes conversations"):
            generate(served, PROMPTS[:1], parse_setting("greedy"), max_new_tokens=4)


def test_llama_cpp_server_probe_and_generation_equal_hf(tiny_llama_model, tiny_llama):
    sentences = ["Paris is the capital of France.", "Water boils."]
    expected = probe(tiny_llama_model, sentences, repeats=3)
    greedy = generate(tiny_llama_model, PROMPTS, parse_setting("greedy"), max_new_tokens=10)
    with llama_cpp_like_server(tiny_llama_model) as server:
        served = _served(server, tiny_llama)
        assert served.info()["server"] == "llama.cpp"
        got = probe(served, sentences, repeats=3)
        gen = generate(served, PROMPTS, parse_setting("greedy"), max_new_tokens=10)
        bodies = [b for m, p, b, _ in server.requests if p.endswith("/v1/completions")]
    for x, y in zip(got.sentences, expected.sentences, strict=True):
        np.testing.assert_allclose(x.p, y.p, rtol=1e-5)
        np.testing.assert_allclose(x.pmax, y.pmax, rtol=1e-5)
        known = x.argmax_ids >= 0  # -1: a text several tokens share (byte pieces)
        assert known.any() and (x.argmax_ids[known] == y.argmax_ids[known]).all()
        assert all(t == "<?>" for t, k in zip(np.ravel(x.argmax_tokens), known.ravel()) if not k)
    # it returns text, tokenized here again: the same text (ids too where the text is whole characters)
    assert [g.text for g in gen.generations] == [g.text for g in greedy.generations]
    assert all(isinstance(b["prompt"], str) for b in bodies)  # it takes no token ids
    generation = [b for b in bodies if b["max_tokens"] == 10]
    assert generation and all(b["repeat_penalty"] == 1.0 and b["top_k"] == 0 and "n" not in b for b in generation)


def test_llama_cpp_server_with_another_tokenizer_is_refused(tiny_llama_model, tiny_gpt2):
    with llama_cpp_like_server(tiny_llama_model) as server:
        with pytest.raises(RepcheckError, match="tokenizer differs from the server's"):
            _served(server, tiny_gpt2)


def test_llama_cpp_server_without_bos_is_refused_for_the_probe(tiny_gpt2_model, tiny_gpt2):
    """llama-cpp-python reads echo logprobs one row late when the prompt has no BOS: refused,
    never reported shifted."""
    with llama_cpp_like_server(tiny_gpt2_model) as server:
        served = _served(server, tiny_gpt2)
        with pytest.raises(RepcheckError, match="one position late"):
            probe(served, ["Water boils."], repeats=2)
