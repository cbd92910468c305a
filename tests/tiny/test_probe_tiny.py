"""The probe engine on tiny seeded models loaded through the real from_pretrained path."""

import numpy as np
import pytest
import torch

from repcheck import EncodedSentence, probe, random_sentences
from repcheck.errors import RepcheckError

SENTENCES = [
    "The committee approved the new budget after a long debate.",
    "Paris is the capital of France.",
    "The general led his army.",
    "Water boils.",
]


@pytest.fixture(params=["tiny_gpt2_model", "tiny_llama_model"])
def lm(request):
    return request.getfixturevalue(request.param)


def test_prefix_is_bos_or_eos(tiny_gpt2_model, tiny_llama_model):
    g = probe(tiny_gpt2_model, "Water boils.", repeats=2)
    assert g.prefix_ids == [tiny_gpt2_model.tokenizer.eos_token_id]  # GPT-2 has no BOS
    ll = probe(tiny_llama_model, "Water boils.", repeats=2, prefix="Paris")
    tok = tiny_llama_model.tokenizer
    assert ll.prefix_ids == [tok.bos_token_id] + tok("Paris", add_special_tokens=False)["input_ids"]


def test_matches_a_hand_computed_forward_pass(lm):
    """p[n, l] is the softmax at the position before the token: check against a manual pass."""
    r = probe(lm, "Paris is the capital of France.", repeats=3)
    s = r.sentences[0]
    ids = torch.tensor([r.prefix_ids + s.token_ids * 3])
    with torch.no_grad():
        probs = lm.model(ids).logits[0].float().softmax(-1)
    P, L = len(r.prefix_ids), len(s.token_ids)
    for n in range(3):
        for l in range(L):
            t = P + n * L + l
            assert s.p[n, l] == pytest.approx(probs[t - 1, ids[0, t]].item(), abs=1e-6)
            assert s.pmax[n, l] == pytest.approx(probs[t - 1].max().item(), abs=1e-6)
            assert s.argmax_ids[n, l] == probs[t - 1].argmax().item()


@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_alone_equals_inside_a_padded_batch(lm, padding_side):
    """The padding side is a load option of the hf backend; the numbers do not depend on it."""
    import dataclasses

    padded = dataclasses.replace(lm, padding_side=padding_side)  # the same weights, the other option
    batch = probe(padded, SENTENCES, repeats=4, batch_size=4)
    assert batch.model["padding_side"] == padding_side
    for i, text in enumerate(SENTENCES):
        alone = probe(lm, text, repeats=4).sentences[0]
        np.testing.assert_allclose(batch.sentences[i].p, alone.p, atol=1e-5)
        np.testing.assert_allclose(batch.sentences[i].pmax, alone.pmax, atol=1e-5)
        assert batch.sentences[i].text == text  # order preserved despite length sorting


def test_context_window_is_checked_before_running(tiny_gpt2_model):
    # tiny GPT-2 has 64 positions; prefix is 1 token.
    L = len(tiny_gpt2_model.tokenizer("Water boils.", add_special_tokens=False)["input_ids"])
    k_max = (64 - 1) // L
    probe(tiny_gpt2_model, "Water boils.", repeats=k_max)
    with pytest.raises(RepcheckError, match=f"largest K that fits is {k_max}"):
        probe(tiny_gpt2_model, "Water boils.", repeats=k_max + 1)


@pytest.mark.parametrize("bad,match", [("", "empty"), ("   ", "empty")])
def test_empty_sentences(tiny_gpt2_model, bad, match):
    with pytest.raises(RepcheckError, match=match):
        probe(tiny_gpt2_model, bad)


def test_repeats_must_be_positive(tiny_gpt2_model):
    with pytest.raises(RepcheckError, match="at least 1"):
        probe(tiny_gpt2_model, "Water boils.", repeats=0)


def test_random_sentences_are_seeded_and_probe_as_given(tiny_llama_model):
    tok = tiny_llama_model.tokenizer
    a = random_sentences(tok, 3, 5, seed=1)
    assert a == random_sentences(tok, 3, 5, seed=1) and a != random_sentences(tok, 3, 5, seed=2)
    assert all(len(e.token_ids) == 5 and not set(e.token_ids) & set(tok.all_special_ids) for e in a)
    r = probe(tiny_llama_model, a, repeats=3)
    assert [s.token_ids for s in r.sentences] == [list(e.token_ids) for e in a]


def test_result_shapes_and_frames(tiny_llama_model):
    r = probe(tiny_llama_model, SENTENCES[:2], repeats=5)
    assert r.repeats == 5 and len(r.sentences) == 2
    s = r.sentences[0]
    assert s.p.shape == s.pmax.shape == s.argmax_ids.shape == (5, len(s.token_ids))
    assert ((s.p > 0) & (s.p <= s.pmax + 1e-12) & (s.pmax <= 1)).all()
    assert len(r.mean_frame()) == 5 and list(r.to_frame()["sentence"].unique()) == [0, 1]
    assert r.provenance["tokens"] > 0 and r.settings["batch_size"] == 8


def test_progress_callback_reaches_total(tiny_gpt2_model):
    calls = []
    probe(tiny_gpt2_model, SENTENCES, repeats=2, batch_size=2, progress=lambda d, a, b: calls.append((a, b)))
    assert calls[0] == (0, 4) and calls[-1] == (4, 4)
    done = [a for a, _ in calls]
    assert done == sorted(done) and len(calls) >= 3  # batch_size 2: at least two batches


def test_pre_encoded_and_text_mix(tiny_gpt2_model):
    e = EncodedSentence("custom", (5, 6, 7))
    r = probe(tiny_gpt2_model, [e, "Water boils."], repeats=2)
    assert r.sentences[0].token_ids == [5, 6, 7] and r.sentences[1].text == "Water boils."
