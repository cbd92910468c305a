"""The backend layer without a model: the registry every list of backends is built from, the
records that cross the protocol, what vLLM's API returns read into them, the options that go
with each backend, and the import graph the structure promises (no circles, nothing reaching up)."""

import ast
import math
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_usage_error, run

from repcheck.backends.base import PROBE_TEXTS, Scored, check_scored
from repcheck.backends.openai import parse_prompt_scores, public_url
from repcheck.backends.registry import BACKENDS, check_options, markdown_table, setting_keys
from repcheck.backends.served import parse_prompt_logprobs, sampling_params
from repcheck.decoding import KEYS, parse_setting
from repcheck.errors import RepcheckError

ROOT = Path(__file__).resolve().parents[2]


class Logprob(types.SimpleNamespace):
    """vLLM's Logprob: logprob, rank, decoded_token."""


# ---- the registry ---------------------------------------------------------------------------------
def test_every_list_of_backends_comes_from_the_registry():
    from repcheck.cli.backend_options import BackendName

    assert [b.value for b in BackendName] == list(BACKENDS)
    assert setting_keys("hf") == frozenset(KEYS) and "num_beams" not in setting_keys("llamacpp")
    assert setting_keys("vllm") == setting_keys("openai")  # one module (served) for both
    # every backend module defines the loader the registry names, and a class of that kind
    import importlib

    for e in BACKENDS.values():
        module = importlib.import_module(e.module)
        assert callable(getattr(module, e.loader)), e.name
        assert e.name in {getattr(v, "kind", None) for v in vars(module).values() if isinstance(v, type)}


def test_the_docs_table_is_the_registry():
    text = (ROOT / "docs" / "backends.md").read_text(encoding="utf-8")
    assert markdown_table() in text, "regenerate the table in docs/backends.md from registry.markdown_table()"


def test_options_of_another_backend_are_refused_with_their_backend():
    check_options("openai", {"base_url": "http://h/v1", "timeout": 5})
    check_options("hf", {"base_url": None})  # unset options are not given
    with pytest.raises(RepcheckError, match="base_url goes with backend openai, sglang or tgi, not hf") as err:
        check_options("hf", {"base_url": "http://h/v1"})
    assert err.value.param == "base_url"
    with pytest.raises(RepcheckError, match="max_model_len goes with backend vllm or llamacpp, not hf"):
        check_options("hf", {"max_model_len": 10})
    with pytest.raises(RepcheckError, match="unknown backend 'nope'"):
        check_options("nope", {})


@pytest.mark.parametrize(
    "args, needle",
    [
        (
            ["--backend", "vllm", "--attn-implementation", "eager"],
            "--attn-implementation goes with backend hf, not vllm",
        ),
        (["--tensor-parallel-size", "2"], "--tensor-parallel-size goes with backend vllm, not hf"),
        (["--backend", "llamacpp", "--gpu-memory-utilization", "0.5"], "goes with backend vllm, not llamacpp"),
        (["--max-model-len", "512"], "--max-model-len goes with backend vllm or llamacpp"),
        (["--backend", "hf", "--tokenizer", "x"], "--tokenizer goes with backend openai, sglang, tgi or llamacpp"),
        (["--base-url", "http://127.0.0.1:9/v1"], "--base-url goes with backend openai, sglang or tgi, not hf"),
        (["--concurrency", "2"], "--concurrency goes with backend openai"),
    ],
)
def test_backend_options_go_with_their_backend(args, needle):
    assert_usage_error(run("probe", "The cat sat.", *args), needle)


def test_a_base_url_from_the_environment_is_for_other_runs(monkeypatch):
    """$REPCHECK_BASE_URL may be set for openai runs: an hf run ignores it (the flag itself is refused)."""
    from repcheck.cli.backend_options import BackendName, ModelLoader
    from repcheck.cli.options import Device

    values = {name: None for name in ("tokenizer", "concurrency", "timeout", "retries", "api", "attn_implementation",
                                      "tensor_parallel_size", "gpu_memory_utilization", "max_model_len", "threads")}  # fmt: skip
    values["device"] = Device.auto

    loader = ModelLoader.from_cli({**values, "backend": BackendName.hf, "base_url": "http://h/v1", "device_map": False},
                                  from_environment={"base_url"})  # fmt: skip
    assert loader.options == {}
    with pytest.raises(RepcheckError, match="base_url goes with backend openai"):
        ModelLoader.from_cli({**values, "backend": BackendName.hf, "base_url": "http://h/v1", "device_map": False},
                             from_environment=set())  # fmt: skip


def test_missing_engines_name_their_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import fails as if not installed
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    assert_usage_error(run("probe", "The cat sat.", "--backend", "vllm"), "pip install 'repcheck[vllm]'")
    assert_usage_error(run("probe", "The cat sat.", "--backend", "llamacpp"), "pip install 'repcheck[llamacpp]'")


# ---- records ----------------------------------------------------------------------------------------
def test_numbers_that_are_not_probabilities_are_never_results():
    good = Scored.from_logprobs([-0.1, -2.0], [-0.1, -0.5], [3, 4])
    assert check_scored(good, "x") is good
    for logp, lmax, needle in [
        ([5.0, -1.0], [5.0, -0.5], "log p = 5"),  # a logprob of +5: "TP = 148"
        ([float("nan"), -1.0], [-0.1, -0.5], "log p = nan"),
        ([-0.1, -1.0], [float("nan"), -0.5], "pmax = nan"),
    ]:
        with pytest.raises(RepcheckError, match=needle):
            check_scored(Scored.from_logprobs(logp, lmax, [1, 2]), "the openai backend")


