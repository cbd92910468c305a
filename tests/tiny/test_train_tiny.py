"""`repcheck train` on the tiny seeded Llama: the methods move the probe the right way, the
checkpoint reloads, resuming is exact, LoRA merges, and bad input is refused."""

import json

import numpy as np
import pytest
import torch
from cli_helpers import assert_usage_error, run
from tiny_models import write_training_corpus

from repcheck import load_model, probe
from repcheck.errors import RepcheckError
from repcheck.train import TrainConfig, TrainingInterrupted, train

PROBE = ["The committee approved the new budget.", "Paris watched the army."]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_training_corpus(tmp_path_factory.mktemp("corpus") / "corpus.txt")


def config(tiny_llama, corpus, out, **kw):
    base = dict(
        model=str(tiny_llama),
        data=[str(corpus)],
        out=str(out),
        steps=30,
        batch_size=4,
        block_size=64,
        learning_rate=3e-3,
        warmup_steps=0,
        eval_repeats=3,
        eval_sentences=8,
        eval_prompts=2,
        eval_new_tokens=8,
        eval_fraction=0.1,
        device="cpu",
        precision="fp32",
        self_samples=0,  # the corpus only (self-generated text: its own test)
        lora=False,  # every weight, at the learning rate above (LoRA: its own tests)
        select_every=10,
    )
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def ditto_and_mle(tiny_llama, corpus, tmp_path_factory):
    out = {}
    for method in ("ditto", "mle"):
        out[method] = train(config(tiny_llama, corpus, tmp_path_factory.mktemp(method), method=method, rep_rate=0.7))
    return out


def test_ditto_lowers_the_last_copy_against_mle(ditto_and_mle, tiny_llama):
    tp = {}
    for method, result in ditto_and_mle.items():
        m = load_model(str(result.out), device="cpu")  # the saved checkpoint loads through from_pretrained
        tp[method] = probe(m, PROBE, repeats=4).per_copy()[-1]["tp"]
    assert tp["ditto"] < tp["mle"], tp
    report = ditto_and_mle["ditto"].report
    assert report["kind"] == "train" and report["training"]["steps"] == 30
    assert report["before"]["probe"]["tp_last"] == ditto_and_mle["mle"].report["before"]["probe"]["tp_last"]


def test_the_output_directory(ditto_and_mle):
    out = ditto_and_mle["ditto"].out
    names = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "config.json", "generation_config.json", "report.json", "log.jsonl"} <= names
    assert {"train_config.json", "before_after.png", "tokenizer.json"} <= names
    assert "checkpoints" not in names and "before.json" not in names  # working files are gone
    logs = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert any("loss_ditto" in e for e in logs) and any("loss_mle" in e for e in logs)
    validations = [e["validation"] for e in logs if "validation" in e]  # every validation, as it happened
    assert [v["step"] for v in validations] == [10, 20, 30]
    assert validations == ditto_and_mle["ditto"].report["training"]["selection"]["history"][1:]
    assert json.loads((out / "train_config.json").read_text())["method"] == "ditto"


def test_resume_gives_the_weights_of_an_uninterrupted_run(tiny_llama, corpus, tmp_path, monkeypatch):
    from repcheck.train import engine

    whole = train(config(tiny_llama, corpus, tmp_path / "whole", steps=6, save_steps=3))
    real = engine.ReportCallback.on_step_end

    def stop_at_4(self, args, state, control, **kw):
        real(self, args, state, control, **kw)
        if state.global_step == 4:
            raise KeyboardInterrupt

    monkeypatch.setattr(engine.ReportCallback, "on_step_end", stop_at_4)
    cfg = config(tiny_llama, corpus, tmp_path / "cut", steps=6, save_steps=3)
    with pytest.raises(TrainingInterrupted, match="checkpoint-3; continue with --resume"):
        train(cfg)
    monkeypatch.setattr(engine.ReportCallback, "on_step_end", real)
    with pytest.raises(RepcheckError, match="different end_scale"):  # another loss is another run
        train(config(tiny_llama, corpus, tmp_path / "cut", steps=6, save_steps=3, resume=True, end_scale=0.5))
    resumed = train(config(tiny_llama, corpus, tmp_path / "cut", steps=6, save_steps=3, resume=True))
    assert resumed.report["training"]["resumed_from"].endswith("checkpoint-3")
    a = load_model(str(whole.out), device="cpu").model.state_dict()
    b = load_model(str(resumed.out), device="cpu").model.state_dict()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6, msg=name)


