"""``repcheck.guard``: stop a loop while it happens.

This package owns loop detection on a stream of tokens and everything that stops generation
with it: ``LoopGuard`` (one stream, fed one token at a time) and ``BatchLoopGuard`` (a batch of
streams, as numpy arrays), a transformers ``StoppingCriteria`` (``stopping``), and the
OpenAI-compatible proxy that cuts a looping answer in front of any server (``proxy``, the
``repcheck guard serve`` command). The thresholds and what they were measured to do are in
``detector`` and docs/guard.md.
"""

from .detector import DEFAULT_GUARD, BatchLoopGuard, GuardConfig, LoopFound, LoopGuard, find_loop

__all__ = ["DEFAULT_GUARD", "BatchLoopGuard", "GuardConfig", "LoopFound", "LoopGuard", "find_loop"]
