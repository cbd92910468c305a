"""The training recipe's pieces without a model: asked-for repetition templates (right
answers, never the legit suite's cases), DITTO samples joined as running text, the step
selection's rule."""

import json
import math

import pytest

from repcheck.legit import load_legit_suite
from repcheck.train.data import repetition_pairs, separator
from repcheck.train.templates import CATEGORIES, examples

SENTENCES = [
    "The harbor was quiet before the storm arrived.",
    "Children played in the square until dark.",
    "A new bridge connects the two halves of the town.",
    "The baker opens his shop at five every morning.",
    "Rain fell on the roofs for three days in a row.",
]


def test_templates_cover_the_categories_with_right_answers():
    exs = examples(64, SENTENCES, seed=0)
    assert {e.category for e in exs} == set(CATEGORIES)
    for e in exs:
        if e.category == "copy" and e.request.startswith("Copy this sentence exactly: "):
            assert e.answer == e.request.removeprefix("Copy this sentence exactly: ")
        if e.category == "json":
            doc = json.loads(e.answer)
            assert [o["id"] for o in doc] == list(range(1, len(doc) + 1))
            assert json.loads(e.request.split("\n", 1)[1]) == doc[:-1]
        if e.category == "list" and e.request.startswith("Count from"):
            a, b = (int(w.rstrip(",.")) for w in e.request.split()[2:5:2])
            assert e.answer == ", ".join(map(str, range(a, b + 1)))
        if e.category == "code":
            assert e.answer.startswith(e.request.split("\n", 1)[1])  # the shown branches, then the asked one
        if e.category == "refrain":  # the song as shown, finished with the rest of its chorus
            shown = e.request.split("\n", 1)[1]
            assert e.answer.startswith(shown) and len(e.answer) > len(shown)


def test_no_template_request_is_a_legit_suite_case():
    suite = load_legit_suite()
    asked = {c.prompt.shown().strip() for c in suite.cases}
    texts = {c.prompt.text for c in suite.cases if c.prompt.text}
    for e in examples(400, SENTENCES, seed=3):
        assert e.request.strip() not in asked and e.request not in texts


def test_structure_examples_are_their_answer_alone():
    from repcheck.train.templates import STRUCTURES

    got = examples(10, SENTENCES, seed=3, categories=STRUCTURES)
    assert [e.category for e in got] == list(STRUCTURES) * 2
    for e in got:
        assert e.plain == e.answer and e.answer not in e.request  # the whole structure, not the request
    for refrain in examples(40, SENTENCES, seed=3, categories=("refrain",)):
        last = refrain.plain.rstrip().split("\n")[-1]
        assert refrain.plain.count(last) >= 2  # the chorus comes back, as a refrain does
    assert all(e.plain is None for e in examples(8, SENTENCES, seed=3) if e.category in ("copy", "quote", "again"))


def test_examples_are_seeded():
    assert examples(10, SENTENCES, 1) == examples(10, SENTENCES, 1) != examples(10, SENTENCES, 2)


def test_ditto_copies_are_joined_as_running_text():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(["[UNK]", "Ġa", "Ġb", "Ġc", "a", "b", "c", ".", "Ġ."])},
                                     unk_token="[UNK]"))  # fmt: skip
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    t = PreTrainedTokenizerFast(tokenizer_object=tok)
    pairs = repetition_pairs(t, ["a b. c a."], block_size=32)
    ((prefix, copy),) = pairs
    assert t.convert_ids_to_tokens(copy)[0] == "Ġc"  # the space before the sentence belongs to each copy
    assert t.convert_ids_to_tokens(prefix) == ["a", "Ġb", "."]  # the running text before it, no BOS


