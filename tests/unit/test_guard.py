"""The loop guard against the offline loop detector, on streams with planted loops; batches
equal single streams; thresholds checked."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repcheck.backends.base import RawGeneration
from repcheck.errors import RepcheckError
from repcheck.guard import BatchLoopGuard, GuardConfig, LoopGuard, find_loop
from repcheck.guard.detector import cut_at_loop
from repcheck.repetition import detect_loop

TOKENS = st.integers(0, 6)


@st.composite
def planted(draw):
    head = draw(st.lists(TOKENS, max_size=30))
    cycle = draw(st.lists(TOKENS, min_size=1, max_size=8))
    copies = draw(st.integers(1, 8))
    tail = draw(st.lists(TOKENS, max_size=5))
    return head + cycle * copies + tail


@settings(max_examples=300, deadline=None, derandomize=True)
@given(tokens=planted(), repeats=st.integers(2, 4), max_period=st.integers(1, 10))
def test_the_first_confirmation_is_the_offline_detectors_loop(tokens, repeats, max_period):
    """Fed one token at a time with min_tokens 1, the guard confirms a loop at the first prefix
    that ends in one (offline: ``detect_loop`` with the same period bound and repeats), with
    the same period and start."""
    config = GuardConfig(max_period=max_period, min_repeats=repeats, min_tokens=1)
    found = find_loop(tokens, config)
    first = next((n for n in range(1, len(tokens) + 1) if detect_loop(tokens[:n], max_period, repeats)), None)
    if first is None:
        assert found is None
        return
    assert found is not None and found.at == first
    offline = detect_loop(tokens[:first], max_period, repeats)
    assert (found.period, found.start) == (offline.period, offline.start)


def test_min_tokens_waits_for_a_long_enough_tail():
    tokens = [9, 8] + [1, 2] * 40
    early = find_loop(tokens, GuardConfig(64, 3, 1))
    late = find_loop(tokens, GuardConfig(64, 3, 48))
    assert early.period == late.period == 2 and early.at == 2 + 6 and late.at == 2 + 48
    assert late.start == 2 and late.repeats == 24


def test_a_batch_equals_its_streams():
    streams = [[1, 2, 3] * 20, list(range(60)), [5] * 60, [1, 2, 3, 4, 5, 6, 7] * 9]
    config = GuardConfig(16, 3, 12)
    batch = BatchLoopGuard(len(streams), config)
    for step in range(60):
        batch.feed([s[step] for s in streams])
    assert batch.found == [find_loop(s, config) for s in streams]
    assert batch.found[1] is None and batch.found[2].period == 1


def test_inactive_streams_are_not_fed():
    import numpy as np

    guard = BatchLoopGuard(2, GuardConfig(4, 2, 4))
    for _ in range(10):
        guard.feed([7, 7], active=np.array([True, False]))
    assert guard.found[0] is not None and guard.found[1] is None and guard.count.tolist() == [10, 0]


def test_a_loop_is_reported_once():
    guard = LoopGuard(GuardConfig(4, 2, 4))
    hits = [guard.feed(t) for t in [3] * 20]
    assert sum(h is not None for h in hits) == 1 and guard.found.at == 4


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [({"min_repeats": 1}, "min_repeats"), ({"max_period": 0}, "max_period"), ({"min_tokens": 0}, "min_tokens")],
)
def test_thresholds_are_checked(kwargs, needle):
    with pytest.raises(RepcheckError, match=needle):
        GuardConfig(**kwargs)


def test_a_guard_that_could_never_stop_is_refused():
    with pytest.raises(RepcheckError, match="could never stop one"):
        GuardConfig(64, 3, 48).check_reachable(32)
    GuardConfig(64, 3, 48).check_reachable(48)


def test_cut_at_loop_keeps_the_tokens_until_the_confirmation():
    g = RawGeneration(0, 0, [4, 5] + [1, 2, 3] * 30, "length")
    cut = cut_at_loop(g, GuardConfig(8, 3, 9))
    assert cut.finish == "loop" and cut.token_ids == g.token_ids[: 2 + 9]
    assert cut.extra["loop"] == {"period": 3, "start": 2, "at": 11, "repeats": 3.0} and cut.extra["cut"] == 92 - 11
    assert cut_at_loop(RawGeneration(0, 0, list(range(40)), "eos"), GuardConfig()).finish == "eos"
