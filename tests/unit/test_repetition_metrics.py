import math

import pytest

from repcheck.repetition import (
    continuation_metrics,
    detect_loop,
    distinct_n,
    diversity,
    pooled_rep_n,
    rep_sen,
    seq_rep_n,
    split_sentences,
)


def test_seq_rep_n():
    assert seq_rep_n([1, 2, 3, 4], 2) == 0.0
    assert seq_rep_n([1, 2, 1, 2, 1, 2], 2) == pytest.approx(1 - 2 / 5)  # 5 bigrams, 2 unique
    assert seq_rep_n([7, 7, 7, 7], 1) == pytest.approx(0.75)
    assert math.isnan(seq_rep_n([1, 2], 3)) and math.isnan(seq_rep_n([], 1))  # no n-gram: undefined


def test_pooled_rep_and_diversity():
    a, b = [1, 2, 3], [1, 2, 3]
    assert pooled_rep_n([a, b], 2) == pytest.approx(0.5)  # 4 bigrams, 2 unique
    assert diversity([[1, 2, 3, 4, 5]]) == 1.0
    assert math.isnan(diversity([a, b]))  # 3-token continuations have no 4-gram
    assert diversity([[1, 2, 3, 4], [1, 2, 3, 4]]) == pytest.approx(0.5 * 0.5 * 0.5)


def test_distinct():
    assert distinct_n([[1, 1, 2]], 1) == pytest.approx(2 / 3)
    assert distinct_n([[1, 2], [1, 2]], 2) == 0.5
    assert math.isnan(distinct_n([[]], 1))


def test_rep_sen():
    assert rep_sen("I am here. I am here. You are there.") == pytest.approx(1 / 3)
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
