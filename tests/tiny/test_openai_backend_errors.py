"""The openai backend's contract with a server that misbehaves: one line, exit 2, retries
where a retry can help, the legacy echo format read exactly, and the key kept out of reports."""

import json

import numpy as np
import pytest
from cli_helpers import assert_usage_error, run
from server_stubs import ScriptedServer, vllm_like_script, vllm_like_server

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
        (500, {"error": "boom"}, "server error 500 boom after 2 attempts"),
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
        with pytest.raises(RepcheckError, match=r"no answer within 0.2 s"):
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


# ---- failing fast ------------------------------------------------------------------------------
PROMPTS = [f"Prompt number {i} is" for i in range(20)]


def _dying(hf, *, after, answer):
    """A vLLM-like server whose generation requests start failing (``answer``: a status and
    body, or a number of seconds to hang) after ``after`` of them."""
    import time

    inner_answer = vllm_like_script(hf)
    state = {"generation": 0, "after_death": 0}

    def answer_for(method, path, body):
        if body and body.get("max_tokens", 0) > 1:
            state["generation"] += 1
            if state["generation"] > after:
                state["after_death"] += 1
                if isinstance(answer, (int, float)):
                    time.sleep(answer)
                    return 200, {}
                return answer
        return inner_answer(method, path, body)

    return ScriptedServer(answer_for), state


def test_a_server_that_dies_mid_run_fails_fast(tiny_llama_model, tiny_llama):
    """Every queued request used to run its retries (143 s); now the first permanent failure
    stops the rest: at most the requests in flight retry."""
    import time

    from repcheck.decoding import parse_setting
    from repcheck.generation import generate

    server, state = _dying(tiny_llama_model, after=3, answer=(503, {"error": {"message": "down"}}))
    with server:
        served = load_model("tiny", backend="openai", base_url=server.base_url, tokenizer=str(tiny_llama),
                            concurrency=4, retries=3)  # fmt: skip
        began = time.perf_counter()
        with pytest.raises(RepcheckError, match="server error 503 down after 4 attempts"):
            generate(served, PROMPTS, parse_setting("greedy"), max_new_tokens=4)
        elapsed = time.perf_counter() - began
    print(f"503 mid-run: failed after {elapsed:.1f} s, {state['after_death']} requests after the failure began")
    assert state["after_death"] <= 4 * 4  # the four in flight, four attempts each; not 17 x 4
    assert elapsed < 15


def test_a_hung_server_fails_at_the_timeout_without_retrying_it(tiny_llama_model, tiny_llama):
    import time

    from repcheck.decoding import parse_setting
    from repcheck.generation import generate

    server, state = _dying(tiny_llama_model, after=0, answer=30.0)
    with server:
        served = load_model("tiny", backend="openai", base_url=server.base_url, tokenizer=str(tiny_llama),
                            concurrency=4, retries=3, timeout=0.5)  # fmt: skip
        began = time.perf_counter()
        with pytest.raises(RepcheckError, match="no answer within 0.5 s"):
            generate(served, PROMPTS, parse_setting("greedy"), max_new_tokens=4)
        elapsed = time.perf_counter() - began
    print(f"hung server: failed after {elapsed:.1f} s, {state['after_death']} requests sent to it")
    assert elapsed < 5 and state["after_death"] <= 4  # one timeout each for those in flight, no retry


