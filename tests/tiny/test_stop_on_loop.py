"""--stop-on-loop: each backend ends a looping continuation where the guard confirms the loop,
with the same tokens as the whole continuation cut there; chat prompts through the template."""

import json

import pytest
from cli_helpers import assert_usage_error, run

from repcheck import load_model
from repcheck.decoding import parse_setting
from repcheck.generation import generate
from repcheck.guard import GuardConfig, find_loop

PROMPTS = ["The committee approved the new budget.", "Water boils at one hundred degrees", "The general led his army"]
GUARD = GuardConfig(max_period=16, min_repeats=3, min_tokens=12)


@pytest.fixture(scope="module")
def looper(tiny_llama_repeated):
    return load_model(str(tiny_llama_repeated), device="cpu")


def _check_stopped_like_the_cut(full, stopped):
    loops = 0
    for a, b in zip(full.generations, stopped.generations, strict=True):
        found = find_loop(a.token_ids, GUARD)
        if found is None:
            assert b.token_ids == a.token_ids and b.finish != "loop"
            continue
        loops += 1
        assert b.finish == "loop" and b.token_ids == a.token_ids[: found.at]
        assert b.loop["period"] == found.period and b.loop["start"] == found.start
    return loops


def test_hf_stops_each_row_of_a_batch_at_its_loop(looper):
    greedy = parse_setting("greedy")
    full = generate(looper, PROMPTS, greedy, max_new_tokens=60, batch_size=3)
    stopped = generate(looper, PROMPTS, greedy, max_new_tokens=60, batch_size=3, stop_on_loop=GUARD)
    assert _check_stopped_like_the_cut(full, stopped) >= 1  # the repeated-text checkpoint loops
    summary = stopped.guard_summary()
    assert summary["stopped"] >= 1 and summary["tokens_saved"] > 0 and summary["tokens_after_loop"] == 0
    assert all(g.loop["cut"] == 0 for g in stopped.generations if g.finish == "loop")  # stopped, not cut afterwards


def test_sampling_rows_stop_independently(looper):
    setting = parse_setting("temperature=0.7")
    full = generate(looper, PROMPTS[:2], setting, max_new_tokens=48, samples=3, seed=2)
    stopped = generate(looper, PROMPTS[:2], setting, max_new_tokens=48, samples=3, seed=2, stop_on_loop=GUARD)
    _check_stopped_like_the_cut(full, stopped)


def test_a_served_model_is_streamed_and_the_stream_closed_at_the_loop(looper, tiny_llama_repeated):
    from server_stubs import vllm_like_server

    greedy = parse_setting("greedy")
    full = generate(looper, PROMPTS, greedy, max_new_tokens=40)
    with vllm_like_server(looper) as server:
        served = load_model("tiny", backend="openai", base_url=server.base_url, tokenizer=str(tiny_llama_repeated))
        stopped = generate(served, PROMPTS, greedy, max_new_tokens=40, stop_on_loop=GUARD)
        streamed = list(server.streamed)
    assert _check_stopped_like_the_cut(full, stopped) >= 1
    loops = [g for g in stopped.generations if g.finish == "loop"]
    assert all(g.loop["cut"] == 0 for g in loops)  # closed right at the confirmation...
    assert sum(streamed) < sum(len(g.token_ids) for g in full.generations)  # ...so fewer tokens were streamed


def test_sglang_and_tgi_cut_afterwards(looper, tiny_llama_repeated):
    from server_stubs import tgi_like_server

    greedy = parse_setting("greedy")
    full = generate(looper, PROMPTS, greedy, max_new_tokens=40)
    with tgi_like_server(looper) as server:
        served = load_model("tiny", backend="tgi", base_url=server.base_url, tokenizer=str(tiny_llama_repeated))
        stopped = generate(served, PROMPTS, greedy, max_new_tokens=40, stop_on_loop=GUARD)
    assert _check_stopped_like_the_cut(full, stopped) >= 1
    assert stopped.guard_summary()["tokens_after_loop"] > 0


