"""Run a legitimate-repetition suite under one decoding setting: every case's prompt rendered
(chat cases through the model's template), all of them generated in one batched request (each
case with its own token budget), each continuation checked.

The pass rate comes with Wilson's 95% interval over the cases, and per category.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from ..backends.base import Backend, GenerationRequest
from ..decoding import DecodingSetting
from ..progress import ProgressCallback
from ..prompts import render_all
from ..stats import wilson_ci95
from .checks import passes
from .suite import LegitSuite, describe


@dataclass
class CaseResult:
    id: str
    category: str
    passed: bool
    text: str  # the continuation, decoded without special tokens
    token_ids: list[int]
    finish: str  # "eos" or "length"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "category": self.category,
            "passed": self.passed,
            "text": self.text,
            "token_ids": self.token_ids,
            "finish": self.finish,
        }


def rate_block(passed: int, n: int) -> dict[str, Any]:
    """A pass rate with its counts and 95% interval."""
    lo, hi = wilson_ci95(passed, n)
    return {"pass_rate": passed / n if n else None, "passed": passed, "n": n, "ci95": [lo, hi]}


@dataclass
class LegitResult:
    suite: dict[str, Any]  # name, cases, categories
    setting: DecodingSetting
    cases: list[CaseResult]
    elapsed_s: float = 0.0
    new_tokens: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> int:
        return sum(c.passed for c in self.cases)

    @property
    def pass_rate(self) -> float:
        return self.passed / len(self.cases)

    @property
    def ci95(self) -> tuple[float, float]:
        return wilson_ci95(self.passed, len(self.cases))

    def by_category(self) -> dict[str, dict[str, Any]]:
        groups: dict[str, list[bool]] = defaultdict(list)
        for c in self.cases:
            groups[c.category].append(c.passed)
        return {cat: rate_block(sum(v), len(v)) for cat, v in groups.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            **rate_block(self.passed, len(self.cases)),
            "by_category": self.by_category(),
            "elapsed_s": round(self.elapsed_s, 3),
            "new_tokens": self.new_tokens,
            "cases": [c.to_dict() for c in self.cases],
            **self.extra,
        }


def run_legit(
    model: Backend,
    suite: LegitSuite,
    setting: DecodingSetting,
    *,
    seed: int = 0,
    batch_size: int = 16,
    skip_too_long: bool = False,
    progress: ProgressCallback | None = None,
) -> LegitResult:
    """Every case of ``suite`` under ``setting`` (one continuation per case, seeded per case
    for sampling settings), checked. A case longer than the model's context window is an
    error, or, with ``skip_too_long``, left out (and named in ``extra["skipped"]``)."""
    from ..prompts import has_chat_template, render

    tok = model.tokenizer
    suite.require_chat_template(has_chat_template(tok), model.name)
    skipped: list[str] = []
    if skip_too_long and model.context_length is not None:
        fits = [len(render(tok, c.prompt)) + c.max_new_tokens <= model.context_length for c in suite.cases]
        skipped = [c.id for c, ok in zip(suite.cases, fits) if not ok]
        suite = LegitSuite(suite.name, tuple(c for c, ok in zip(suite.cases, fits) if ok))
    prompts = render_all(
        tok, [c.prompt for c in suite.cases], [c.max_new_tokens for c in suite.cases], model.context_length, model.name
    )
    request = GenerationRequest(
        prompts,
        setting,
        [c.max_new_tokens for c in suite.cases],
        samples=1,
        seed=seed,
        batch_size=batch_size,
        sources=[c.prompt for c in suite.cases],
    )
    relabel = (lambda _d, done, total: progress(f"legit suite: {setting.name}", done, total)) if progress else None
    began = time.perf_counter()
    raw = model.generate(request, relabel)
    elapsed = time.perf_counter() - began
    results = []
    for case, g in zip(suite.cases, raw, strict=True):
        text = tok.decode(g.token_ids, skip_special_tokens=True)
        results.append(CaseResult(case.id, case.category, passes(case.check, text), text, list(g.token_ids), g.finish))
    new_tokens = sum(len(g.token_ids) + (g.finish == "eos") for g in raw)
    return LegitResult(describe(suite), setting, results, elapsed, new_tokens, {"skipped": skipped} if skipped else {})