def test_a_head_puts_the_sample_inside_its_conversation():
    """--chat-samples: the head (the request, the opened turn) opens every prefix, then the
    answer's last whole sentences that fit in half of max_prefix; a pair with none is skipped."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["[UNK]", "<u>", "<a>", "a", "b", "c", "d", "e", "."]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    t = PreTrainedTokenizerFast(tokenizer_object=tok)
    doc = "a b c d . e . c ."  # sentences of 5, 2 and 2 tokens
    plain = repetition_pairs(t, [doc], block_size=32, max_prefix=6)
    assert [t.convert_ids_to_tokens(p) for p, _ in plain] == [
        ["a", "b", "c", "d", "."],
        ["b", "c", "d", ".", "e", "."],
    ]  # the last max_prefix tokens
    chat = repetition_pairs(t, [doc], block_size=32, max_prefix=6, heads=["<u> <a>"])
    # the first sentence (5 tokens) does not fit in 3: skipped; then "e ." alone (whole sentences only)
    ((prefix, copy),) = chat
    assert t.convert_ids_to_tokens(prefix) == ["<u>", "<a>", "e", "."] and t.convert_ids_to_tokens(copy) == ["c", "."]
    assert repetition_pairs(t, [doc], 32, 6, heads=[""]) == plain  # no head: plain text, as before
    with pytest.raises(ValueError):
        repetition_pairs(t, [doc, doc], 32, heads=["<u>"])  # one head per document


def test_free_copies_move_the_penalty_to_a_later_copy():
    from repcheck.train.data import repetition_sample

    prefix, sentence = [7, 8, 9], [1, 2]
    paper = repetition_sample(prefix, sentence, 10)
    assert paper.input_ids == (7, 8, 9, 1, 2, 1, 2, 1, 2, 1) and paper.period == 2
    assert paper.start == 5 and paper.input_ids[paper.start + 1] == 2  # target 5 is token 6: copy 2, its 2nd token
    once = repetition_sample(prefix, sentence, 10, free_copies=1)
    assert once.input_ids == paper.input_ids and once.start == paper.start + 2  # one copy later


def test_marked_blocks_carry_each_documents_mark_through_the_cut():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from repcheck.train.data import marked_blocks, text_blocks

    words = ["[UNK]", "<s>", "</s>", "a", "b", "c", "d", "e"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    t = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>")
    docs, ends, marks = ["a b c", "d e", "a a a a"], [True, False, True], [True, False, True]
    blocks, flags = marked_blocks(t, docs, 4, ends, marks)
    assert blocks == text_blocks(t, docs, 4, ends)  # the same cut
    # stream: a b c </s> | d e | a a a a </s>; width 3 after each block's <s>
    assert [t.convert_ids_to_tokens(b) for b in blocks] == [
        ["<s>", "a", "b", "c"], ["<s>", "</s>", "d", "e"], ["<s>", "a", "a", "a"],
    ]  # fmt: skip
    assert flags == [[False, True, True, True], [False, True, False, False], [False, True, True, True]]
    # a document in segments: each segment's own flag, the EOS after it the last one's
    blocks, flags = marked_blocks(t, [[("a b", False), ("c", True)], "d e"], 3, [True, False], [False, True])
    assert [t.convert_ids_to_tokens(b) for b in blocks] == [["<s>", "a", "b"], ["<s>", "c", "</s>"], ["<s>", "d", "e"]]
    assert flags == [[False, False, False], [False, True, True], [False, True, True]]


def test_the_separator_of_cjk_is_nothing():
    assert separator("北京是首都。") == "" and separator("Paris is.") == " "


def _validate(sel, values, model, before_each=lambda step: None, steps=3):
    """Drive ``sel`` through steps 1..``steps`` as Trainer would (until it stops the run), its
    measurements taken from ``values``; returns the Trainer control it set."""
    sel.measure = lambda model: next(values)

    class State:
        max_steps, global_step = 10, 0

    class Control:
        should_training_stop = False

    state, control = State(), Control()
    for step in range(1, steps + 1):
        state.global_step = step
        before_each(step)
        sel.on_step_end(None, state, control, model=model)
        if control.should_training_stop:
            break
    return control


def test_selection_keeps_the_lowest_tp_within_the_margin():
    import torch

    from repcheck.train.select import Selection, ValidationSet

    sel = Selection(ValidationSet([], [], []), every=1, margin=0.1, patience=2, asked_margin=0.1)
    sel.base = {"tp_last": 0.9, "asked_logp": -1.0, "text_logp": -2.0}
    values = iter([
        {"tp_last": 0.5, "asked_logp": -1.05, "text_logp": -2.0},  # admissible
        {"tp_last": 0.2, "asked_logp": -1.5, "text_logp": -2.0},  # lower TP, but copying suffered
        {"tp_last": 0.498, "asked_logp": -1.0, "text_logp": -2.05},  # admissible, not better by enough
    ])  # fmt: skip
    model = torch.nn.Linear(2, 2)
    control = _validate(sel, values, model)
    assert sel.best["step"] == 1 and control.should_training_stop  # two validations without a better step
    assert [h["admissible"] for h in sel.history] == [True, False, True]
    report = sel.restore(model)
    assert report["kept_step"] == 1 and report["stopped_early"]
    assert not math.isnan(report["base"]["tp_last"])


def test_with_no_admissible_step_the_least_damaged_one_is_kept():
    import torch

    from repcheck.train.select import Selection, ValidationSet

    sel = Selection(ValidationSet([], [], []), every=1, margin=0.1, patience=3, asked_margin=0.1)
    sel.base = {"tp_last": 0.9, "asked_logp": -1.0, "text_logp": -2.0}
    values = iter([
        {"tp_last": 0.3, "asked_logp": -1.5, "text_logp": -2.0},  # 0.4 beyond the margin
        {"tp_last": 0.4, "asked_logp": -1.2, "text_logp": -2.15},  # 0.1 beyond: the least damaged
        {"tp_last": 0.1, "asked_logp": -1.9, "text_logp": -2.0},  # lowest TP, most damaged
    ])  # fmt: skip
    model = torch.nn.Linear(2, 2)
    weights = {}

    def set_weights(step):  # each step's weights differ, so the kept ones can be told apart
        with torch.no_grad():
            model.weight.fill_(step)
        weights[step] = model.weight.clone()

    control = _validate(sel, values, model, before_each=set_weights)
    kept = weights[2]
    assert not control.should_training_stop  # patience counts from the first admissible step
    assert not any(h["admissible"] for h in sel.history)
    report = sel.restore(model)
    assert report["kept_step"] == 2 and "fell least" in report["note"]
    assert torch.equal(model.weight, kept)  # its weights, not the last step's


def test_patience_counts_from_the_first_admissible_step():
    """DITTO's default overshoots first (inadmissible at steps 25 and 50), then recovers: the
    run goes on until a step is admissible, and stops ``patience`` validations after the best."""
    import torch

    from repcheck.train.select import Selection, ValidationSet

    sel = Selection(ValidationSet([], [], []), every=1, margin=0.1, patience=2, asked_margin=0.1)
    sel.base = {"tp_last": 0.9, "asked_logp": -1.0, "text_logp": -2.0}
    bad, good = {"asked_logp": -1.5, "text_logp": -2.0}, {"asked_logp": -1.0, "text_logp": -2.0}
    values = iter([
        {"tp_last": 0.2, **bad}, {"tp_last": 0.25, **bad}, {"tp_last": 0.4, **good},
        {"tp_last": 0.3, **good}, {"tp_last": 0.31, **good}, {"tp_last": 0.3, **good}, {"tp_last": 0.1, **good},
    ])  # fmt: skip
    model = torch.nn.Linear(2, 2)
    control = _validate(sel, values, model, steps=7)
    assert control.should_training_stop and sel.history[-1]["step"] == 6  # two after step 4, the best
    report = sel.restore(model)
    assert report["kept_step"] == 4 and report["stopped_early"] and report["note"] is None


def test_by_default_a_step_may_not_copy_on_request_worse_than_the_base():
    """The default margins: held-out text may lose 0.15 nats per token (every method loses a
    little), the asked-for answers nothing. A step with the lowest TP whose asked-for answers
    fell below the base's is passed over for a later one that kept them (seed 2 of the
    default's data kept such a step and lost refrains and code on the legit suite)."""
    import torch

    from repcheck.train.config import TrainConfig
    from repcheck.train.select import Selection, ValidationSet

    cfg = TrainConfig()
    assert (cfg.select_margin, cfg.select_asked_margin) == (0.15, 0.0)
    sel = Selection(ValidationSet([], [], []), every=1, margin=cfg.select_margin, patience=2,
                    asked_margin=cfg.select_asked_margin)  # fmt: skip
    sel.base = {"tp_last": 0.95, "asked_logp": -0.261, "text_logp": -1.951}
    values = iter([  # seed 2's validations at steps 50 to 150
        {"tp_last": 0.337, "asked_logp": -0.370, "text_logp": -2.070},
        {"tp_last": 0.287, "asked_logp": -0.316, "text_logp": -2.040},
        {"tp_last": 0.275, "asked_logp": -0.324, "text_logp": -2.036},
        {"tp_last": 0.300, "asked_logp": -0.268, "text_logp": -2.019},
        {"tp_last": 0.295, "asked_logp": -0.249, "text_logp": -2.017},
    ])  # fmt: skip
    _validate(sel, values, torch.nn.Linear(2, 2), steps=5)
    assert [h["admissible"] for h in sel.history] == [False] * 4 + [True]
    assert sel.best["step"] == 5
    sel.asked_margin = 0.15  # the earlier rule, one margin for both: the lowest TP, step 3
    assert [sel.admissible(h) for h in sel.history] == [True] * 5
    assert min(sel.history, key=lambda h: h["tp_last"])["step"] == 3