def test_lora_merge_reproduces_the_adapter_model(tiny_llama, corpus, tmp_path):
    pytest.importorskip("peft")
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    merged = train(config(tiny_llama, corpus, tmp_path / "merged", steps=5, lora=True, lora_rank=4))
    adapter = train(config(tiny_llama, corpus, tmp_path / "adapter", steps=5, lora=True, lora_rank=4, merge=False))
    ids = torch.tensor([[1, 20, 30, 40, 50, 60]])
    with torch.no_grad():
        plain = AutoModelForCausalLM.from_pretrained(merged.out)(ids).logits
        peft_model = PeftModel.from_pretrained(
            AutoModelForCausalLM.from_pretrained(tiny_llama), adapter.out / "adapter"
        )
        via_adapter = peft_model(ids).logits
        base = AutoModelForCausalLM.from_pretrained(tiny_llama)(ids).logits
    torch.testing.assert_close(plain, via_adapter, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(plain, base, atol=1e-4)  # the adapter did learn something


@pytest.mark.parametrize(
    "method,extra",
    [
        ("ul-token", {}),
        ("ul-seq", {}),
        ("scalegrad", {}),
        ("ditto", {"free_copies": 1}),
        ("ditto", {"spare_ends": True}),
    ],
)
def test_every_method_trains_and_reports(tiny_llama, corpus, tmp_path, method, extra):
    r = train(
        config(
            tiny_llama, corpus, tmp_path / method, method=method, steps=4, seq_prefix=8, seq_continuation=12, **extra
        )
    )
    losses = {k for e in r.report["training"]["final_log"] for k in e if k.startswith("loss_")}
    assert r.report["training"]["steps"] == 4 and losses
    assert all(np.isfinite(row["after"]) for row in r.report["comparison"])


def test_cli_train_and_eval_only(tiny_llama, corpus, tmp_path):
    out = tmp_path / "cli"
    common = ["--data", corpus, "-m", tiny_llama, "--block-size", 64, "--eval-repeats", 3, "--device", "cpu",
              "--self-samples", 8, "--self-sampling", "temperature=1.0"]  # fmt: skip
    r = run("train", "--method", "mle", "--steps", 2, "--out", out, *common, "--json", "-q")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["kind"] == "train" and {row["metric"] for row in doc["comparison"]} >= {
        "probe.tp_last", "perplexity", "legit.pass_rate", "generation.mean_length", "generation.eos_rate",
        "generation.seq_rep_4_matched",
    }  # fmt: skip
    # the tiny Llama has no chat template and a 128-token context: the plain-text cases that fit
    legit = doc["before"]["legit"]
    assert legit["suite"]["name"] == "legit (plain-text cases)" and legit["skipped"]
    assert 40 <= legit["n"] + len(legit["skipped"]) < 155
    assert {r["category"] for r in doc["legit_by_category"]} >= {"list", "code", "refrain"}
    gen = doc["before"]["generation"]
    # 32 prompts, each answer as long as the 128-token context leaves room for (at most 256)
    assert 0 <= gen["eos_rate"] <= 1 and 0 < gen["mean_length"] <= 128 and len(gen["continuations"]) == 32
    assert doc["data"]["sources"][1]["self_generated"]["asked"] == 8
    assert doc["data"]["sources"][1]["self_generated"]["setting"] == "temperature=1.0"
    r = run(
        "train",
        "--eval-only",
        "--base",
        tiny_llama,
        "-m",
        out,
        "--out",
        tmp_path / "eval",
        *common[:2],
        "--block-size",
        64,
        "--eval-repeats",
        3,
    )
    assert r.exit_code == 0, r.output
    assert "TP at the last copy" in r.stdout and (tmp_path / "eval" / "before_after.png").exists()


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--method", "magic"], "--method"),
        (["--lambda", "0"], "--lambda"),
        (["--lambda", "1.5"], "--lambda"),
        (["--gamma", "0"], "--gamma"),
        (["--alpha", "-1"], "--alpha"),
        (["--steps", "0"], "--steps"),
        (["--no-merge", "--no-lora"], "--no-merge goes with LoRA"),
        (["--resume", "--overwrite"], "not both"),
        (["--free-copies", "-1"], "--free-copies"),
        (["--anchor", "magic"], "--anchor"),
        (["--asked-plain", "5"], "--asked-plain"),
        (["--self-sampling", "greedy"], "does not sample"),
        (["--self-sampling", "temperature="], "malformed setting"),
        (["--self-requests", "mine.txt", "--self-samples", "0"], "--self-requests needs"),
        (["--end-weight", "1", "--anchor", "mle"], "--anchor mle"),
        (["--end-weight", "-1"], "--end-weight"),
        (["--end-scale", "0.5", "--anchor", "mle"], "--anchor mle"),
        (["--end-scale", "0"], "out of range (0, 1]"),
        (["--end-scale", "2"], "--end-scale"),
        (["--chat-samples", "1.5"], "--chat-samples"),
    ],
)
def test_bad_options_are_refused_before_loading(args, needle):
    assert_usage_error(run("train", "-m", "/no/such/model", *args), needle)


