import math

import pytest

from repcheck.repetition import (
    continuation_metrics,
    detect_loop,
    distinct_n,
    diversity,
    next_token_metrics,
    pooled_rep_n,
    rep_sen,
    rep_sen_consecutive,
    seq_rep_n,
    simctg_rep_n,
    split_sentences,
)


def test_seq_rep_n():
    assert seq_rep_n([1, 2, 3, 4], 2) == 0.0
    assert seq_rep_n([1, 2, 1, 2, 1, 2], 2) == pytest.approx(1 - 2 / 5)  # 5 bigrams, 2 unique
    assert seq_rep_n([7, 7, 7, 7], 1) == pytest.approx(0.75)
    assert math.isnan(seq_rep_n([1, 2], 3)) and math.isnan(seq_rep_n([], 1))  # no n-gram: undefined


def test_simctg_rep_n_counts_per_text_and_drops_each_texts_last_ngram():
    """The report's example: SimCTG gives 0 where pooling all bigrams gives 0.125."""
    texts = ["the cat sat on the mat".split(), "the cat ran off".split()]
    assert simctg_rep_n(texts, 2) == 0.0
    assert pooled_rep_n(texts, 2) == pytest.approx(1 - 7 / 8)
    # "a b a b a b": SimCTG counts 4 bigrams (not the last "a b"... the 5th), 2 unique
    assert simctg_rep_n(["a b a b a b".split()], 2) == pytest.approx(1 - 2 / 4)
    # a text of exactly n tokens has no counted n-gram (SimCTG's loop never runs)
    assert math.isnan(simctg_rep_n([[1, 2]], 2)) and simctg_rep_n([[1, 2], [3, 3, 3, 3]], 2) == pytest.approx(1 - 1 / 2)


def test_simctg_numbers_from_its_own_definition_by_hand():
    """rep-n and diversity for two texts, counted by hand the way SimCTG's eval_text counts."""
    t1 = "a b c a b c a".split()  # bigrams ab bc ca ab bc (the last, "c a", left out): 5, unique 3
    t2 = "x y x y".split()  # bigrams xy yx (the last "x y" left out): 2, unique 2
    assert simctg_rep_n([t1, t2], 2) == pytest.approx(1 - (3 + 2) / (5 + 2))
    # trigrams: t1 abc bca cab abc (4, unique 3); t2 xyx (1, unique 1)
    assert simctg_rep_n([t1, t2], 3) == pytest.approx(1 - 4 / 5)
    # 4-grams: t1 abca bcab cabc (3, unique 3); t2 none counted
    assert simctg_rep_n([t1, t2], 4) == 0.0
    # SimCTG rounds each rep-n to a percentage with two decimals before multiplying
    assert diversity([t1, t2]) == (1 - round((1 - 5 / 7) * 100, 2) / 100) * (1 - round((1 - 4 / 5) * 100, 2) / 100)
    assert diversity([t1, t2]) != pytest.approx((5 / 7) * (4 / 5), abs=1e-6)  # 0.57144, not 0.571429


def test_diversity_equals_simctg_code_on_texts():
    """SimCTG's measure_repetition_and_diversity, line for line, against diversity(words)."""
    import random

    def simctg(text_list):  # simctg/evaluation.py, its arithmetic verbatim
        res = {n: [0, 0] for n in (2, 3, 4)}
        for text in text_list:
            tokens = text.strip("\n").strip().split()
            for n in (2, 3, 4):
                grams, total, start, end = set(), 0, 0, n
                while end < len(tokens):
                    grams.add(" ".join(tokens[start:end]))
                    total, start, end = total + 1, start + 1, end + 1
                res[n][0] += len(grams)
                res[n][1] += total
        seq = {n: round((1 - res[n][0] / res[n][1]) * 100, 2) for n in (2, 3, 4)}
        return (1 - seq[2] / 100) * (1 - seq[3] / 100) * (1 - seq[4] / 100)

    rng = random.Random(0)
    for _ in range(50):
        texts = [" ".join(rng.choice("abcdefg") for _ in range(rng.randint(6, 40))) for _ in range(3)]
        assert diversity([t.split() for t in texts]) == simctg(texts)


def test_pooled_rep_and_diversity():
    a, b = [1, 2, 3], [1, 2, 3]
    assert pooled_rep_n([a, b], 2) == pytest.approx(0.5)  # 4 bigrams, 2 unique
    assert diversity([[1, 2, 3, 4, 5, 6]]) == 1.0
    assert math.isnan(diversity([a, b]))  # 3-token continuations have no counted 4-gram


def test_distinct():
    assert distinct_n([[1, 1, 2]], 1) == pytest.approx(2 / 3)
    assert distinct_n([[1, 2], [1, 2]], 2) == 0.5
    assert math.isnan(distinct_n([[]], 1))


def test_rep_sen():
    assert rep_sen("I am here. I am here. You are there.") == pytest.approx(1 / 3)
    # consecutive: only a sentence equal to the one right before it counts
    text = "I see it. You see me. I see it. I see it."
    assert rep_sen_consecutive(text) == pytest.approx(1 / 4)
    assert rep_sen(text) == pytest.approx(2 / 4)
    assert split_sentences("A.\n\nB!  C? 北京。好") == ["A.", "B!", "C?", "北京。", "好"]
    assert math.isnan(rep_sen("   "))


def test_detect_loop():
    assert detect_loop([5, 5, 5]).period == 1 and detect_loop([5, 5, 5]).start == 0
    loop = detect_loop([9, 8, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1])
    assert (loop.period, loop.start) == (3, 2)  # tail "1 2 3 1 2 3 1 2 3 1" starts at index 2
    assert detect_loop([1, 2, 3, 1, 2, 3]) is None  # only two cycles
    assert detect_loop([]) is None and detect_loop([1, 2]) is None
    assert detect_loop(list(range(100)) * 3) is None  # period 100 > the 64-token limit
    assert detect_loop(list(range(64)) * 3).period == 64


def test_continuation_metrics_keys():
    m = continuation_metrics([1, 2, 1, 2, 1, 2], "a b a b a b")
    assert m["loop"] and m["loop_period"] == 2 and m["loop_start"] == 0
    assert m["seq_rep_2"] == pytest.approx(m["seq_rep_2_words"])
    empty = continuation_metrics([], "")
    assert not empty["loop"] and math.isnan(empty["seq_rep_1"]) and empty["n_tokens"] == 0


def test_next_token_metrics_by_hand():
    # one text: targets y and greedy predictions p at each position
    y = [5, 6, 5, 7, 5]
    p = [6, 5, 5, 6, 8]
    logp = [math.log(0.5)] * 5
    m = next_token_metrics([y], [p], [logp])
    # rep/16: p_t in {y_0..y_t-1}: t0 {} no; t1 {5}: 5 yes; t2 {5,6}: 5 yes; t3 {5,6}: 6 yes; t4 {5,6,7}: 8 no
    assert m["rep/16"] == pytest.approx(3 / 5)
    # wrep: also p_t != y_t: t1 (5 vs 6) yes; t2 (5 vs 5) no; t3 (6 vs 7) yes
    assert m["wrep/16"] == pytest.approx(2 / 5)
    # hrep: y_t in the window: t2 (5), t4 (5)
    assert m["hrep/16"] == pytest.approx(2 / 5)
    assert m["acc"] == pytest.approx(1 / 5) and m["ppl"] == pytest.approx(2.0) and m["uniq"] == 3  # {5, 6, 8}