@pytest.mark.parametrize("n", [0, 5])
def test_instructions_are_distinct_and_seeded(n):
    from repcheck.train.selfgen import instructions

    a = instructions(n, 0)
    assert len(set(a)) == n and a == instructions(n, 0)
    prompts = {line.strip() for line in open("sample_prompts/open_ended.txt", encoding="utf-8")}
    assert not set(a) & prompts


def test_instructions_can_be_the_user_s_requests():
    from repcheck.train.selfgen import instructions

    mine = ["b?", "a.", " b? ", "", "c"]
    got = instructions(10, 0, mine)
    assert sorted(got) == ["a.", "b?", "c"] and got == instructions(10, 0, mine)  # each once, seeded
    assert len(instructions(2, 0, mine)) == 2
    assert instructions(3, 1, mine) != got or instructions(3, 2, mine) != got  # the seed orders them


def test_instructions_hold_requests_and_beginnings_of_a_text():
    from repcheck.train.selfgen import BEGINNINGS, TASKS, TOPICS, instructions

    n = len(TOPICS)
    every = instructions(len(TASKS + BEGINNINGS) * n, 0)
    asked = [r for r in every if r.endswith((".", "?"))]
    assert len(asked) == len(TASKS) * n  # the tasks; the rest are beginnings, to go on with
    assert {r.split()[-1] for r in every if r not in asked} == {b.split()[-1] for b in BEGINNINGS}


