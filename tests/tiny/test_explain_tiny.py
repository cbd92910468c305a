"""repcheck explain on tiny seeded models: the scores against a hand computation from the
model's own attention weights, the hooks against weight surgery, and a model trained to copy
whose copying heads the command must find and whose ablation must break the copying."""

import json

import numpy as np
import pytest
import torch
from cli_helpers import assert_usage_error, run

from repcheck import load_model, probe, random_sentences
from repcheck.backends.hf_hooks import ablated, layout, recorded
from repcheck.errors import RepcheckError
from repcheck.explain import explain
from repcheck.explain.ablation import Ablation
from repcheck.explain.scores import tl_induction_pattern, trace

SENTENCES = ["Paris is the capital of France.", "Water boils.", "The general led his army across the river."]


@pytest.fixture(scope="module", params=["tiny_llama", "tiny_gpt2"])
def eager(request):
    return load_model(str(request.getfixturevalue(request.param)), device="cpu", attn_implementation="eager")


@pytest.fixture(scope="module")
def copier(tiny_copier):
    return load_model(str(tiny_copier), device="cpu", attn_implementation="eager")


def _inputs(lm, texts, k):
    tok = lm.tokenizer
    prefix = [tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id]
    sents = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    return prefix, sents, [prefix + s * k for s in sents]


def _mlp_activations(model) -> tuple[dict, list]:
    """Neuron activations computed independently of repcheck's hook point: from the MLP's input
    (act_fn(gate(x)) * up(x) for Llama, act(c_fc(x)) for GPT-2)."""
    acts, handles = {}, []
    blocks = model.model.layers if hasattr(model, "model") else model.transformer.h
    for i, b in enumerate(blocks):
        mlp = b.mlp

        def hook(m, args, i=i):
            x = args[0]
            acts[i] = m.act_fn(m.gate_proj(x)) * m.up_proj(x) if hasattr(m, "gate_proj") else m.act(m.c_fc(x))

        handles.append(mlp.register_forward_pre_hook(hook))
    return acts, handles


def test_scores_match_a_hand_computation(eager):
    K = 3
    P, sents, seqs = _inputs(eager, SENTENCES, K)
    tr = trace(eager, seqs, len(P), [len(s) for s in sents], K, batch_size=2)
    lay = layout(eager.model)
    ind = np.zeros((lay.layers, lay.heads))
    dup, anyc, tl = np.zeros_like(ind), np.zeros_like(ind), np.zeros_like(ind)
    prof = np.zeros((lay.layers, lay.heads, K))
    rise = np.zeros((lay.layers, lay.neurons))
    for seq, s in zip(seqs, sents, strict=True):
        L, first = len(s), len(P)
        acts, handles = _mlp_activations(eager.model)
        with torch.no_grad():
            att = eager.model(torch.tensor([seq]), output_attentions=True).attentions
        for h in handles:
            h.remove()
        d = tl_induction_pattern(torch.tensor(seq))
        for layer in range(lay.layers):
            a = att[layer][0]
            for head in range(lay.heads):
                rows = list(range(first + L, len(seq)))
                ind[layer, head] += np.mean([a[head, t, t - L + 1].item() for t in rows])
                dup[layer, head] += np.mean([a[head, t, t - L].item() for t in rows])
                anyc[layer, head] += np.mean(
                    [sum(a[head, t, t - k * L + 1].item() for k in range(1, K) if t - k * L + 1 > first) for t in rows]
                )
                for n in range(1, K):
                    cols = range(first + n * L, first + (n + 1) * L)
                    prof[layer, head, n] += np.mean([a[head, t, t - L + 1].item() for t in cols])
                tl[layer, head] += ((a[head] * d).sum() / a[head].sum()).item()
            x = acts[layer][0]
            rise[layer] += (x[first + L :].mean(0) - x[first : first + L].mean(0)).numpy()
    n = len(seqs)
    np.testing.assert_allclose(tr.induction, ind / n, atol=1e-6)
    np.testing.assert_allclose(tr.duplicate_token, dup / n, atol=1e-6)
    np.testing.assert_allclose(tr.induction_any, anyc / n, atol=1e-6)
    np.testing.assert_allclose(tr.tl_induction, tl / n, atol=1e-6)
    np.testing.assert_allclose(tr.profile[:, :, 1:], prof[:, :, 1:] / n, atol=1e-6)
    assert np.isnan(tr.profile[:, :, 0]).all()
    np.testing.assert_allclose(tr.neuron_rise, rise / n, atol=1e-5)


def test_scores_do_not_depend_on_batching(eager):
    P, sents, seqs = _inputs(eager, SENTENCES, 3)
    one = trace(eager, seqs, len(P), [len(s) for s in sents], 3, batch_size=1)
    three = trace(eager, seqs, len(P), [len(s) for s in sents], 3, batch_size=3)  # left-padded
    for name in ("induction", "induction_any", "duplicate_token", "tl_induction", "neuron_rise"):
        np.testing.assert_allclose(getattr(one, name), getattr(three, name), atol=1e-5, err_msg=name)


