"""Batching never changes the text (issue 10): on the built-in model, prompts of very
different lengths give token-identical continuations at batch 1 and batch 16, for every preset
(the row-local samplers on the tiny model).

Before the fix, left padding (EOS ids) counted as context for the repetition penalty: with
repetition_penalty=1.3 three of these prompts that stop at EOS alone ran to the token limit
when batched with longer ones."""

import pytest

from repcheck.decoding import PRESETS, make_setting, parse_setting
from repcheck.generation import generate

pytestmark = pytest.mark.slow

PROMPTS = [
    "Hi",
    "I like Beijing because",
    "Once upon a time, in a small village at the edge of a great forest, there lived an old woodcutter and his "
    "three daughters, who",
    "Water",
    "The committee approved the new budget after a long debate, and then the chairman said that",
    "Why?",
]
#: the samplers that only reshape each row's distribution (no context, no padding to see) are
#: checked batched against unbatched on the tiny model (tests/tiny/test_compare_tiny.py); here
#: top_p stands for them on the real model
ROW_LOCAL = {"top_k", "temperature", "typical", "min_p"}
SETTINGS = [make_setting(name, params) for name, params in PRESETS.items() if name not in ROW_LOCAL] + [
    parse_setting("repetition_penalty=1.3"),
    parse_setting("repetition_penalty=1.3,penalty_last_n=16"),
]


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_batch_1_and_batch_16_give_the_same_tokens(smol, setting):
    batched = generate(smol, PROMPTS, setting, max_new_tokens=16, batch_size=16, seed=1)
    single = generate(smol, PROMPTS, setting, max_new_tokens=16, batch_size=1, seed=1)
    assert [g.token_ids for g in batched.generations] == [g.token_ids for g in single.generations]
    assert [g.finished for g in batched.generations] == [g.finished for g in single.generations]


def test_the_penalty_case_that_broke_stops_at_eos(smol):
    """The prompts that stop at EOS alone under repetition_penalty=1.3 also stop when batched."""
    s = parse_setting("repetition_penalty=1.3")
    batched = generate(smol, PROMPTS, s, max_new_tokens=40, batch_size=16)
    assert sum(g.finished for g in batched.generations) >= 2
