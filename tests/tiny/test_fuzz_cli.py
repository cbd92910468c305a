"""Fuzzing the CLI's readers (issue 11): random setting strings, suite TOMLs, baselines and
input files must give exit 0 (or 3, a regression, for check) or a one-line exit 2, never a
traceback or an internal error. Derandomized, so CI runs the same examples every time."""

import json
import string

import pytest
from cli_helpers import run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repcheck.decoding import KEYS

FUZZ = settings(
    max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def assert_contract(result, ok=(0,)):
    assert "Traceback" not in result.output, result.output
    assert result.exit_code in (*ok, 2), (result.exit_code, result.output)
    if result.exit_code == 2:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
        assert "internal error" not in lines[0]


# ---- settings -----------------------------------------------------------------------------------
TOML_VALUES = st.one_of(
    st.integers(-3, 70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda f: repr(f).replace("inf", "inf").lower()),
    st.sampled_from(["true", "false", "1e-300", "1e400", "-0.0", '"x"', "[]", '["\\n", ":"]', "[1, 2]", "{}", "nan"]),
    st.text(alphabet=string.printable, max_size=6),
)
KEY = st.one_of(st.sampled_from(list(KEYS)), st.text(alphabet=string.ascii_letters + "_[]/", min_size=1, max_size=8))
INT_KEYS = {"top_k", "num_beams", "no_repeat_ngram_size", "penalty_last_n", "dry_allowed_length", "dry_penalty_last_n"}


def plausible(key: str):
    """A value of the right kind for ``key``, often in range."""
    if key == "do_sample":
        return st.sampled_from(["true", "false"])
    if key == "dry_sequence_breakers":
        return st.sampled_from(['["\\n"]', '[":", "."]'])
    if key in INT_KEYS:
        return st.integers(-1, 6).map(str)
    return st.floats(0.0, 3.0).map(lambda f: f"{f:.3g}")


VALID_ISH = st.lists(
    st.sampled_from(list(KEYS)).flatmap(lambda k: plausible(k).map(lambda v: (k, v))), min_size=1, max_size=3
).map(lambda kv: ",".join(f"{k}={v}" for k, v in dict(kv).items()))
SETTING = st.one_of(
    VALID_ISH,
    VALID_ISH,
    st.lists(st.tuples(KEY, TOML_VALUES), min_size=1, max_size=3).map(lambda kv: ",".join(f"{k}={v}" for k, v in kv)),
    st.text(max_size=20),
)


@FUZZ
@given(text=SETTING)
def test_random_settings(tiny_gpt2, text):
    if not text.strip() or text.startswith("-"):
        return  # an empty or flag-looking argument is a different test
    r = run(
        "compare", "Paris is", "-n", 3, "--probe", "Water boils.", "-k", 2, "-s", text, "-m", tiny_gpt2, "--json", "-q"
    )
    assert_contract(r)
    if r.exit_code == 0:
        for s in json.loads(r.stdout)["settings"]:
            for row in s.get("probe", {}).get("per_copy", []):
                assert row["tp"] is None or 0 <= row["tp"] <= 1


# ---- suites ---------------------------------------------------------------------------------------
SUITE_VALUES = st.sampled_from(
    ["5", "-1", "0", "1", "2", "1.5", '"wiki_en"', '"zh"', '"nope"', '"s.txt"', "[]", '["greedy", 5]', '["greedy"]',
     '["top_p=7"]', "true", "{}", '"float32"', '"int8"', "inf", "nan", '""']
)  # fmt: skip
GOOD = {
    "dtype": '"float32"', "seed": "1", "sentences": '"s.txt"', "prompts": '"s.txt"', "limit": "2", "repeats": "2",
    "prefix": '"Note:"', "batch_size": "4", "settings": '["greedy", "top_k=5"]', "max_new_tokens": "3",
    "samples": "2", "k": "2.5", "floor": "0.02", "bootstrap": "50", "direction": '"lower"', "tolerance": "0.1",
}  # fmt: skip
SUITE_KEYS = {
    "": ["dtype", "seed", "dtype", "seed", "bogus"],
    "probe": ["sentences", "limit", "repeats", "prefix", "batch_size", "sentence"],
    "compare": ["prompts", "limit", "settings", "max_new_tokens", "samples"],
    "gate": ["k", "floor", "bootstrap"],
    'metrics."probe.tp_last"': ["direction", "tolerance"],
}


@st.composite
def suites(draw):
    lines = []
    clean = draw(st.booleans())  # half the suites are valid: the measuring code runs too
    for table, keys in SUITE_KEYS.items():
        if clean:
            keys = [k for k in keys if k in GOOD]
        chosen = draw(st.lists(st.sampled_from(keys), max_size=3, unique=True))
        if table == "probe" and "sentences" not in chosen and draw(st.integers(0, 3)):
            chosen = ["sentences", "repeats", *[k for k in chosen if k != "repeats"]]  # short sentences that fit
        if table and (chosen or draw(st.booleans())):
            lines.append(f"[{table}]")
        for key in chosen:
            value = GOOD[key] if key in GOOD and (clean or draw(st.integers(0, 3))) else draw(SUITE_VALUES)
            if key in ("max_new_tokens", "samples", "repeats", "bootstrap", "limit") and value.isdigit():
                value = str(min(int(value), 3))
            lines.append(f"{key} = {value}")
    return "\n".join(lines) + "\n"


@FUZZ
@given(toml=suites())
def test_random_suites(tiny_llama, tmp_path_factory, toml):
    d = tmp_path_factory.mktemp("suite")
    (d / "s.txt").write_text("Paris is the capital of France.\nWater boils.\n")
    (d / "suite.toml").write_text(toml)
    r = run("baseline", "create", "--suite", d / "suite.toml", "-m", tiny_llama, "-o", d / "b.json", "-q")
    assert_contract(r)
    assert (d / "b.json").exists() == (r.exit_code == 0)


# ---- baselines ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def good_baseline(tiny_llama, tmp_path_factory):
    d = tmp_path_factory.mktemp("base")
    (d / "s.txt").write_text("Paris is the capital of France.\nWater boils.\nThe general led his army.\n")
    (d / "suite.toml").write_text('[probe]\nsentences = "s.txt"\nrepeats = 3\n')
    r = run("baseline", "create", "--suite", d / "suite.toml", "-m", tiny_llama, "-o", d / "b.json", "-q")
    assert r.exit_code == 0, r.output
    return json.loads((d / "b.json").read_text())


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(-2, 2), st.text(max_size=5)),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=6,
)


