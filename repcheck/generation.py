"""Generation under one decoding setting, with repetition metrics, on any backend.

Prompts are tokenized after the same BOS/EOS prefix the probe uses; the backend continues
them (``Backend.generate``: batched, seeded, padding-proof), and every continuation is then
scored under the unmodified model (its mean log-probability: what a repetition fix costs)
and measured (``repcheck.repetition``).
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
from .sentences import prefix_ids as make_prefix_ids


@dataclass
class Generation:
    """One continuation of one prompt under one setting."""

    prompt_index: int
    prompt: str
    setting: str
    sample: int
    token_ids: list[int]  # the continuation, without EOS and padding
    text: str
    finished: bool  # stopped at EOS (else at max_new_tokens)
    mean_logprob: float = math.nan  # under the unmodified model
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_index": self.prompt_index,
            "prompt": self.prompt,
            "setting": self.setting,
            "sample": self.sample,
            "text": self.text,
            "token_ids": self.token_ids,
            "finished": self.finished,
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

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.elapsed_s if self.elapsed_s > 0 else math.nan


def encode_prompts(model: Backend, prompts: Sequence[str], max_new_tokens: int) -> list[list[int]]:
    """Token ids of every prompt after the BOS/EOS prefix; each must leave room for
    ``max_new_tokens`` in the context window."""
    if not prompts:
        raise RepcheckError("no prompts to generate from")
    require_int("max_new_tokens", max_new_tokens, 1)
    prefix = make_prefix_ids(model.tokenizer)
    out = []
    for i, p in enumerate(prompts):
        if not isinstance(p, str) or not p.strip():
            raise RepcheckError(f"prompt {i + 1} is empty")
        ids = prefix + model.tokenizer(p, add_special_tokens=False)["input_ids"]
        if model.context_length is not None and len(ids) + max_new_tokens > model.context_length:
            raise RepcheckError(
                f"prompt {i + 1} ({len(ids)} tokens) plus {max_new_tokens} new tokens exceeds "
                f"the model's context window of {model.context_length}",
                param="max_new_tokens",
            )
        out.append(ids)
    return out


def generate(
    model: Backend,
    prompts: Sequence[str],
    setting: DecodingSetting,
    *,
    max_new_tokens: int = 64,
    samples: int = 1,
    seed: int = 0,
    batch_size: int = 16,
    progress: ProgressCallback | None = None,
) -> SettingRun:
    """Continue every prompt under ``setting``: ``samples`` continuations per prompt for
    sampling settings, one for greedy and beam search. The same arguments give the same
    text, whatever the batch size."""
    require_int("samples", samples, 1)
    require_int("batch_size", batch_size, 1)
    encoded = encode_prompts(model, prompts, max_new_tokens)
    tok = model.tokenizer
    began = time.perf_counter()
    from .prompts import Prompt

    request = GenerationRequest(
        encoded,
        setting,
        max_new_tokens,
        samples=samples,
        seed=seed,
        batch_size=batch_size,
        sources=[Prompt(text=p) for p in prompts],
    )
    raw = model.generate(request, progress)
    elapsed = time.perf_counter() - began
    generations = [
        Generation(
            prompt_index=r.prompt_index,
            prompt=prompts[r.prompt_index],
            setting=setting.name,
            sample=r.sample,
            token_ids=list(r.token_ids),
            text=tok.decode(r.token_ids),
            finished=r.finished,
        )
        for r in raw
    ]
    new_tokens = sum(len(g.token_ids) + g.finished for g in generations)
    score_continuations(model, encoded, generations, batch_size)
    for g in generations:
        g.metrics = continuation_metrics(g.token_ids, g.text)
    return SettingRun(setting, generations, elapsed, new_tokens, model.sent_params(setting))


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
