"""Batched, seeded generation under one decoding setting, with repetition metrics.

Prompts are tokenized after the same BOS/EOS prefix the probe uses, left-padded into
batches with an attention mask, and decoded by ``model.generate`` with the KV cache.
Every logits processor comes from ``DecodingSetting.logits_processors``, and generate's own
warpers are set to neutral values, so generation and the probe under decoding apply the
very same processors in the same order.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .builtin import ProgressCallback
from .decoding import DecodingSetting
from .errors import RepcheckError
from .models import LoadedModel
from .probing import pad_batch
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

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.elapsed_s if self.elapsed_s > 0 else math.nan


def encode_prompts(model: LoadedModel, prompts: Sequence[str], max_new_tokens: int) -> list[list[int]]:
    if not prompts:
        raise RepcheckError("no prompts to generate from")
    if max_new_tokens < 1:
        raise RepcheckError(f"--max-new-tokens must be at least 1 (got {max_new_tokens})")
    prefix = make_prefix_ids(model.tokenizer)
    out = []
    for p in prompts:
        if not p.strip():
            raise RepcheckError("a prompt is empty")
        ids = prefix + model.tokenizer(p, add_special_tokens=False)["input_ids"]
        if model.context_length is not None and len(ids) + max_new_tokens > model.context_length:
            raise RepcheckError(
                f"prompt {p[:40]!r}… ({len(ids)} tokens) plus {max_new_tokens} new tokens exceeds "
                f"the model's context window of {model.context_length}"
            )
        out.append(ids)
    return out


def generate(
    model: LoadedModel,
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
    sampling settings, one for greedy and beam search. The same arguments give the same text."""
    import torch
    from transformers import GenerationConfig

    if samples < 1 or batch_size < 1:
        raise RepcheckError("--samples and --batch-size must be at least 1")
    encoded = encode_prompts(model, prompts, max_new_tokens)
    tok = model.tokenizer
    n_return = samples if setting.do_sample else 1
    eos = tok.eos_token_id
    pad = tok.pad_token_id if tok.pad_token_id is not None else eos
    torch.manual_seed(seed)
    generations: list[Generation] = []
    new_tokens, elapsed = 0, 0.0
    for start in range(0, len(encoded), batch_size):
        batch = encoded[start : start + batch_size]
        # Left padding: every prompt ends at column `width`, where generation starts.
        input_ids, attention_mask, _ = pad_batch(batch, pad, "left")
        width = input_ids.shape[1]
        config = GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=setting.do_sample,
            num_beams=setting.num_beams,
            num_return_sequences=n_return,
            temperature=1.0,
            top_k=0,
            top_p=1.0,
            typical_p=1.0,
            min_p=None,
            repetition_penalty=1.0,
            no_repeat_ngram_size=0,
            pad_token_id=pad,
            eos_token_id=eos,
            use_cache=True,
        )
        processors = setting.logits_processors(tok, prompt_length=width)
        began = time.perf_counter()
        with torch.inference_mode():
            out = model.model.generate(
                input_ids=input_ids.to(model.device),
                attention_mask=attention_mask.to(model.device),
                generation_config=config,
                logits_processor=processors,
            )
        elapsed += time.perf_counter() - began
        for row, seq in enumerate(out[:, width:].tolist()):
            b, sample = divmod(row, n_return)
            finished = eos in seq
            cont = seq[: seq.index(eos)] if finished else seq
            new_tokens += len(cont) + finished
            index = start + b
            generations.append(
                Generation(
                    prompt_index=index,
                    prompt=prompts[index],
                    setting=setting.name,
                    sample=sample,
                    token_ids=cont,
                    text=tok.decode(cont),
                    finished=finished,
                )
            )
        if progress:
            progress(f"generating: {setting.name}", min(start + batch_size, len(encoded)), len(encoded))
    score_continuations(model, encoded, generations, batch_size)
    for g in generations:
        g.metrics = continuation_metrics(g.token_ids, g.text)
    return SettingRun(setting, generations, elapsed, new_tokens)


def score_continuations(
    model: LoadedModel, encoded: list[list[int]], generations: list[Generation], batch_size: int
) -> None:
    """Set each generation's mean log-probability under the unmodified model (teacher forced)."""
    import torch

    from .probing import padded_forward

    todo = [g for g in generations if g.token_ids]
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        seqs = [encoded[g.prompt_index] + g.token_ids for g in chunk]
        with torch.inference_mode():
            logits, input_ids, offsets = padded_forward(model, seqs, "left")
            for b, g in enumerate(chunk):
                first = offsets[b] + len(encoded[g.prompt_index])  # first continuation token
                pred = logits[b, first - 1 : first - 1 + len(g.token_ids)].float().log_softmax(-1)
                lp = pred.gather(-1, input_ids[b, first : first + len(g.token_ids), None]).squeeze(-1)
                g.mean_logprob = float(lp.mean())
