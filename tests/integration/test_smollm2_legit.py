"""The legitimate-repetition suite on the built-in SmolLM2: its chat cases render through the
model's own template, greedy decoding passes a good share, and a strong repetition penalty
breaks most of what greedy passes (the finding the suite exists to show)."""

import pytest

from repcheck.decoding import parse_setting
from repcheck.legit import LegitSuite, load_legit_suite, run_legit

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sample():
    """Four cases of every category of the shipped suite (36 of 155), chat and plain."""
    suite = load_legit_suite()
    picked = [c for cat in suite.categories for c in [c for c in suite.cases if c.category == cat][:4]]
    return LegitSuite("legit sample", tuple(picked))


def test_the_builtin_has_the_template_the_suite_needs(smol):
    from repcheck.backends.spec import chat_template_on_disk
    from repcheck.prompts import Prompt, has_chat_template, render

    assert has_chat_template(smol.tokenizer) and chat_template_on_disk("smollm2-135m") is True
    ids = render(smol.tokenizer, Prompt(messages=({"role": "user", "content": "Repeat exactly: hi."},)))
    text = smol.tokenizer.decode(ids)
    assert text.startswith("<|im_start|>system") and text.endswith("<|im_start|>assistant\n")


def test_a_strong_repetition_penalty_breaks_legitimate_repetition(smol, sample):
    greedy = run_legit(smol, sample, parse_setting("greedy"))
    penalized = run_legit(smol, sample, parse_setting("repetition_penalty=1.5"))
    assert greedy.pass_rate >= 0.4, [(c.id, c.text) for c in greedy.cases if not c.passed]
    assert penalized.pass_rate <= greedy.pass_rate - 0.2
    broken = {c.id for c in greedy.cases if c.passed} - {c.id for c in penalized.cases if c.passed}
    assert any(i.startswith(("code", "table", "copy")) for i in broken)