def test_bad_corpora_and_models(tiny_llama, tiny_bert, tmp_path):
    common = ["-m", tiny_llama, "--block-size", 64, "--device", "cpu", "--out", tmp_path / "o", "--self-samples", 0]
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    assert_usage_error(run("train", "--data", empty, *common), "the training corpus is empty")
    one = tmp_path / "one.txt"
    one.write_text("Only one sentence here.\nAnd one more document without a second sentence\n")
    assert_usage_error(run("train", "--data", one, *common), "DITTO needs documents with at least 2 sentences")
    corpus = write_training_corpus(tmp_path / "c.txt")
    assert_usage_error(
        run("train", "--data", corpus, "-m", tiny_bert, "--out", tmp_path / "b"), "not a causal language model"
    )
    assert_usage_error(
        run("train", "--data", corpus, *common, "--lora", "--lora-target", "no_such_module"), "peft cannot wrap"
    )
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "mine.txt").write_text("x")
    assert_usage_error(run("train", "--data", corpus, "-m", tiny_llama, "--out", busy), "not empty", "--overwrite")
    assert_usage_error(
        run("train", "--data", corpus, "-m", tiny_llama, "--out", busy, "--resume"), "no complete checkpoint"
    )
    assert_usage_error(
        run("train", "--data", corpus, *common[:-2], "--self-requests", tmp_path / "none.txt"), "--self-requests"
    )
    assert_usage_error(run("train", "--data", corpus, *common[:-2], "--self-requests", empty), "--self-requests")
    assert not (tmp_path / "o").exists() and not (tmp_path / "b").exists()  # nothing written


@pytest.mark.parametrize("keep_logits", [True, False])
def test_validation_scores_each_sequence_as_it_would_be_alone(tiny_llama_model, monkeypatch, keep_logits):
    """The validation's batched, left-padded passes (with the head on the scored positions
    only, or on all of them for a model without ``logits_to_keep``) equal one plain forward
    pass per sequence."""
    from repcheck.train import select

    model = tiny_llama_model.model
    monkeypatch.setattr(select, "_keeps_logits", lambda m: keep_logits)
    gen = np.random.default_rng(0)
    seqs = [
        (gen.integers(3, 200, size=n).tolist(), start) for n, start in [(40, 35), (12, 1), (33, 20), (7, 6), (40, 1)]
    ]
    got = select._target_logp(model, seqs, "cpu")
    for (ids, start), lp in zip(seqs, got):
        with torch.no_grad():
            logp = model(input_ids=torch.tensor([ids])).logits[0, :-1].float().log_softmax(-1)
        want = logp.gather(-1, torch.tensor(ids[1:])[:, None]).squeeze(-1)[start - 1 :]
        assert lp.shape == (len(ids) - start,)
        torch.testing.assert_close(lp, want, atol=1e-4, rtol=1e-4)