def test_ctrl_c_ends_a_run_against_a_hung_server_at_once(tiny_llama_model, tiny_llama, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    server, state = _dying(tiny_llama_model, after=0, answer=60.0)
    with server:
        env = {**os.environ, "REPCHECK_CACHE": str(tmp_path / "cache")}
        cmd = [sys.executable, "-m", "repcheck", "compare", "--prompts", str(_prompts_file(tmp_path)), "-n", "8",
               "--backend", "openai", "--base-url", server.base_url, "--tokenizer", str(tiny_llama), "--model", "tiny",
               "--out", str(tmp_path / "out")]  # fmt: skip
        # Ctrl-C as a terminal delivers it: a suite started in the background (``pytest &``) ignores
        # SIGINT, and a child inherits that, so the child's disposition is reset to the default
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
        deadline = time.monotonic() + 60
        while state["after_death"] == 0 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert state["after_death"] > 0, proc.communicate(timeout=5)
        began = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        stopped = time.monotonic() - began
    print(f"Ctrl-C against a hung server: exit {proc.returncode} after {stopped:.2f} s")
    assert proc.returncode == 130, err
    assert stopped < 10  # measured here: well under a second; the hung requests are not waited for
    assert not (tmp_path / "out").exists()


def _prompts_file(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("\n".join(PROMPTS) + "\n", encoding="utf-8")
    return path


# ---- malformed answers: exit 2 naming the server and the field --------------------------------
@pytest.mark.parametrize(
    ("models", "needle"),
    [
        ({"data": 5}, "malformed field data: it is 5, not a list"),
        ({"data": [None, {"id": "tiny"}]}, "malformed field data.0: it is None, not an object"),
        ({"data": [{"id": 7}]}, "malformed field data.0.id: it is 7, not a string"),
        ({"object": "list"}, "malformed field data: it is missing"),
    ],
)
def test_malformed_model_lists(models, needle, tmp_path):
    with ScriptedServer(lambda m, p, b: (200, models)) as server:
        res = run("probe", "Water boils.", "--backend", "openai", "--base-url", server.base_url, "--model", "tiny",
                  "--out", tmp_path / "o")  # fmt: skip
    line = assert_usage_error(res, needle)
    assert server.base_url.removesuffix("/v1") in line
    assert not (tmp_path / "o").exists()


def _bad_logprobs(hf, mutate):
    """A vLLM-like server whose prompt_logprobs are changed by ``mutate(entries)``."""
    inner_answer = vllm_like_script(hf)

    def answer(method, path, body):
        status, doc = inner_answer(method, path, body)
        if body and body.get("prompt_logprobs"):
            mutate(doc["choices"][0]["prompt_logprobs"])
        return status, doc

    return ScriptedServer(answer)


def _set(i, value):
    def mutate(entries):
        entries[i] = value

    return mutate


def _first_logprob(value):
    def mutate(entries):
        entry = entries[2]
        for v in entry.values():
            v["logprob"] = value

    return mutate


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (_set(2, None), "prompt_logprobs"),
        (_set(2, [1, 2]), "prompt_logprobs"),
        (_set(2, "x"), "prompt_logprobs"),
        (_first_logprob("NaN"), "not a log-probability"),
        (_first_logprob(5.0), "not probabilities"),
    ],
)
def test_malformed_and_impossible_prompt_logprobs(tiny_llama_model, tiny_llama, mutate, needle, tmp_path):
    with _bad_logprobs(tiny_llama_model, mutate) as server:
        res = run("probe", "Water boils.", "-k", "2", "--backend", "openai", "--base-url", server.base_url,
                  "--tokenizer", tiny_llama, "--model", "tiny", "--out", tmp_path / "o")  # fmt: skip
    assert_usage_error(res, needle)
    assert not (tmp_path / "o").exists()


# ---- the server URL --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("http://[::1/v1", "not a valid URL"),
        ("http://127.0.0.1:99999/v1", "not a valid URL"),
        ("http:///v1", "names no host"),
        ("http://h/v1#frag", "#fragment"),
    ],
)
def test_invalid_base_urls_are_usage_errors(url, needle):
    assert_usage_error(run("probe", "x", "--backend", "openai", "--base-url", url, "--model", "m"), needle)


def test_a_query_string_is_kept_after_the_path(tiny_llama_model, tiny_llama):
    with vllm_like_server(tiny_llama_model) as server:
        load_model("tiny", backend="openai", base_url=server.base_url + "?api-version=2024-06-01",
                   tokenizer=str(tiny_llama))  # fmt: skip
        paths = [p for _, p, _, _ in server.requests]
    assert paths[0] == "/v1/models?api-version=2024-06-01"
    assert all(p.endswith("?api-version=2024-06-01") for p in paths)


def test_credentials_in_the_url(tiny_llama_model, tiny_llama, monkeypatch):
    with vllm_like_server(tiny_llama_model) as server:
        url = server.base_url.replace("http://", "http://alice:s3cret-pw@")
        monkeypatch.delenv("REPCHECK_API_KEY", raising=False)
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        served = load_model("tiny", backend="openai", base_url=url, tokenizer=str(tiny_llama))
        assert server.requests[0][3]["Authorization"].startswith("Basic ")
        assert "s3cret" not in json.dumps(served.info()) and "alice" not in json.dumps(served.info())
        # with an API key too, it is ambiguous: refused, and the password is never shown
        res = run("probe", "x", "--backend", "openai", "--base-url", url, "--model", "tiny",
                  env={"REPCHECK_API_KEY": "sk-1"})  # fmt: skip
        assert_usage_error(res, "credentials", "API key")
        assert "s3cret" not in res.output
    res = run("probe", "x", "--backend", "openai", "--base-url", "http://bob:hunter2@127.0.0.1:9/v1", "--model", "m")
    assert_usage_error(res, "cannot connect")
    assert "hunter2" not in res.output and "bob" not in res.output


def test_base_url_goes_with_the_served_backends(tiny_llama):
    res = run("probe", "x", "--base-url", "http://h/v1", "--model", tiny_llama)
    assert_usage_error(res, "--base-url goes with")
