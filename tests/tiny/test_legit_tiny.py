"""The legitimate-repetition suite on tiny models: rendering (plain and chat), one batched
request with each case's own budget, results that do not depend on batching, the same
continuations on every backend, and a chat suite refused for a model without a template."""

import json

import pytest
from cli_helpers import assert_usage_error, run

from repcheck import load_model
from repcheck.decoding import parse_setting
from repcheck.legit import load_legit_suite, run_legit
from repcheck.prompts import Prompt, render


def _suite(tmp_path, cases):
    path = tmp_path / "suite.jsonl"
    path.write_text("\n".join(json.dumps(c, ensure_ascii=False) for c in cases) + "\n", encoding="utf-8")
    return path


CASES = [
    {"id": f"c{i}", "category": cat, "prompt": p, "max_new_tokens": n, "check": {"type": "regex", "value": "."}}
    for i, (cat, p, n) in enumerate(
        [
            ("list", "1, 2, 3, 4,", 3),
            ("code", "x = 1\ny = 2\nz =", 7),
            ("list", "Monday, Tuesday,", 5),
            ("refrain", "Paris is the capital of France. Paris is the capital of", 12),
            ("code", "a b c d e f g", 1),
        ]
    )
] + [
    {"id": "chat1", "category": "again", "messages": [{"role": "user", "content": "Say it again: Paris."}],
     "check": {"type": "contains", "value": "Paris"}, "max_new_tokens": 6},
]  # fmt: skip


