"""Generation under one decoding setting, with repetition metrics, on any backend.

Prompts are text, tokenized after the same BOS/EOS prefix the probe uses, or conversations
(``repcheck.prompts.Prompt``) rendered through the model's chat template; the backend
continues them (``Backend.generate``: batched, seeded, padding-proof), and every continuation
is then scored under the unmodified model (its mean log-probability: what a repetition fix
costs) and measured (``repcheck.repetition``). With ``stop_on_loop`` (a
``repcheck.guard.GuardConfig``) a continuation ends as soon as its loop is confirmed
(``finish`` "loop"), so a looping prompt costs a few periods, not the whole budget.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .backends.base import Backend, GenerationRequest, ScoreRequest
from .decoding import DecodingSetting
from .errors import RepcheckError, require_int
from .progress import ProgressCallback
from .repetition import continuation_metrics


@dataclass
class Generation:
    """One continuation of one prompt under one setting."""

    prompt_index: int
    prompt: str
    setting: str
    sample: int
    token_ids: list[int]  # the continuation, without EOS and padding
    text: str
    finished: bool  # stopped at EOS (else at max_new_tokens, or by the loop guard)
    mean_logprob: float = math.nan  # under the unmodified model
    metrics: dict[str, Any] = field(default_factory=dict)
    finish: str = ""  # "eos", "length" or "loop" (the guard ended it)
    prompt_ids: list[int] = field(default_factory=list)  # the prompt as the model saw it (rendered)
    loop: dict[str, Any] | None = None  # the guard's loop: period, start, at, repeats; cut

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_index": self.prompt_index,
            "prompt": self.prompt,
            "setting": self.setting,
            "sample": self.sample,
            "text": self.text,
            "token_ids": self.token_ids,
            "prompt_ids": self.prompt_ids,
            "finished": self.finished,
            "finish": self.finish or ("eos" if self.finished else "length"),
            **({"guard_loop": self.loop} if self.loop is not None else {}),
            "mean_logprob": self.mean_logprob,
            **self.metrics,
        }


@dataclass
class SettingRun:
    setting: DecodingSetting
    generations: list[Generation]
    elapsed_s: float
    new_tokens: int
    sent: dict[str, Any] | None = None  # the sampling values the backend sent, where it sends them
    budgets: list[int] = field(default_factory=list)  # max_new_tokens per prompt

    def guard_summary(self) -> dict[str, Any]:
        """What the loop guard did: continuations it ended, the tokens it saved (budget minus
        length, where it stopped generation itself) and those generated after a loop was
        confirmed (where the backend could only cut afterwards)."""
        stopped = [g for g in self.generations if g.finish == "loop"]
        return {
            "stopped": len(stopped),
            "tokens_saved": sum(
                self.budgets[g.prompt_index] - len(g.token_ids) for g in stopped if not (g.loop or {}).get("cut")
            ),
            "tokens_after_loop": sum((g.loop or {}).get("cut", 0) for g in stopped),
        }

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.elapsed_s if self.elapsed_s > 0 else math.nan


def encode_prompts(model: Backend, prompts: Sequence[Any], max_new_tokens: int) -> list[list[int]]:
    """Token ids of every prompt: text after the BOS/EOS prefix, a ``Prompt`` conversation
    through the chat template; each must leave room for ``max_new_tokens`` in the context
    window."""
    from .prompts import Prompt, render_all

    if not prompts:
        raise RepcheckError("no prompts to generate from")
    require_int("max_new_tokens", max_new_tokens, 1)
    sources = []
    for i, p in enumerate(prompts):
        if isinstance(p, Prompt):
            sources.append(p)
            continue
        if not isinstance(p, str) or not p.strip():
            raise RepcheckError(f"prompt {i + 1} is empty")
        sources.append(Prompt(text=p))
    return render_all(model.tokenizer, sources, [max_new_tokens] * len(sources), model.context_length, model.name)


def as_sources(prompts: Sequence[Any]) -> list[Any]:
    """Each prompt as a ``Prompt`` (text prompts wrapped)."""
    from .prompts import Prompt

    return [p if isinstance(p, Prompt) else Prompt(text=p) for p in prompts]


def generate(
    model: Backend,
    prompts: Sequence[Any],
    setting: DecodingSetting,
    *,
    max_new_tokens: int = 64,
    samples: int = 1,
    seed: int = 0,
    batch_size: int = 16,
    stop_on_loop: Any = None,
    progress: ProgressCallback | None = None,
) -> SettingRun:
    """Continue every prompt (text, or a ``Prompt`` conversation) under ``setting``:
    ``samples`` continuations per prompt for sampling settings, one for greedy and beam search.
    The same arguments give the same text, whatever the batch size. ``stop_on_loop``: a
    ``GuardConfig`` that ends each continuation as soon as its loop is confirmed."""
    require_int("samples", samples, 1)
    require_int("batch_size", batch_size, 1)
    sources = as_sources(prompts)
    encoded = encode_prompts(model, sources, max_new_tokens)
    tok = model.tokenizer
    began = time.perf_counter()
    request = GenerationRequest(
        encoded,
        setting,
        max_new_tokens,
        samples=samples,
        seed=seed,
        batch_size=batch_size,
        sources=sources,
        stop_on_loop=stop_on_loop,
    )
    raw = model.generate(request, progress)
    elapsed = time.perf_counter() - began
    generations = [
        Generation(
            prompt_index=r.prompt_index,
            prompt=sources[r.prompt_index].shown(),
            setting=setting.name,
            sample=r.sample,
            token_ids=list(r.token_ids),
            text=tok.decode(r.token_ids),
            finished=r.finished,
            finish=r.finish,
            prompt_ids=list(encoded[r.prompt_index]),
            loop={**r.extra["loop"], "cut": r.extra.get("cut", 0)} if "loop" in r.extra else None,
        )
        for r in raw
    ]
    new_tokens = sum(len(g.token_ids) + g.finished for g in generations)
    score_continuations(model, encoded, generations, batch_size)
    for g in generations:
        g.metrics = continuation_metrics(g.token_ids, g.text)
    return SettingRun(
        setting, generations, elapsed, new_tokens, model.sent_params(setting), [max_new_tokens] * len(sources)
    )


def score_continuations(
    model: Backend, encoded: list[list[int]], generations: list[Generation], batch_size: int
) -> None:
    """Set each generation's mean log-probability under the unmodified model (teacher forced)."""
    todo = [g for g in generations if g.token_ids]
    if not todo:
        return
    seqs = [encoded[g.prompt_index] + g.token_ids for g in todo]
    starts = [len(encoded[g.prompt_index]) for g in todo]
    for g, s in zip(todo, model.score(ScoreRequest(seqs, starts, batch_size, logp_only=True))):
        # NaN: a text-only server that cannot be given these ids (counted apart in the summary, n)
        g.mean_logprob = float(s.logp.mean()) if s is not None else math.nan