# ---- what vLLM's API returns ------------------------------------------------------------------------
def test_prompt_logprobs_are_read_exactly_from_objects_and_json():
    entries = [
        None,
        {5: Logprob(logprob=-0.1, rank=1)},  # the actual token is the argmax: one entry
        {7: Logprob(logprob=-2.0, rank=3), 9: Logprob(logprob=-0.5, rank=1)},
    ]
    as_json = [
        None,
        {"5": {"logprob": -0.1, "rank": 1}},
        {"7": {"logprob": -2.0, "rank": 3}, "9": {"logprob": -0.5, "rank": 1}},
    ]
    for e in (entries, as_json):
        s = parse_prompt_logprobs(e, [1, 5, 7], 1)
        np.testing.assert_allclose(s.p, [math.exp(-0.1), math.exp(-2.0)])
        np.testing.assert_allclose(s.pmax, [math.exp(-0.1), math.exp(-0.5)])
        assert s.argmax.tolist() == [5, 9] and s.logp.tolist() == [-0.1, -2.0]
    with pytest.raises(RepcheckError, match="has 2 entries for a prompt of 3 tokens"):
        parse_prompt_logprobs(entries[:2], [1, 5, 7], 1)


@pytest.mark.parametrize(
    "entry, needle",
    [
        (None, "is NoneType, not a non-empty map"),
        ([1, 2], "is list, not a non-empty map"),
        ({"5": None}, r"\[5\] is None, not a logprob object"),
        ({"5": "x"}, r"\[5\] is 'x', not a logprob object"),
        ({"5": {"logprob": float("nan")}}, r"\[5\]\.logprob is nan, not a log-probability"),
        ({"5": {"logprob": "-1"}}, r"\[5\]\.logprob is '-1', not a log-probability"),
        ({"x": {"logprob": -1.0}}, "has the key 'x', not a token id"),
        ({"6": {"logprob": -1.0, "rank": 1}}, "lacks the prompt's token 5"),
    ],
)
def test_malformed_prompt_logprobs_are_one_line_naming_the_field(entry, needle):
    with pytest.raises(RepcheckError, match=needle):
        parse_prompt_logprobs([None, entry], [1, 5], 1, "the server's prompt_logprobs")


def test_the_actual_token_is_the_argmax_when_it_beats_the_listed_best():
    s = parse_prompt_logprobs([None, {"5": {"logprob": -0.1, "rank": 2}, "9": {"logprob": -0.5, "rank": 1}}], [1, 5], 1)
    assert s.argmax.tolist() == [5] and s.pmax[0] == pytest.approx(math.exp(-0.1))


def test_sampling_params_send_every_key():
    """A server fills what a request leaves out from the checkpoint's generation_config: every
    key is sent, neutral where the setting does not set it."""
    neutral = {
        "temperature": 0.0,
        "top_k": -1,
        "top_p": 1.0,
        "min_p": 0.0,
        "repetition_penalty": 1.0,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
    }
    assert sampling_params(parse_setting("greedy")) == neutral
    assert sampling_params(parse_setting("repetition_penalty=1.3")) == {**neutral, "repetition_penalty": 1.3}
    kw = sampling_params(parse_setting("temperature=0.7,top_k=20,top_p=0.9,presence_penalty=1.5"))
    assert kw == {**neutral, "temperature": 0.7, "top_k": 20, "top_p": 0.9, "presence_penalty": 1.5}
    assert sampling_params(parse_setting("top_p=0.9"))["temperature"] == 1.0  # sampling at temperature 1


def test_public_url_and_probe_texts():
    assert public_url("https://user:secret@host:8000/v1/?key=abc") == "https://host:8000/v1"
    # where tokenizers differ: CJK, a leading space, repeated spaces, digits, a newline, accents
    joined = "".join(PROBE_TEXTS)
    assert "北京" in joined and any(t.startswith(" ") for t in PROBE_TEXTS) and "  " in joined
    assert "3.14159" in joined and "\n" in joined and "é" in joined


def test_legacy_argmax_when_the_actual_token_beats_the_listed_top():
    choice = {"logprobs": {"token_logprobs": [None, -0.1], "top_logprobs": [None, {"token_id:7": -0.5}]}}
    s = parse_prompt_scores(choice, [1, 9], 1)
    assert s.argmax[0] == 9 and s.pmax[0] == pytest.approx(math.exp(-0.1))


# ---- the import graph ---------------------------------------------------------------------------------
FEATURES = ("repcheck.explain", "repcheck.train", "repcheck.gate", "repcheck.cli")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Every repcheck module's imports of repcheck modules, at any depth of the code (lazy imports
    inside functions count), TYPE_CHECKING blocks excluded; importing a.b.c also runs a and a.b."""
    modules = {_module_name(p): p for p in (ROOT / "repcheck").rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                for n in ast.walk(node)}  # fmt: skip
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module
                for alias in node.names:
                    full = f"{target}.{alias.name}"
                    targets.add(full if full in modules else target)
            elif isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
        edges = set()
        for t in targets:
            parts = (t or "").split(".")
            for i in range(1, len(parts) + 1):
                m = ".".join(parts[:i])
                if m in modules and m != name and not name.startswith(m + "."):
                    edges.add(m)
        graph[name] = edges
    return graph


def test_the_package_has_no_import_circles():
    graph = _import_graph()
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            visit(v)
    assert cycles == []


def test_the_core_never_reaches_up_into_features_or_the_ui():
    graph = _import_graph()
    up = sorted(
        (a, b)
        for a, bs in graph.items()
        for b in bs
        if not a.startswith(FEATURES) and a not in ("repcheck", "repcheck.__main__") and b.startswith(FEATURES)
    )
    assert up == []
    for path in (ROOT / "repcheck").rglob("*.py"):
        if "cli" in path.relative_to(ROOT / "repcheck").parts:
            continue
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(import|from)\s+(typer|rich)\b", text, re.M), path