def test_ablating_a_head_equals_zeroing_its_output_weights(tiny_llama):
    eager = load_model(str(tiny_llama), device="cpu", attn_implementation="eager")
    surgery = load_model(str(tiny_llama), device="cpu")
    lay = layout(surgery.model)
    with torch.no_grad():  # head 1 of layer 0 writes through o_proj's input columns 1*d .. 2*d-1
        surgery.model.model.layers[0].self_attn.o_proj.weight[:, lay.head_dim : 2 * lay.head_dim] = 0
    cut_heads = Ablation.of_heads("0.1")
    with cut_heads.applied(eager):
        hooked = probe(eager, SENTENCES, repeats=3, settings=cut_heads.to_setting())
    cut = probe(surgery, SENTENCES, repeats=3)
    plain = probe(eager, SENTENCES, repeats=3)
    for a, b, c in zip(hooked.sentences, cut.sentences, plain.sentences, strict=True):
        np.testing.assert_allclose(a.p, b.p, atol=1e-6)
        assert np.abs(a.p - c.p).max() > 1e-4  # and the head mattered
    assert hooked.settings["ablate_heads"] == [[0, 1]]


def test_hooks_are_removed_after_the_block_and_after_an_error(eager):
    lay = layout(eager.model)
    modules = lay.out_proj + lay.down_proj

    def hooks():
        return sum(len(m._forward_pre_hooks) for m in modules)

    with ablated(eager.model, heads=[(0, 0)], neurons=[(1, 3)]):
        assert hooks() == 2
    assert hooks() == 0
    with pytest.raises(RuntimeError), recorded(eager.model, "heads", lambda *a: None):
        assert hooks() == lay.layers
        raise RuntimeError("boom")
    assert hooks() == 0
    with pytest.raises(RepcheckError, match=r"head 9\.0 does not exist"), Ablation.of_heads("9.0").applied(eager):
        probe(eager, "Water boils.", repeats=2)
    assert hooks() == 0


def test_mean_ablation_writes_the_mean(eager):
    lay = layout(eager.model)
    means = {0: torch.arange(lay.heads * lay.head_dim, dtype=torch.float32)}
    seen = {}
    with (
        ablated(eager.model, heads=[(0, 1)], head_means=means),
        recorded(eager.model, "heads", seen.__setitem__),
    ):
        probe(eager, "Water boils.", repeats=2)
    cols = slice(lay.head_dim, 2 * lay.head_dim)
    x = seen[0][0]  # [T, heads * head_dim]
    assert torch.equal(x[:, cols], means[0][cols].expand(x.shape[0], -1))
    assert not torch.equal(x[:, : lay.head_dim], means[0][: lay.head_dim].expand(x.shape[0], -1))


def test_explain_baseline_is_the_plain_probe_and_controls_are_seeded(eager):
    r = explain(eager, SENTENCES[:2], repeats=3, top=2, random_draws=2, seed=1)
    plain = probe(eager, SENTENCES[:2], repeats=3)
    base = r.ablations["baseline"].probes[0]
    for a, b in zip(base.sentences, plain.sentences, strict=True):
        np.testing.assert_array_equal(a.p, b.p)
    top = set(r.top_heads)
    assert len(top) == 2 and all(not (set(map(tuple, d)) & top) for d in r.ablations["random_heads"].units)
    again = explain(eager, SENTENCES[:2], repeats=3, top=2, random_draws=2, seed=1)
    assert again.ablations["random_heads"].units == r.ablations["random_heads"].units
    assert again.to_dict()["ablations"] == r.to_dict()["ablations"]
    frame = r.heads_frame()
    lay = layout(eager.model)
    assert len(frame) == lay.layers * lay.heads and list(frame["rank"]) == list(range(1, len(frame) + 1))
    assert frame["induction"].is_monotonic_decreasing and frame["top"].sum() == 2
    assert len(r.neurons_frame()) <= 200


def test_the_copying_heads_are_found_and_their_ablation_breaks_the_copy(copier):
    sents = random_sentences(copier.tokenizer, 6, 12, seed=3)  # the period the copier learned
    r = explain(copier, sents, repeats=3, top=4, random_draws=3, seed=0)
    frame = r.heads_frame()
    top = frame[frame["top"]]
    assert set(top["layer"]) == {1}, frame  # all four copying heads live in layer 1
    assert (top["induction"] > 0.5).all() and (top["duplicate_token"] < 0.05).all()
    assert (top["tl_induction"] > 0.3).all()
    assert (frame[~frame["top"]]["induction"] < 0.2).all()
    ab = r.to_dict()["ablations"]
    assert ab["baseline"]["tp_last"] > 0.3  # it copies
    assert ab["top_heads"]["tp_last"] < 0.05  # not without its copying heads
    assert abs(ab["random_heads"]["tp_last"] - ab["baseline"]["tp_last"]) < 0.1  # the control barely moves
    prof = r.to_dict()["profile"]
    assert len(prof["induction"]) == 4 and len(prof["tp"]) == 3