def _paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, (*prefix, i))


@FUZZ
@given(data=st.data())
def test_random_baselines(tiny_llama, good_baseline, tmp_path_factory, data):
    doc = json.loads(json.dumps(good_baseline))
    paths = [p for p in _paths(doc) if p][:400]
    for path in data.draw(st.lists(st.sampled_from(paths), min_size=1, max_size=3)):
        target = doc
        try:
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = data.draw(JSON_VALUES)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier replacement removed this path
    d = tmp_path_factory.mktemp("check")
    (d / "b.json").write_text(json.dumps(doc))
    assert_contract(run("check", "--baseline", d / "b.json", "-m", tiny_llama, "--json", "-q"), ok=(0, 3))


# ---- input files ----------------------------------------------------------------------------------
ROWS = st.lists(
    st.one_of(st.text(max_size=30), st.none(), st.integers(), st.lists(st.text(max_size=3), max_size=2)), max_size=5
)


@st.composite
def input_files(draw):
    suffix = draw(st.sampled_from([".txt", ".jsonl", ".json", ".csv"]))
    kind = draw(st.sampled_from(["text", "structured"]))
    if kind == "text":
        content = (
            draw(st.text(max_size=200)).encode("utf-8", "surrogatepass") if False else draw(st.binary(max_size=200))
        )
        return suffix, content
    rows = draw(ROWS)
    if suffix == ".jsonl":
        text = "\n".join(json.dumps({"text": r}) for r in rows)
    elif suffix == ".json":
        text = json.dumps(draw(st.sampled_from([rows, [{"text": r} for r in rows], {"text": rows}])))
    elif suffix == ".csv":
        text = "id,text\n" + "\n".join(f'{i},"{str(r).replace(chr(34), chr(34) * 2)}"' for i, r in enumerate(rows))
    else:
        text = "\n".join(str(r) for r in rows)
    return suffix, text.encode("utf-8", "surrogatepass")


@FUZZ
@given(case=input_files())
def test_random_input_files(tiny_llama, tmp_path_factory, case):
    suffix, content = case
    f = tmp_path_factory.mktemp("in") / f"input{suffix}"
    f.write_bytes(content)
    r = run("probe", "--file", f, "-m", tiny_llama, "-k", 2, "--json", "-q")
    assert_contract(r)
    if r.exit_code == 0:
        assert json.loads(r.stdout)["sentences"]


# ---- a server answering malformed JSON --------------------------------------------------------------
JSON_LEAF = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8), st.sampled_from(["token_id:1", "token_id:x", "NaN", "tiny"]),
)  # fmt: skip
JSON_DOC = st.recursive(
    JSON_LEAF,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(
                [
                    "data",
                    "id",
                    "choices",
                    "prompt_logprobs",
                    "logprobs",
                    "tokens",
                    "token_logprobs",
                    "top_logprobs",
                    "owned_by",
                    "max_model_len",
                    "logprob",
                    "rank",
                    "0",
                    "1",
                    "5",
                ]
            ),
            inner,
            max_size=5,
        ),  # fmt: skip
    ),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def fuzz_server():
    """One loopback server for every example: /models serves "tiny" (so a run gets as far as
    the answers under test), every other endpoint answers the example's document."""
    from server_stubs import ScriptedServer

    state = {"doc": {}}

    def script(method, path, body):
        if path.endswith("/models") and state.get("models_ok"):
            return 200, {"data": [{"id": "tiny", "owned_by": "vllm", "max_model_len": 64}]}
        return 200, state["doc"]

    with ScriptedServer(script) as server:
        server.state = state
        yield server


@FUZZ
@given(doc=JSON_DOC, models_ok=st.booleans(), backend=st.sampled_from(["openai", "sglang", "tgi"]))
def test_malformed_server_answers_are_one_line_errors(fuzz_server, tiny_llama, doc, models_ok, backend):
    fuzz_server.state.update(doc=doc, models_ok=models_ok)
    res = run("probe", "Water boils.", "-k", "2", "--backend", backend, "--base-url", fuzz_server.base_url,
              "--tokenizer", tiny_llama, "--model", "tiny", "--retries", "0", "--timeout", "5")  # fmt: skip
    assert_contract(res)
