"""Generation on the built-in SmolLM2: greedy loops, and the anti-repetition settings help."""

from pathlib import Path

import pytest

from repcheck import read_sentences
from repcheck.compare import run_compare
from repcheck.decoding import parse_setting
from repcheck.generation import generate

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_greedy_falls_into_a_loop_that_the_detector_reports(smol):
    run = generate(smol, ["I like Beijing because"], parse_setting("greedy"), max_new_tokens=128)
    g = run.generations[0]
    assert g.metrics["loop"], g.text
    assert 1 <= g.metrics["loop_period"] <= 64 and g.metrics["loop_start"] < 64
    assert g.metrics["seq_rep_4"] > 0.5


def test_penalties_lower_seq_rep_4_on_the_open_ended_set(smol):
    prompts = read_sentences(ROOT / "sample_prompts" / "open_ended.txt")[:16]
    settings = [parse_setting(s) for s in ("greedy", "repetition_penalty=1.3", "no_repeat_ngram_size=3")]
    res = run_compare(smol, settings, prompts, max_new_tokens=64, batch_size=16)
    rep4 = {s.name: res.setting_summary(s.name)["metrics"]["seq_rep_4"]["mean"] for s in settings}
    assert rep4["repetition_penalty=1.3"] < rep4["greedy"], rep4
    assert rep4["no_repeat_ngram_size=3"] < rep4["greedy"], rep4
