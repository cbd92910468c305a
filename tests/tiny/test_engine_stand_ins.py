"""The vllm and llamacpp backends' own code, without the engines: each engine is replaced by a
stand-in that computes with a tiny transformers model and keeps the engine's interface and
bookkeeping (vLLM's prompt_logprobs entries; llama.cpp's n_tokens, KV-cache truncation and
logits rows). The backends must then give exactly the hf backend's numbers and text; where the
real engines are installed, tests/integration/test_engine_backends.py runs them."""

import sys
import types

import numpy as np
import pytest
import torch

from repcheck import probe
from repcheck.backends.base import GenerationRequest, ScoreRequest
from repcheck.backends.llamacpp import LlamaCppBackend
from repcheck.backends.vllm_engine import VLLMBackend
from repcheck.decoding import parse_setting
from repcheck.errors import RepcheckError


def generate(backend, prompts, setting, **kwargs):
    return backend.generate(GenerationRequest(prompts, setting, **kwargs))


# ---- vLLM ------------------------------------------------------------------------------------
class Logprob(types.SimpleNamespace):
    """vLLM's Logprob: logprob, rank, decoded_token."""


class FakeSamplingParams(types.SimpleNamespace):
    pass


@pytest.fixture
def fake_vllm(monkeypatch):
    module = types.ModuleType("vllm")
    module.SamplingParams = lambda **kw: FakeSamplingParams(**kw)
    module.TokensPrompt = lambda prompt_token_ids: {"prompt_token_ids": prompt_token_ids}
    module.__version__ = "0.0-fake"
    monkeypatch.setitem(sys.modules, "vllm", module)
    return module


class FakeLLM:
    """``vllm.LLM.generate`` answering from a transformers model: prompt logprobs as vLLM
    returns them (the actual token and the rank-1 token per position, None first), and scripted
    completions for generation (recording the SamplingParams it was given)."""

    def __init__(self, hf, completions=None):
        self.hf, self.completions, self.calls = hf, completions, []

    def generate(self, prompts, params, use_tqdm=False):
        self.calls.append((prompts, params))
        out = []
        for i, prompt in enumerate(prompts):
            ids = prompt["prompt_token_ids"]
            p = params[i] if isinstance(params, list) else params
            entries = None
            if getattr(p, "prompt_logprobs", None):
                with torch.no_grad():
                    logp = self.hf.model(torch.tensor([ids])).logits[0].double().log_softmax(-1)
                entries = [None]
                for t in range(1, len(ids)):
                    row, actual = logp[t - 1], ids[t]
                    best = int(row.argmax())
                    rank = int((row > row[actual]).sum()) + 1
                    entry = {actual: Logprob(logprob=float(row[actual]), rank=rank)}
                    entry[best] = Logprob(logprob=float(row[best]), rank=1)
                    entries.append(entry)
            outputs = self.completions(i, p) if self.completions else []
            out.append(types.SimpleNamespace(prompt_logprobs=entries, outputs=outputs))
        return out


def vllm_backend(hf, completions=None, stop_ids=(2,)):
    return VLLMBackend(
        llm=FakeLLM(hf, completions),
        tokenizer=hf.tokenizer,
        spec="tiny",
        name="tiny",
        source="local",
        dtype="float32",
        device="cpu",
        window=hf.window,
        stop_ids=list(stop_ids),
        engine_version="0.0-fake",
    )


def test_vllm_probe_equals_the_hf_backend(fake_vllm, tiny_llama_model):
    hf = tiny_llama_model
    ours = probe(vllm_backend(hf), ["the cat sat on the mat", "a b c d"], repeats=4)
    theirs = probe(hf, ["the cat sat on the mat", "a b c d"], repeats=4)
    for a, b in zip(ours.sentences, theirs.sentences, strict=True):
        assert a.token_ids == b.token_ids
        np.testing.assert_allclose(a.p, b.p, atol=1e-6)
        np.testing.assert_allclose(a.pmax, b.pmax, atol=1e-6)
        assert (a.argmax_ids == b.argmax_ids).all()