def test_chat_cases_render_through_the_template(chat_llama):
    lm = load_model(str(chat_llama), device="cpu")
    tok = lm.tokenizer
    messages = ({"role": "user", "content": "Say it again: Paris."},)
    ids = render(tok, Prompt(messages=messages))
    text = "<s>user: Say it again: Paris.</s><s>assistant:"
    assert ids == tok(text, add_special_tokens=False)["input_ids"]
    assert render(tok, Prompt(text="1, 2,")) == [tok.bos_token_id] + tok("1, 2,", add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("setting", ["greedy", "temperature=0.9,top_k=20", "repetition_penalty=1.5"])
def test_one_batched_request_with_each_case_budget_and_no_batch_effect(chat_llama, tmp_path, setting):
    lm = load_model(str(chat_llama), device="cpu")
    suite = load_legit_suite(_suite(tmp_path, CASES))
    s = parse_setting(setting)
    batched = run_legit(lm, suite, s, batch_size=16)
    alone = run_legit(lm, suite, s, batch_size=1)
    assert [c.token_ids for c in batched.cases] == [c.token_ids for c in alone.cases]
    for case, got in zip(suite.cases, batched.cases, strict=True):
        assert len(got.token_ids) <= case.max_new_tokens
        assert got.finish == "eos" or len(got.token_ids) == case.max_new_tokens
        assert got.text == lm.tokenizer.decode(got.token_ids, skip_special_tokens=True)
    doc = batched.to_dict()
    assert doc["n"] == len(CASES) and doc["passed"] == sum(c.passed for c in batched.cases)
    assert set(doc["by_category"]) == {"list", "code", "refrain", "again"}
    lo, hi = doc["ci95"]
    assert 0 <= lo <= doc["pass_rate"] <= hi <= 1


def test_a_chat_suite_is_refused_for_a_model_without_a_template(tiny_gpt2, tmp_path):
    path = _suite(tmp_path, CASES)
    res = run("compare", "--legit", path, "--model", tiny_gpt2, "--out", tmp_path / "out")
    assert_usage_error(res, "suite.jsonl:6: field 'messages'", "has no chat template")
    assert not (tmp_path / "out").exists()
    plain = _suite(tmp_path, CASES[:5])
    res = run("compare", "--legit", plain, "--model", tiny_gpt2, "-s", "greedy", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    (entry,) = doc["settings"]
    assert entry["legit"]["n"] == 5 and len(entry["legit"]["cases"]) == 5
    assert set(entry["legit"]["cases"][0]) >= {"id", "category", "passed", "text", "token_ids"}
    assert doc["legit_suite"]["name"] == str(plain)


def test_compare_writes_the_tradeoff_and_the_legit_table(chat_llama, tmp_path):
    out = tmp_path / "out"
    res = run("compare", "Once upon a time", "--model", chat_llama, "-s", "greedy", "-s", "repetition_penalty=1.5",
              "--legit", _suite(tmp_path, CASES), "-n", "6", "--out", out)  # fmt: skip
    assert res.exit_code == 0, res.output
    assert {"tradeoff.png", "legit.csv", "summary.json", "metrics.png"} <= {p.name for p in out.iterdir()}
    assert "legit pass" in res.stdout and "legit pass by category" in res.stdout
    redrawn = run("plot", out, "--format", "svg", "--out", tmp_path / "svg", "-q")
    assert redrawn.exit_code == 0 and (tmp_path / "svg" / "tradeoff.svg").is_file()


def test_pareto_front():
    from repcheck.plots import pareto_front

    # (loop rate, legit pass): b beats a on both; c trades; d is beaten by c
    assert pareto_front([(0.5, 0.5), (0.4, 0.6), (0.1, 0.3), (0.2, 0.2)]) == [False, True, True, False]
    assert pareto_front([(0.1, 0.5), (0.1, 0.5)]) == [True, True]  # equal points beat neither


def copy_cases(tokenizer, n: int = 8, seed: int = 0) -> list[dict]:
    """Cases the tiny copier passes and a random model does not: 12 single-token words, then
    their first four again; the next word is the fifth (the copier continues [BOS] + R + R)."""
    import random

    from tiny_models import CORPUS

    words = [
        w
        for w in sorted(set(" ".join(CORPUS).split()))
        if len(tokenizer(" " + w, add_special_tokens=False)["input_ids"]) == 1
    ]
    rng = random.Random(seed)
    cases = []
    for i in range(n):
        r = [rng.choice(words) for _ in range(12)]
        cases.append({"id": f"copy-{i}", "category": "copy", "prompt": " " + " ".join(r + r[:4]), "max_new_tokens": 4,
                      "check": {"type": "startswith", "value": r[4]}})  # fmt: skip
    return cases


def test_the_gate_fails_a_model_that_lost_legitimate_repetition(tiny_copier, tiny_llama, tmp_path):
    from transformers import AutoTokenizer

    cases = copy_cases(AutoTokenizer.from_pretrained(tiny_copier))
    _suite(tmp_path, cases)
    (tmp_path / "sentences.txt").write_text("The committee approved the new budget.\nParis is the capital of France.\n")
    (tmp_path / "gate.toml").write_text(
        'dtype = "float32"\n[probe]\nsentences = "sentences.txt"\nrepeats = 3\n'
        '[legit]\nsuite = "suite.jsonl"\nsettings = ["greedy"]\n[gate]\nbootstrap = 200\n'
    )
    base = tmp_path / "baseline.json"
    res = run("baseline", "create", "--model", tiny_copier, "--suite", tmp_path / "gate.toml", "-o", base, "-q")
    assert res.exit_code == 0, res.output
    doc = json.loads(base.read_text())
    assert doc["metrics"]["legit.greedy.pass_rate"]["value"] == 1.0 and len(doc["inputs"]["legit"]) == 8
    assert doc["metrics"]["legit.greedy.pass_rate"]["direction"] == "higher"
    same = run("check", "--model", tiny_copier, "--baseline", base, "--json")
    assert same.exit_code == 0, same.output
    broken = run("check", "--model", tiny_llama, "--baseline", base, "--json")
    assert broken.exit_code == 3, broken.output
    report = json.loads(broken.stdout)
    legit = next(m for m in report["metrics"] if m["name"] == "legit.greedy.pass_rate")
    assert legit["status"] == "regressed" and legit["current"] < 0.5


def test_diff_shows_the_legit_pass_rate_per_model(tiny_copier, tiny_llama, tmp_path):
    from transformers import AutoTokenizer

    path = _suite(tmp_path, copy_cases(AutoTokenizer.from_pretrained(tiny_copier)))
    res = run(
        "diff", "Paris is the capital.", "-m", tiny_copier, "-m", tiny_llama, "-k", "2", "--legit", path, "--json"
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert [lg["pass_rate"] for lg in doc["legit"]] == [1.0, 0.0]
    delta = next(d for d in doc["deltas"] if d["metric"] == "legit_pass_rate")
    assert delta["delta"] == -1.0 and delta["reference_value"] == 1.0
    shown = run("diff", "Paris is the capital.", "-m", tiny_copier, "-m", tiny_llama, "-k", "2", "--legit", path)
    assert "legit pass (8 cases, greedy)" in shown.stdout