def test_end_tokens_are_eos_the_turns_end_and_named_ends():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from repcheck.train.data import end_tokens

    words = ["[UNK]", "</s>", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<sep>", "a", "b", "user", "assistant"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    t = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="</s>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<sep>"],
    )
    assert end_tokens(t) == [1, 3, 4]  # no template: EOS and the names that say end
    t.chat_template = (
        "{% for m in messages %}<|im_start|> {{ m['role'] }} {{ m['content'] }} <sep> <|im_end|> {% endfor %}"
    )
    assert end_tokens(t) == [1, 3, 4, 5]  # the turn closes with <sep> <|im_end|>; never <|im_start|>


def test_rep_rate_default_is_per_method_and_a_given_one_is_kept():
    from repcheck.train.config import REP_RATES, TrainConfig

    assert TrainConfig(method="ditto").validate().rep_rate == REP_RATES["ditto"] == 0.35
    assert TrainConfig(method="ul-seq").validate().rep_rate == REP_RATES["ul-seq"] == 0.5
    assert TrainConfig(method="ditto", rep_rate=0.8).validate().rep_rate == 0.8


def test_end_weight_needs_the_base_model_s_logits_and_a_number_at_least_zero():
    from repcheck.errors import RepcheckError
    from repcheck.train.config import TrainConfig

    assert TrainConfig(end_weight=1.0).validate().end_weight == 1.0  # the default anchor, kl
    assert TrainConfig(end_weight=1.0, anchor="plain").validate().end_weight == 1.0
    with pytest.raises(RepcheckError, match="--anchor mle"):
        TrainConfig(end_weight=1.0, anchor="mle").validate()
    with pytest.raises(RepcheckError, match="end_weight"):
        TrainConfig(end_weight=-1.0).validate()


