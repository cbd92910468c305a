"""Verbatim loops found while tokens arrive.

A *loop* is a periodic tail: the last ``L`` tokens repeat with some period ``p`` (every token
equals the one ``p`` before it). It is *confirmed* when the tail holds at least
``min_repeats`` copies of the period and at least ``min_tokens`` tokens; the smallest such
period is reported, with the tail's start (as ``repcheck.repetition.detect_loop`` reports a
loop at the end of a finished continuation).

How: for every period p <= ``max_period`` the guard keeps ``run[p]``, the number of
consecutive latest tokens equal to the token p before them. A new token t at index i sets

    run[p] = run[p] + 1   if t == token[i - p]   else 0          (for every p at once)

and the periodic tail of period p is then ``run[p] + p`` tokens long. That is a fixed amount of
work per token (one comparison per period, as numpy operations over the periods and over a
batch of streams), independent of how long the stream already is, and ``max_period`` tokens of
memory per stream.

The defaults (``DEFAULT_GUARD``: periods up to 64 tokens, 3 copies, 48 tokens) were chosen on
measurements recorded in docs/guard.md: they flag none of the built-in model's passing answers
to the legitimate-repetition suite (which include lines written three times on request) and
none of the shipped human text, and confirm the built-in model's greedy loops a few periods
after they start.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import RepcheckError, require_int


@dataclass(frozen=True)
class GuardConfig:
    """When a periodic tail counts as a loop."""

    max_period: int = 64  # the longest cycle looked for, in tokens
    min_repeats: int = 3  # copies of the cycle in the tail
    min_tokens: int = 48  # tokens in the tail (a short cycle needs more copies)

    def __post_init__(self) -> None:
        require_int("max_period", self.max_period, 1, 4096)
        require_int("min_repeats", self.min_repeats, 2)
        require_int("min_tokens", self.min_tokens, 1)

    def earliest(self) -> int:
        """The fewest tokens a stream needs before any loop can be confirmed."""
        return max(self.min_tokens, 2 * self.min_repeats if self.max_period >= 2 else self.min_repeats)

    def check_reachable(self, budget: int, param: str = "max_new_tokens") -> None:
        """Refuse thresholds that no continuation of ``budget`` tokens can meet."""
        need = max(self.min_tokens, self.min_repeats)
        if need > budget:
            raise RepcheckError(
                f"the loop guard needs at least {need} tokens to confirm a loop (min_tokens {self.min_tokens}, "
                f"min_repeats {self.min_repeats}), more than the {budget} new tokens allowed: it could never stop one",
                param=param,
            )

    def to_dict(self) -> dict[str, int]:
        return {"max_period": self.max_period, "min_repeats": self.min_repeats, "min_tokens": self.min_tokens}


DEFAULT_GUARD = GuardConfig()


@dataclass(frozen=True)
class LoopFound:
    """A confirmed loop: its period, the index of the tail's first token, and the number of
    tokens seen when it was confirmed (so ``at - start`` tokens of it had been generated)."""

    period: int
    start: int
    at: int

    @property
    def repeats(self) -> float:
        return (self.at - self.start) / self.period

    def to_dict(self) -> dict[str, int | float]:
        return {"period": self.period, "start": self.start, "at": self.at, "repeats": round(self.repeats, 2)}


class BatchLoopGuard:
    """Loop detection over ``streams`` token streams at once (see the module docstring).

    ``feed(tokens)`` takes one new token per stream ([B] ints; a stream that has stopped can be
    fed anything and masked with ``active``) and returns the streams whose loop was confirmed
    by this token. ``found[b]`` keeps each stream's first confirmed loop."""

    def __init__(self, streams: int, config: GuardConfig = DEFAULT_GUARD):
        P = config.max_period
        self.config = config
        self.ring = np.full((streams, P), -1, dtype=np.int64)  # the last P tokens, slot i % P
        self.run = np.zeros((streams, P), dtype=np.int64)  # run[:, p - 1] for period p
        self.count = np.zeros(streams, dtype=np.int64)  # tokens fed per stream
        self.periods = np.arange(1, P + 1)
        self.need = np.maximum(config.min_repeats * self.periods, config.min_tokens)  # tail length per period
        self.found: list[LoopFound | None] = [None] * streams

    def feed(self, tokens: Sequence[int] | np.ndarray, active: np.ndarray | None = None) -> list[int]:
        """One token per stream; returns the indices of the streams confirmed to loop now."""
        t = np.asarray(tokens, dtype=np.int64)
        B, P = self.ring.shape
        rows = np.arange(B) if active is None else np.flatnonzero(active)
        if rows.size == 0:
            return []
        i = self.count[rows]  # this token's index in each stream
        slots = (i[:, None] - self.periods[None, :]) % P  # where token i - p sits in the ring
        earlier = self.ring[rows[:, None], slots]  # [b, p] token i - p (-1 where i - p < 0)
        valid = i[:, None] >= self.periods[None, :]
        match = (earlier == t[rows, None]) & valid
        self.run[rows] = np.where(match, self.run[rows] + 1, 0)
        self.ring[rows, i % P] = t[rows]
        self.count[rows] += 1
        tail = self.run[rows] + self.periods[None, :]  # periodic tail length per period
        hit = (self.run[rows] > 0) & (tail >= self.need[None, :])
        confirmed = []
        for k in np.flatnonzero(hit.any(axis=1)):
            b = int(rows[k])
            if self.found[b] is not None:
                continue
            p = int(np.argmax(hit[k])) + 1  # the smallest period
            n = int(self.count[b])
            self.found[b] = LoopFound(period=p, start=n - int(tail[k, p - 1]), at=n)
            confirmed.append(b)
        return confirmed


class LoopGuard:
    """One stream: ``feed(token_id)`` returns None, or the loop the token confirmed (once)."""

    def __init__(self, config: GuardConfig = DEFAULT_GUARD):
        self._batch = BatchLoopGuard(1, config)
        self.config = config

    def feed(self, token_id: int) -> LoopFound | None:
        return self._batch.found[0] if self._batch.feed([int(token_id)]) else None

    def feed_all(self, tokens: Iterable[int]) -> LoopFound | None:
        """Feed tokens until a loop is confirmed (then stop); returns it, or None."""
        for t in tokens:
            found = self.feed(t)
            if found is not None:
                return found
        return None

    @property
    def found(self) -> LoopFound | None:
        return self._batch.found[0]

    @property
    def seen(self) -> int:
        return int(self._batch.count[0])


def cut_at_loop(generation, config: GuardConfig = DEFAULT_GUARD):
    """A ``RawGeneration`` cut where a guard would have confirmed its loop (finish "loop",
    ``extra["loop"]``, and ``extra["cut"]``: the tokens generated after that), or unchanged."""
    from dataclasses import replace

    found = find_loop(generation.token_ids, config)
    if found is None:
        return generation
    cut = len(generation.token_ids) - found.at + (generation.finish == "eos")
    return replace(
        generation,
        token_ids=list(generation.token_ids[: found.at]),
        finish="loop",
        extra={**generation.extra, "loop": found.to_dict(), "cut": cut},
    )


def find_loop(tokens: Sequence[int], config: GuardConfig = DEFAULT_GUARD) -> LoopFound | None:
    """Where a guard fed ``tokens`` one by one would have confirmed a loop (None: never)."""
    return LoopGuard(config).feed_all(tokens)


__all__ = ["DEFAULT_GUARD", "BatchLoopGuard", "GuardConfig", "LoopFound", "LoopGuard", "cut_at_loop", "find_loop"]