def test_self_requests_are_the_requests_the_model_answers(chat_llama, corpus, tmp_path):
    from repcheck.train.mix import gather

    model = load_model(str(chat_llama), device="cpu")
    mine = tmp_path / "requests.txt"
    asked = ["Tell me about the weather in Oslo.", "The meeting went well because", "List our three products."]
    mine.write_text("\n".join(asked + asked[:1]) + "\n", encoding="utf-8")  # a duplicate: asked once
    cfg = dict(self_samples=8, self_new_tokens=16, self_sampling="temperature=1.0", self_requests=str(mine))
    data = gather(config(chat_llama, corpus, tmp_path / "a", **cfg), model)
    info = data.info["sources"][1]["self_generated"]
    assert info["asked"] == 3  # all of them, fewer than --self-samples
    from repcheck.train import selfgen

    own = selfgen.self_generated(model, 8, 16, 0, sampling="temperature=1.0", requests=asked)
    assert own.cached and len(own.documents) == info["kept"]  # the same generation, keyed by the requests
    assert all(any(r in doc for r in asked) for doc in own.documents)


def test_plain_mix_and_asked_plain_add_plain_text(chat_llama, corpus, tmp_path):
    from repcheck.train.mix import gather

    model = load_model(str(chat_llama), device="cpu")
    cfg = dict(self_samples=8, self_new_tokens=16, self_sampling="temperature=1.0")
    without = gather(config(chat_llama, corpus, tmp_path / "a", plain_mix=0.0, asked_plain=0.0, **cfg), model)
    with_plain = gather(config(chat_llama, corpus, tmp_path / "b", plain_mix=1.0, asked_plain=0.0, **cfg), model)
    chatted = with_plain.info["sources"][1]["self_generated"]["kept"]
    # every chat-formatted training document (the corpus' own are plain already) once more, as plain text
    assert without.info["plain_documents"] == 0 and 0 < with_plain.info["plain_documents"] <= chatted
    assert len(with_plain.blocks) > len(without.blocks)
    structures = gather(config(chat_llama, corpus, tmp_path / "c", plain_mix=0.0, asked_plain=0.5, **cfg), model)
    assert structures.info["plain_examples"] == round(0.5 * structures.info["train_documents"]) > 0
    assert without.info["plain_examples"] == 0 and len(structures.blocks) > len(without.blocks)
    # none of them is the model's own text (--anchor kl leaves them to MLE): the own tokens stay
    # those of the answers, less at most the stream's cut-off tail (under one block)
    own_before, own_after = sum(map(sum, without.own)), sum(map(sum, structures.own))
    assert own_before > 0 and abs(own_after - own_before) < 64


def test_chat_samples_put_ditto_s_samples_inside_their_conversation(chat_llama, corpus, tmp_path):
    """A chat_samples share of the conversations gives its pairs with the conversation's head
    (through the model's own chat template); the others and the user's text stay plain."""
    from repcheck.train.mix import Document, ditto_pairs
    from repcheck.train.selfgen import training_text

    tok = load_model(str(chat_llama), device="cpu").tokenizer
    answer = "The sea is calm today. The boats are out. Gulls follow them home. Night falls soon."
    talks = [
        Document(answer, training_text(tok, f"Tell me about day {i}.", answer, True, True), own=True) for i in range(4)
    ]
    user = [Document(answer, answer)]  # the user's text: no conversation around it
    for share, in_chat in ((0.0, 0), (0.5, 2), (1.0, 4)):
        pairs, n = ditto_pairs(
            config(chat_llama, corpus, tmp_path, chat_samples=share, block_size=512), tok, talks + user
        )
        heads = [tok.decode(p) for p, _ in pairs if "Tell me about day" in tok.decode(p)]
        assert n == len(heads) == 3 * in_chat  # each conversation's 3 sentences after its first
        assert len(pairs) == 3 * 5  # every document's pairs, in one form or the other
        assert all(
            h.rstrip().endswith(("The sea is calm today.", "The boats are out.", "Gulls follow them home."))
            for h in heads
        )