def test_end_scale_is_a_factor_that_needs_the_base_model():
    from repcheck.errors import RepcheckError
    from repcheck.train.config import END_SCALE, TrainConfig

    assert TrainConfig().validate().end_scale == END_SCALE == 0.1  # the default, with the default anchor kl
    assert TrainConfig(anchor="plain").validate().end_scale == END_SCALE
    assert TrainConfig(anchor="mle").validate().end_scale == 1.0  # no base distribution to tilt
    assert TrainConfig(end_scale=0.5).validate().end_scale == 0.5
    assert TrainConfig(end_scale=1.0, anchor="mle").validate().anchor == "mle"  # 1 is no change
    with pytest.raises(RepcheckError, match="--anchor mle"):
        TrainConfig(end_scale=0.5, anchor="mle").validate()
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(RepcheckError, match="end_scale"):
            TrainConfig(end_scale=bad).validate()


def test_chat_samples_is_a_share():
    from repcheck.errors import RepcheckError
    from repcheck.train.config import TrainConfig

    assert TrainConfig().validate().chat_samples == 0.0 and TrainConfig(chat_samples=1).validate().chat_samples == 1
    for bad in (-0.1, 1.5):
        with pytest.raises(RepcheckError, match="chat_samples"):
            TrainConfig(chat_samples=bad).validate()


def test_end_breakdown_sorts_each_trained_end_by_what_the_base_did_there():
    import math

    from repcheck.train.evaluate import add_end_breakdown, comparison

    before = {"generation": {"ended": [True, False, False, False, True], "looped": [False, True, False, False, False]}}
    after = {"generation": {"ended": [True, True, True, False, False], "looped": [False] * 5}}
    add_end_breakdown(before, after)
    g = after["generation"]
    assert g["eos_breakdown"] == {"base_ended": 1, "base_looped": 1, "base_went_on": 1, "answers": 5}
    assert g["eos_where_base_went_on"] == 0.2 and before["generation"]["eos_where_base_went_on"] == 0.0
    (row,) = [r for r in comparison(before, after) if r["metric"] == "generation.eos_where_base_went_on"]
    assert row["after"] == 0.2 and row["better"] == "lower" and math.isnan(row["ratio"])
    # a base evaluation without the per-answer flags (an earlier repcheck's): nothing added
    old, new = {"generation": {"eos_rate": 0.2}}, {"generation": dict(after["generation"])}
    del new["generation"]["eos_breakdown"], new["generation"]["eos_where_base_went_on"]
    add_end_breakdown(old, new)
    assert "eos_breakdown" not in new["generation"]
    assert not [r for r in comparison(old, new) if r["metric"] == "generation.eos_where_base_went_on"]