def test_compare_cli_reports_finish_and_saved_tokens(tiny_llama_repeated, tmp_path):
    res = run("compare", "--prompts", _file(tmp_path, PROMPTS), "-n", 60, "--stop-on-loop", "--loop-max-period", 16,
              "--loop-min-tokens", 12, "--model", tiny_llama_repeated, "--out", tmp_path / "o", "--json")  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    s = doc["settings"][0]
    assert s["finish"]["loop"] >= 1 and s["guard"]["tokens_saved"] > 0
    assert doc["guard"] == {"max_period": 16, "min_repeats": 3, "min_tokens": 12}
    rows = [json.loads(line) for line in (tmp_path / "o" / "generations.jsonl").read_text().splitlines()]
    assert {r["finish"] for r in rows} >= {"loop"} and all(r["prompt_ids"] for r in rows)
    assert all("guard_loop" in r for r in rows if r["finish"] == "loop")


def test_guard_options_are_checked(tiny_llama):
    common = ["Once upon a time", "--model", tiny_llama]
    assert_usage_error(run("compare", *common, "--loop-min-tokens", 10), "go with --stop-on-loop")
    assert_usage_error(run("compare", *common, "--stop-on-loop", "-n", 20), "could never stop one")
    assert_usage_error(run("compare", *common, "--stop-on-loop", "--loop-min-repeats", 1), "--loop-min-repeats")


def test_compare_chat_renders_through_the_template(chat_llama, tiny_llama, tmp_path):
    res = run("compare", "--prompts", "chat_en", "--limit", 2, "--chat", "-n", 6, "--model", chat_llama,
              "--out", tmp_path / "o", "--json")  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["conversations"][0]["messages"][-1]["role"] == "user"
    rows = [json.loads(line) for line in (tmp_path / "o" / "generations.jsonl").read_text().splitlines()]
    lm = load_model(str(chat_llama), device="cpu")
    text = lm.tokenizer.apply_chat_template(doc["conversations"][0]["messages"], add_generation_prompt=True,
                                            tokenize=False)  # fmt: skip
    assert rows[0]["prompt_ids"] == lm.tokenizer(text, add_special_tokens=False)["input_ids"]
    # a plain line becomes one user turn
    res = run("compare", "Say hello.", "--chat", "-n", 4, "--model", chat_llama, "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["conversations"] == [
        {"messages": [{"role": "user", "content": "Say hello."}]}
    ]
    assert_usage_error(run("compare", "Say hello.", "--chat", "--model", tiny_llama), "has no chat template")


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ('{"messages": "hi"}', "messages must be a non-empty list"),
        ('{"messages": [{"role": "robot", "content": "x"}]}', "is not one of system, user, assistant"),
        ('{"messages": []}', "non-empty list"),
        ('{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}', "last message"),
        ('{"text": "a", "messages": []}', "either"),
        ("[1]", "either"),
    ],
)
def test_bad_conversations_are_one_line_errors(chat_llama, tmp_path, line, needle):
    path = tmp_path / "p.jsonl"
    path.write_text(line + "\n")
    res = run("compare", "--prompts", path, "--chat", "--model", chat_llama, "--out", tmp_path / "o")
    assert_usage_error(res, needle, "p.jsonl:1")
    assert not (tmp_path / "o").exists()


def _file(tmp_path, lines):
    path = tmp_path / "prompts.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_gate_suite_with_chat_prompts_and_the_guard(chat_llama, tmp_path):
    suite = tmp_path / "suite.toml"
    (tmp_path / "s.txt").write_text("Paris is the capital of France.\nWater boils.\n")
    suite.write_text(
        '[probe]\nsentences = "s.txt"\nrepeats = 2\n\n[gate]\nbootstrap = 20\n\n'
        '[compare]\nprompts = "chat_en"\nlimit = 2\nmax_new_tokens = 40\nchat = true\nstop_on_loop = true\n'
    )
    # the guard needs 48 tokens to confirm a loop: 40 can never stop one, and the suite says so
    res = run("baseline", "create", "--model", chat_llama, "--suite", suite, "-o", tmp_path / "x.json", "-q")
    assert_usage_error(res, "could never stop one")
    suite.write_text(suite.read_text().replace("max_new_tokens = 40", "max_new_tokens = 48").replace('limit = 2', 'limit = 1'))  # fmt: skip
    base = tmp_path / "b.json"
    res = run("baseline", "create", "--model", chat_llama, "--suite", suite, "-o", base, "-q")
    assert res.exit_code == 0, res.output
    doc = json.loads(base.read_text())
    assert doc["inputs"]["prompts"][0]["messages"][-1]["role"] == "user"
    res = run("check", "--model", chat_llama, "--baseline", base, "-q")
    assert res.exit_code == 0, res.output
