"""The probe in chat form: copies as the assistant's answer to a user turn, and the turn-level
probe (the same answer to K different questions), each equal to a forward pass computed here."""

import numpy as np
import pytest
import torch
from cli_helpers import assert_usage_error, run

from repcheck import load_model
from repcheck.probing import CHAT_USER, TURN_QUESTIONS, probe, probe_turns
from repcheck.prompts import Prompt, render

SENTENCE = "Paris is the capital of France."


@pytest.fixture(scope="module")
def chat_model(chat_llama):
    return load_model(str(chat_llama), device="cpu")


def _probs(model, ids):
    with torch.no_grad():
        logp = model.model(torch.tensor([ids])).logits[0].double().log_softmax(-1)
    return logp


def test_the_chat_probe_puts_the_copies_in_the_assistant_turn(chat_model):
    result = probe(chat_model, [SENTENCE], repeats=3, chat=CHAT_USER)
    head = render(chat_model.tokenizer, Prompt(messages=({"role": "user", "content": CHAT_USER},)))
    assert result.prefix_ids == head and result.settings["layout"] == "chat"
    s = result.sentences[0]
    L = len(s.token_ids)
    ids = head + list(s.token_ids) * 3
    logp = _probs(chat_model, ids)
    for n in range(3):
        for l in range(L):
            t = len(head) + n * L + l
            assert s.p[n, l] == pytest.approx(float(logp[t - 1, ids[t]].exp()), rel=1e-4)


def test_the_turn_probe_reads_each_turns_answer(chat_model):
    result = probe_turns(chat_model, [SENTENCE], repeats=2)
    s = result.sentences[0]
    tok = chat_model.tokenizer
    messages = []
    for q in TURN_QUESTIONS[:2]:
        messages += [{"role": "user", "content": q}, {"role": "assistant", "content": SENTENCE}]
    ids = tok(tok.apply_chat_template(messages, tokenize=False), add_special_tokens=False)["input_ids"]
    L = len(s.token_ids)
    starts = [i for i in range(len(ids) - L + 1) if list(ids[i : i + L]) == list(s.token_ids)]
    assert len(starts) == 2 and result.settings["layout"] == "turns"
    logp = _probs(chat_model, ids)
    expected = np.array([[float(logp[st + l - 1, ids[st + l]].exp()) for l in range(L)] for st in starts])
    np.testing.assert_allclose(s.p, expected, rtol=1e-4)


def test_chat_probes_on_the_cli(chat_llama, tiny_llama, tmp_path):
    res = run("probe", SENTENCE, "-k", 2, "--turns", "--model", chat_llama, "--json")
    assert res.exit_code == 0, res.output
    res = run("probe", SENTENCE, "-k", 3, "--chat", "--chat-user", "Say it.", "--model", chat_llama, "--json")
    assert res.exit_code == 0, res.output
    assert_usage_error(run("probe", SENTENCE, "--chat", "--model", tiny_llama), "has no chat template")
    assert_usage_error(
        run("probe", SENTENCE, "--chat-user", "x", "--model", chat_llama), "--chat-user goes with --chat"
    )
    assert_usage_error(run("probe", SENTENCE, "--turns", "--prefix", "x", "--model", chat_llama), "--turns")
    assert_usage_error(run("probe", SENTENCE, "-k", 6, "--turns", "--model", chat_llama), "context window")


def test_diff_in_chat_form(chat_llama, tmp_path):
    import json

    res = run("diff", SENTENCE, "-m", chat_llama, "-m", chat_llama, "-k", 2, "--chat", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert all(r["settings"]["layout"] == "chat" for r in doc["runs"])