def test_vllm_generation_requests_and_answers(fake_vllm, tiny_llama_model):
    def completions(i, params):  # out of order, the second one stopped by the stop id
        return [
            types.SimpleNamespace(index=1, token_ids=[7, 8, 2], finish_reason="stop"),
            types.SimpleNamespace(index=0, token_ids=[5, 6], finish_reason="length"),
        ]

    backend = vllm_backend(tiny_llama_model, completions)
    gens = generate(backend, [[1, 4], [1, 9]], parse_setting("temperature=0.8,top_k=5"), max_new_tokens=3, samples=2)
    assert [(g.prompt_index, g.sample, g.token_ids, g.finished) for g in gens] == [
        (0, 0, [5, 6], False),
        (0, 1, [7, 8], True),
        (1, 0, [5, 6], False),
        (1, 1, [7, 8], True),
    ]
    params = backend.llm.calls[-1][1]
    assert [p.seed for p in params] == [0, 1] and all(p.n == 2 and p.stop_token_ids == [2] for p in params)
    assert params[0].temperature == 0.8 and params[0].top_k == 5 and params[0].max_tokens == 3
    with pytest.raises(RepcheckError, match="vllm backend cannot apply num_beams"):
        generate(backend, [[1, 4]], parse_setting("num_beams=4"), max_new_tokens=3)


def test_vllm_refuses_what_it_cannot_express(fake_vllm, tiny_llama_model):
    from repcheck.backends.registry import check_supported

    backend = vllm_backend(tiny_llama_model)
    with pytest.raises(
        RepcheckError, match="vllm backend cannot apply dry_multiplier.*backends that can: hf, llamacpp"
    ):
        check_supported(backend, parse_setting("dry_multiplier=0.8"))
    with pytest.raises(RepcheckError, match="not full next-token distributions"):
        next(backend.logits([[1, 2, 3]]))
    assert backend.versions() == {"vllm": "0.0-fake"} and backend.info()["backend"] == "vllm"


# ---- llama.cpp -------------------------------------------------------------------------------
class FakeLlama:
    """``llama_cpp.Llama(logits_all=True)`` as the backend uses it: ``eval`` appends tokens after
    the first ``n_tokens`` (dropping any cached beyond), fills ``scores`` rows for them, and
    advances ``n_tokens``. The logits come from a transformers model run on exactly the tokens the
    cache would hold, so wrong bookkeeping gives wrong numbers."""

    def __init__(self, hf, n_ctx=256):
        self.hf, self.n_tokens = hf, 0
        self.input_ids = np.zeros(n_ctx, dtype=np.int64)
        self.scores = np.zeros((n_ctx, hf.vocab_size), dtype=np.float32)
        self.evals = 0
        self.closed = False

    def eval(self, tokens):
        n = self.n_tokens
        self.input_ids[n : n + len(tokens)] = tokens
        with torch.no_grad():
            logits = self.hf.model(torch.tensor([self.input_ids[: n + len(tokens)].tolist()])).logits[0]
        self.scores[n : n + len(tokens)] = logits[n:].float().numpy()
        self.n_tokens = n + len(tokens)
        self.evals += 1

    def close(self):
        self.closed = True


def llamacpp_backend(hf, stop_ids=None):
    from repcheck.backends.hf_generate import eos_ids

    return LlamaCppBackend(
        llm=FakeLlama(hf),
        dtype="gguf",
        device="cpu",
        tokenizer=hf.tokenizer,
        spec="tiny.gguf",
        name="tiny.gguf",
        source="gguf",
        window=hf.window.__class__(256),
        stop_ids=eos_ids(hf) if stop_ids is None else stop_ids,
    )


def test_llamacpp_probe_equals_the_hf_backend(tiny_llama_model):
    hf = tiny_llama_model
    ours = probe(llamacpp_backend(hf), ["the cat sat on the mat", "a b c d"], repeats=4)
    theirs = probe(hf, ["the cat sat on the mat", "a b c d"], repeats=4)
    for a, b in zip(ours.sentences, theirs.sentences, strict=True):
        np.testing.assert_allclose(a.p, b.p, atol=1e-5)
        np.testing.assert_allclose(a.pmax, b.pmax, atol=1e-5)


@pytest.mark.parametrize(
    "setting",
    ["greedy", "repetition_penalty=1.3", "no_repeat_ngram_size=2", "dry_multiplier=0.8", "temperature=0.9,top_k=20"],
)
def test_llamacpp_generation_equals_the_hf_backend(tiny_llama_model, setting):
    """Token by token through the KV cache, with the hf backend's processors and seeds: the same
    continuations as transformers' batched generate, samples of a prompt reusing its prefix."""
    hf = tiny_llama_model
    s = parse_setting(setting)
    prompts = [hf.tokenizer("the cat sat")["input_ids"], hf.tokenizer("a b c d e")["input_ids"]]
    backend = llamacpp_backend(hf)
    ours = generate(backend, prompts, s, max_new_tokens=12, samples=3, seed=7)
    theirs = generate(hf, prompts, s, max_new_tokens=12, samples=3, seed=7)
    assert [(g.prompt_index, g.sample, g.token_ids, g.finished) for g in ours] == [
        (g.prompt_index, g.sample, g.token_ids, g.finished) for g in theirs
    ]
    assert len(ours) == (6 if s.do_sample else 2)