def test_explain_command_writes_its_outputs(tiny_copier, tmp_path):
    out = tmp_path / "why"
    res = run("explain", "--random", "3", "--length", "12", "-k", "3", "--top", "4", "--random-draws", "2",
              "--model", tiny_copier, "--out", out, "-q")  # fmt: skip
    assert res.exit_code == 0, res.output
    names = {p.name for p in out.iterdir()}
    assert {"summary.json", "heads.csv", "neurons.csv", "heads.png", "ablation.png", "profile.png"} <= names
    doc = json.loads((out / "summary.json").read_text())
    assert doc["kind"] == "explain" and doc["schema_version"] == 2
    assert doc["settings"]["attn_implementation"] == "eager" and doc["repeats"] == 3
    assert {tuple(h) for h in doc["top_heads"]} == {(1, 0), (1, 1), (1, 2), (1, 3)}
    redrawn = run("plot", out, "--format", "svg", "--out", tmp_path / "svg", "-q")
    assert redrawn.exit_code == 0, redrawn.output
    assert {p.name for p in (tmp_path / "svg").iterdir()} >= {"heads.svg", "ablation.svg", "profile.svg"}
    shown = run("explain", "--random", "2", "--length", "12", "-k", "3", "--top", "2", "--random-draws", "1",
                "--model", tiny_copier)  # fmt: skip
    assert shown.exit_code == 0, shown.output
    assert "top heads by induction score" in shown.stdout and "random heads" in shown.stdout
    as_json = run("explain", "--random", "2", "--length", "12", "--top", "2", "--random-draws", "1",
                  "--model", tiny_copier, "--json")  # fmt: skip
    assert json.loads(as_json.stdout)["repeats"] == 2  # K=2 with --random: [BOS] + R + R


def test_ablate_heads_on_probe_and_compare(tiny_copier, tmp_path):
    res = run("probe", "--random", "2", "--length", "12", "-k", "3", "--model", tiny_copier,
              "--ablate-heads", "1.0,1.1,1.2,1.3", "--json")  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["settings"]["ablate_heads"] == [[1, 0], [1, 1], [1, 2], [1, 3]]
    plain = json.loads(
        run("probe", "--random", "2", "--length", "12", "-k", "3", "--model", tiny_copier, "--json").stdout
    )
    assert doc["per_copy"][-1]["tp"] < 0.05 < plain["per_copy"][-1]["tp"]
    res = run("compare", "--model", tiny_copier, "-s", "greedy", "--probe", "Paris is the capital.", "-k", "2",
              "--ablate-heads", "1.0", "--json")  # fmt: skip
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["explain", "x", "--top", "0"], ["--top"]),
        (
            ["explain", "x", "--top", "8"],
            ["--top: 8 top heads and 8 random ones for the control need 16 heads; the model has 8: ask for at most 4"],
        ),
        (["explain", "x", "--top", "5"], ["need 10 heads; the model has 8"]),  # a numpy ValueError before
        (["explain", "x", "--top", "2", "--neurons", "0.6"], ["--neurons: ", "random ones for the control", "at most"]),
        (["explain", "x", "--random-draws", "0"], ["--random-draws"]),
        (["explain", "x", "-k", "1"], ["--repeats"]),
        (["explain", "x", "--neurons", "0"], ["--neurons"]),
        (["explain"], ["SENTENCE"]),
        (["explain", "x", "--random", "2"], ["one of"]),
        (["explain", ""], ["empty"]),
        (["probe", "x", "--ablate-heads", "99.0"], ["head 99.0 does not exist"]),
        (["probe", "x", "--ablate-heads", "one"], ["LAYER.HEAD"]),
        (["compare", "-s", "greedy", "--prompt", "x", "--ablate-heads", "1.0"], ["--probe"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tiny_copier, tmp_path, args, needles):
    out = tmp_path / "out"
    res = run(*args, "--model", tiny_copier, *(["--out", out] if args[0] == "explain" else []))
    assert_usage_error(res, *needles)
    assert not out.exists()


def test_unsupported_architecture_is_refused(tmp_path):
    from tiny_models import llama_tokenizer
    from transformers import OPTConfig, OPTForCausalLM

    tok = llama_tokenizer()
    cfg = OPTConfig(vocab_size=len(tok), hidden_size=16, ffn_dim=32, num_hidden_layers=1, num_attention_heads=2,
                    word_embed_proj_dim=16, max_position_embeddings=64)  # fmt: skip
    OPTForCausalLM(cfg).save_pretrained(tmp_path / "opt")
    tok.save_pretrained(tmp_path / "opt")
    res = run("explain", "Paris is the capital.", "--model", tmp_path / "opt", "--out", tmp_path / "o")
    assert_usage_error(res, "cannot find the heads and neurons", "Llama family")
    assert not (tmp_path / "o").exists()
    res = run("probe", "Paris is the capital.", "--model", tmp_path / "opt", "--ablate-heads", "0.0")
    assert_usage_error(res, "cannot find the heads")


def test_explain_refuses_sdpa_attention(tiny_llama):
    lm = load_model(str(tiny_llama), device="cpu", attn_implementation="sdpa")
    with pytest.raises(RepcheckError, match="eager attention"):
        explain(lm, "Water boils.", repeats=2, top=1, random_draws=1)
