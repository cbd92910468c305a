"""Generation and the probe under decoding settings on the tiny models; `repcheck compare` CLI."""

import json
import os

import numpy as np
import pytest
import torch
from cli_helpers import AT_LEAST_1, assert_usage_error
from typer.testing import CliRunner

from repcheck import probe
from repcheck.cli.app import app
from repcheck.compare import run_compare
from repcheck.decoding import PRESETS, make_setting, parse_setting
from repcheck.generation import generate

PROMPTS = ["The committee approved", "Paris is", "The general led his army across the river and"]
runner = CliRunner()


def test_same_seed_same_tokens(tiny_llama_model):
    s = parse_setting("top_p=0.9,temperature=1.5")
    a = generate(tiny_llama_model, PROMPTS, s, max_new_tokens=12, samples=2, seed=3)
    b = generate(tiny_llama_model, PROMPTS, s, max_new_tokens=12, samples=2, seed=3)
    c = generate(tiny_llama_model, PROMPTS, s, max_new_tokens=12, samples=2, seed=4)
    ids = lambda run: [g.token_ids for g in run.generations]  # noqa: E731
    assert ids(a) == ids(b) and ids(a) != ids(c)
    assert len(a.generations) == 6 and {g.sample for g in a.generations} == {0, 1}


@pytest.mark.parametrize(
    "setting",
    [
        "greedy",
        "repetition_penalty=1.3",
        "no_repeat_ngram_size=2",
        "presence_penalty=1.0,frequency_penalty=0.5",
        "dry_multiplier=0.8",
    ],
)
def test_batched_equals_unbatched_for_greedy(tiny_llama_model, setting):
    s = parse_setting(setting)
    batched = generate(tiny_llama_model, PROMPTS, s, max_new_tokens=10, batch_size=3)
    single = generate(tiny_llama_model, PROMPTS, s, max_new_tokens=10, batch_size=1)
    assert [g.token_ids for g in batched.generations] == [g.token_ids for g in single.generations]


@pytest.mark.parametrize("preset", ["top_k", "top_p", "temperature", "typical", "min_p"])
def test_batched_equals_unbatched_when_sampling(tiny_llama_model, preset):
    """Seeded sampling draws each row's tokens as it would alone, whatever shares its batch."""
    s = make_setting(preset, PRESETS[preset])
    batched = generate(tiny_llama_model, PROMPTS, s, max_new_tokens=10, batch_size=3, seed=1)
    single = generate(tiny_llama_model, PROMPTS, s, max_new_tokens=10, batch_size=1, seed=1)
    assert [g.token_ids for g in batched.generations] == [g.token_ids for g in single.generations]


def test_greedy_gives_one_continuation_and_scores_it(tiny_gpt2_model):
    run = generate(tiny_gpt2_model, PROMPTS[:2], parse_setting("greedy"), max_new_tokens=8, samples=3)
    assert len(run.generations) == 2 and run.new_tokens > 0 and run.tokens_per_s > 0
    for g in run.generations:
        assert g.mean_logprob < 0 and "seq_rep_4" in g.metrics


def test_mean_logprob_by_hand(tiny_llama_model):
    run = generate(tiny_llama_model, ["Paris is"], parse_setting("greedy"), max_new_tokens=5)
    g = run.generations[0]
    tok = tiny_llama_model.tokenizer
    prompt = [tok.bos_token_id] + tok("Paris is", add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt + g.token_ids])
    with torch.no_grad():
        lp = tiny_llama_model.model(ids).logits[0].log_softmax(-1)
    expected = np.mean([lp[len(prompt) - 1 + i, t].item() for i, t in enumerate(g.token_ids)])
    assert g.mean_logprob == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("identity", ["greedy", "temperature=1.0"])
def test_probe_with_identity_setting_equals_plain_probe(tiny_llama_model, identity):
    plain = probe(tiny_llama_model, "Paris is the capital of France.", repeats=3)
    under = probe(tiny_llama_model, "Paris is the capital of France.", repeats=3, decoding=parse_setting(identity))
    np.testing.assert_allclose(under.sentences[0].p, plain.sentences[0].p, atol=1e-6)
    np.testing.assert_allclose(under.sentences[0].pmax, plain.sentences[0].pmax, atol=1e-6)


def test_probe_under_temperature_by_hand(tiny_gpt2_model):
    r = probe(tiny_gpt2_model, "Water boils.", repeats=2, decoding=parse_setting("temperature=2.0"))
    s = r.sentences[0]
    ids = torch.tensor([r.prefix_ids + s.token_ids * 2])
    with torch.no_grad():
        probs = (tiny_gpt2_model.model(ids).logits[0] / 2.0).softmax(-1)
    P, L = len(r.prefix_ids), len(s.token_ids)
    for n in range(2):
        for l in range(L):
            t = P + n * L + l
            assert s.p[n, l] == pytest.approx(probs[t - 1, ids[0, t]].item(), abs=1e-6)