@pytest.mark.parametrize("lora", [True, False])
def test_anchor_kl_scores_own_text_against_the_base_model(chat_llama, corpus, tmp_path, monkeypatch, lora):
    """With --anchor kl every MLE step's targets on the model's own text come from the base
    model as it was before training (the adapter off, or a frozen copy), at every step."""
    from transformers import AutoModelForCausalLM

    from repcheck.train import losses

    base = AutoModelForCausalLM.from_pretrained(chat_llama).eval()
    seen = []
    real = losses.anchored

    def spy(logits, base_logits, ids, own, *rest):
        with torch.no_grad():
            want = base(input_ids=ids).logits
        seen.append((torch.allclose(base_logits, want, atol=1e-4), int(own.sum())))
        return real(logits, base_logits, ids, own, *rest)

    monkeypatch.setattr(losses, "anchored", spy)
    cfg = dict(self_samples=8, self_new_tokens=16, self_sampling="temperature=1.0", anchor="kl", rep_rate=0.5)
    extra = dict(lora_rank=4, learning_rate=1e-2) if lora else {}
    r = train(config(chat_llama, corpus, tmp_path / "kl", steps=8, lora=lora, select_every=0, **cfg, **extra))
    assert r.report["data"]["own_tokens"] > 0
    assert seen and all(same for same, _ in seen), seen  # the base model's logits, step after step
    assert any(n > 0 for _, n in seen)  # own text reached the KL
    moved = AutoModelForCausalLM.from_pretrained(r.out)
    assert not all(torch.equal(a, b) for a, b in zip(moved.state_dict().values(), base.state_dict().values()))


def test_end_weight_and_end_scale_use_the_run_s_end_tokens(chat_llama, corpus, tmp_path, monkeypatch):
    """--end-weight adds losses.end_hold on the anchored MLE steps, with the tokenizer's end
    tokens and the same base logits as the KL, and logs it as loss_end; --end-scale reaches
    the anchor's KL with the same end tokens."""
    from transformers import AutoTokenizer

    from repcheck.train import losses
    from repcheck.train.data import end_tokens

    seen, tilts = [], []
    real, real_anchored = losses.end_hold, losses.anchored

    def spy(logits, base_logits, own, ends, *args):
        seen.append((list(ends), int(own.sum())))
        return real(logits, base_logits, own, ends, *args)

    def spy_anchored(logits, base_logits, ids, own, ends=(), end_scale=1.0):
        tilts.append((list(ends), end_scale))
        return real_anchored(logits, base_logits, ids, own, ends, end_scale)

    monkeypatch.setattr(losses, "end_hold", spy)
    monkeypatch.setattr(losses, "anchored", spy_anchored)
    cfg = dict(self_samples=8, self_new_tokens=16, self_sampling="temperature=1.0", anchor="kl", rep_rate=0.5)
    r = train(
        config(chat_llama, corpus, tmp_path / "end", steps=6, select_every=0, end_weight=2.0, end_scale=0.5, **cfg)
    )
    want = end_tokens(AutoTokenizer.from_pretrained(chat_llama))
    assert want and seen and all(ends == want for ends, _ in seen)
    assert any(n > 0 for _, n in seen)
    assert tilts and all(t == (want, 0.5) for t in tilts)
    assert r.report["config"]["end_scale"] == 0.5
    logged = [json.loads(line) for line in open(r.out / "log.jsonl", encoding="utf-8")]
    assert any("loss_end" in entry for entry in logged)