def test_llamacpp_stops_at_a_stop_id_and_refuses_beams_and_overflow(tiny_llama_model):
    hf = tiny_llama_model
    prompt = hf.tokenizer("the cat sat")["input_ids"]
    free = generate(llamacpp_backend(hf, stop_ids=[]), [prompt], parse_setting("greedy"), max_new_tokens=6)[0]
    stopped = generate(
        llamacpp_backend(hf, stop_ids=[free.token_ids[3]]), [prompt], parse_setting("greedy"), max_new_tokens=6
    )[0]
    cut = free.token_ids.index(free.token_ids[3])
    assert stopped.token_ids == free.token_ids[:cut] and stopped.finished and not free.finished
    backend = llamacpp_backend(hf)
    with pytest.raises(RepcheckError, match="llamacpp backend cannot apply num_beams"):
        generate(backend, [prompt], parse_setting("num_beams=2"), max_new_tokens=4)
    with pytest.raises(RepcheckError, match="raise --max-model-len"):
        backend.score(ScoreRequest([list(range(1, 300))], [1]))
    backend.close()


def test_llamacpp_logits_feed_compare_probe(tiny_llama_model):
    hf = tiny_llama_model
    backend = llamacpp_backend(hf)
    ids = hf.tokenizer("the cat sat on the mat")["input_ids"]
    [(index, logits, input_ids)] = next(backend.logits([ids]))
    [(_, expected, _)] = next(hf.logits([ids]))
    assert index == 0 and input_ids.tolist() == ids
    torch.testing.assert_close(logits, expected.float(), atol=1e-5, rtol=0)


# ---- the CLI's backend options -----------------------------------------------------------------


# ---- every backend's rows through the same consumer --------------------------------------------------
@pytest.fixture(params=["hf", "vllm", "llamacpp", "openai"])
def any_backend(request, tiny_llama_model, tiny_llama):
    """The tiny Llama on each backend: in-process, or behind a stand-in engine or scripted server."""
    hf = tiny_llama_model
    if request.param == "hf":
        yield hf
    elif request.param == "vllm":
        request.getfixturevalue("fake_vllm")
        yield vllm_backend(hf)
    elif request.param == "llamacpp":
        yield llamacpp_backend(hf)
    else:
        from server_stubs import vllm_like_server

        from repcheck import load_model

        with vllm_like_server(hf) as server:
            yield load_model("tiny", backend="openai", base_url=server.base_url, tokenizer=str(tiny_llama))


def test_every_backend_gives_typed_rows_to_one_consumer(any_backend, tiny_llama_model):
    """score() returns ``Scored`` records and logits() ``LogitsRow`` records of the declared shapes,
    and the probe, one consumer for all of them, gives the hf backend's numbers."""
    from repcheck.backends.base import LogitsRow, Scored

    ids = [tiny_llama_model.tokenizer("the cat sat on the mat")["input_ids"], [1, 5, 9, 5, 9]]
    scored = any_backend.score(ScoreRequest(ids, [1, 2]))
    with pytest.raises(RepcheckError, match=r"start >= 1"):  # the library's error on every backend
        any_backend.score(ScoreRequest(ids, [0, 2]))
    for s, seq, start in zip(scored, ids, [1, 2], strict=True):
        assert isinstance(s, Scored)
        for name, dtype in (("p", np.float64), ("pmax", np.float64), ("argmax", np.int64), ("logp", np.float64)):
            value = getattr(s, name)
            assert isinstance(value, np.ndarray) and value.dtype == dtype and value.shape == (len(seq) - start,), name
    if any_backend.capabilities.full_distributions:
        rows = [row for batch in any_backend.logits(ids) for row in batch]
        assert sorted(row.index for row in rows) == [0, 1]
        for row in rows:
            assert isinstance(row, LogitsRow)
            assert row.logits.shape == (len(ids[row.index]), tiny_llama_model.vocab_size)
            assert row.input_ids.tolist() == ids[row.index]
    ours = probe(any_backend, ["the cat sat on the mat", "a b c d"], repeats=3)
    theirs = probe(tiny_llama_model, ["the cat sat on the mat", "a b c d"], repeats=3)
    for a, b in zip(ours.sentences, theirs.sentences, strict=True):
        np.testing.assert_allclose(a.p, b.p, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(a.pmax, b.pmax, rtol=1e-4, atol=1e-6)