def test_no_repeat_ngram_zeroes_repeats_in_the_probe(tiny_llama_model):
    r = probe(
        tiny_llama_model, "Paris is the capital of France.", repeats=3, decoding=parse_setting("no_repeat_ngram_size=2")
    )
    s = r.sentences[0]
    # From the second token of copy 1 on, every repeated token completes a bigram already seen.
    assert (s.p[1, 1:] == 0).all() and (s.p[2] == 0).all()


def test_run_compare_document(tiny_gpt2_model):
    settings = [parse_setting("greedy"), parse_setting("beam"), parse_setting("top_k=5")]
    res = run_compare(
        tiny_gpt2_model, settings, PROMPTS[:2], max_new_tokens=8, samples=2, probe_sentences=["Water boils."], repeats=2
    )
    doc = json.loads(res.to_json())
    assert doc["kind"] == "compare" and [s["name"] for s in doc["settings"]] == ["greedy", "beam", "top_k=5"]
    top_k = doc["settings"][2]
    assert top_k["continuations"] == 4 and top_k["metrics"]["seq_rep_4"]["n"] <= 2
    assert doc["settings"][1]["probe"] == {"skipped": "beam search has no per-token distribution"}
    assert len(doc["settings"][0]["probe"]["per_copy"]) == 2
    assert len(res.to_frame()) == 3


def cli(*args):
    return runner.invoke(app, ["compare", *[str(a) for a in args]])


def test_cli_json_and_files(tiny_gpt2, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("\n".join(PROMPTS[:2]))
    out = tmp_path / "cmp"
    r = cli(
        "--prompts",
        prompts,
        "-m",
        tiny_gpt2,
        "-s",
        "greedy",
        "-s",
        "repetition_penalty=1.3",
        "-n",
        6,
        "--probe",
        "Water boils.",
        "-k",
        2,
        "--json",
        "--out",
        out,
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert [s["name"] for s in doc["settings"]] == ["greedy", "repetition_penalty=1.3"]
    assert sorted(os.listdir(out)) == [
        ".repcheck-output.json",
        "curves.png",
        "generations.jsonl",
        "metrics.png",
        "per_setting.csv",
        "summary.json",
    ]
    lines = (out / "generations.jsonl").read_text().splitlines()
    assert len(lines) == 4 and {"prompt", "setting", "sample", "text", "token_ids", "loop_period"} <= set(
        json.loads(lines[0])
    )


def test_cli_table(tiny_gpt2):
    r = cli("Paris is", "-m", tiny_gpt2, "--preset", "penalties", "-n", 5)
    assert r.exit_code == 0, r.output
    assert "seq-rep-4" in r.stdout and "dry" in r.stdout


@pytest.mark.parametrize(
    "args,needle",
    [
        ([], "give a PROMPT"),
        (["x", "-s", "top_p=2"], "out of range"),
        (["x", "-s", "warp_speed=9"], "unknown decoding key"),
        (["x", "-s", "num_beams=2,temperature=0.5"], "cannot be combined"),
        (["x", "--preset", "nope"], "--preset: unknown preset 'nope'"),
        (["x", "-n", "0"], AT_LEAST_1),
        (["x", "--settings", "/no/such.toml"], "cannot read"),
    ],
)
def test_cli_bad_input(args, needle):
    assert_usage_error(cli(*args), needle)


def test_cli_bad_input_with_model(tiny_gpt2, tmp_path):
    empty = tmp_path / "e.txt"
    empty.write_text("# none\n")
    r = cli("--prompts", empty, "-m", tiny_gpt2)
    assert r.exit_code == 2 and "no sentences" in r.stderr
    out = tmp_path / "o"
    r = cli("Paris is", "-m", tiny_gpt2, "-n", 100, "--out", out)  # tiny GPT-2 has 64 positions
    assert r.exit_code == 2 and "context window" in r.stderr and not out.exists()


def test_progress_counts_prompts_over_all_settings(tiny_gpt2_model):
    calls = []
    settings = [parse_setting("greedy"), parse_setting("top_k=3")]
    run_compare(
        tiny_gpt2_model,
        settings,
        PROMPTS,
        max_new_tokens=3,
        batch_size=2,
        progress=lambda d, done, total: calls.append((d, done, total)),
    )
    # each setting announces itself before its first batch, then counts continuations of all settings
    assert [(d, done, total) for d, done, total in calls] == [
        ("generating: greedy", 0, 6),
        ("generating: greedy", 2, 6),
        ("generating: greedy", 3, 6),
        ("generating: top_k=3", 3, 6),
        ("generating: top_k=3", 5, 6),
        ("generating: top_k=3", 6, 6),
    ]
