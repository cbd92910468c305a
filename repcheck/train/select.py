"""Choosing the step to keep: a validation of both objectives during training.

A fixed number of steps is either too few (the loop is still there) or too many (copying on
request, answer length and the model's language erode). Every ``select_every`` steps the
model is measured on a validation split that neither training nor the final evaluation uses:

* **loops**: TP at the last of K copies of validation sentences (the probe, teacher forced);
* **asked-for repetition**: the mean log-probability per token of the right answers to
  validation requests of the legit categories (``templates``; other content than training's);
* **language**: the mean log-probability per token of held-out text.

A step is *admissible* when the asked-for answers' log-probability fell by no more than
``select_asked_margin`` nats per token below the base model's (0 by default: a step that
copies on request worse than the base is not kept) and the held-out text's by no more than
``select_margin`` (0.15: every method loses a little of the text); among admissible steps
the one with the lowest TP is kept (its weights are copied aside), and the run stops once
``patience`` validations in a row after it found no better one. Until a step is admissible
the run goes on (the first steps of a penalty often overshoot and recover: DITTO's default
is inadmissible at step 25 and admissible from step 50, 75 or 150 on, by the draw of its
data); the step whose log-probabilities fell least beyond the margins is kept meanwhile,
and if no step ever is admissible, it is the one kept and the report says so.
Every validation is in the report (``selection``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from ..progress import ProgressCallback


@dataclass
class ValidationSet:
    """Token ids of what is measured: repeated sentences (``probe``: prefix + K copies, with
    the last copy's span), asked-for answers (``asked``: request + answer, answer start) and
    held-out text (``text``: blocks, scored from position 1)."""

    probe: list[tuple[list[int], int]]  # (ids, start of the last copy)
    asked: list[tuple[list[int], int]]  # (ids, start of the answer)
    text: list[list[int]]

    @classmethod
    def build(cls, tokenizer, sentences: Sequence[str], asked: Sequence[tuple[str, str]], text_blocks, repeats: int):
        """``asked``: (rendered request, answer text) pairs; ``text_blocks``: token blocks."""
        from ..sentences import prefix_ids

        start = prefix_ids(tokenizer)
        probe = []
        for s in sentences:
            ids = tokenizer(" " + s.strip(), add_special_tokens=False)["input_ids"]
            probe.append((start + ids * repeats, len(start) + len(ids) * (repeats - 1)))
        pairs = []
        for request, answer in asked:
            r = tokenizer(request, add_special_tokens=False)["input_ids"]
            a = tokenizer(answer, add_special_tokens=False)["input_ids"]
            pairs.append((r + a, len(r)))
        return cls(probe, pairs, [list(b) for b in text_blocks])


#: sequences per validation forward pass (fewer where their logits would be large)
VALIDATION_BATCH = 8


def _keeps_logits(model) -> bool:
    """Whether ``model``'s forward takes ``logits_to_keep`` (transformers' causal LMs do; the
    head then runs on the last positions only). Looked up through a peft wrapper."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(base.forward).parameters


@torch.no_grad()
def _target_logp(model, seqs: Sequence[tuple[list[int], int]], device) -> list[torch.Tensor]:
    """Per sequence (ids, start): the log-probabilities [len(ids) - start] of its tokens from
    ``start`` on, each predicted from everything before it.

    Sequences share forward passes (``plan_batches``), left-padded so that their ends align:
    the tokens scored are then the last ``len - start`` of every row, and where the model
    takes ``logits_to_keep`` the head and the softmax run on those positions only (the probe
    scores its last copy: an eighth of the sequence). Position ids ignore the padding, so
    each sequence is scored as it would be alone."""
    from ..backends.batching import padded_forward, plan_batches
    from ..metrics import next_token_probs

    vocab = model.get_output_embeddings().weight.shape[0]
    keeps = _keeps_logits(model)
    out: list[torch.Tensor | None] = [None] * len(seqs)
    for batch in plan_batches([len(ids) for ids, _ in seqs], VALIDATION_BATCH, vocab):
        rows = [seqs[i][0] for i in batch]
        scored = max(len(ids) - start for ids, start in (seqs[i] for i in batch))  # tokens scored, at most
        extra = {"logits_to_keep": scored + 1} if keeps else {}
        outputs, input_ids, _ = padded_forward(model, rows, 0, device, "left", **extra)
        logits = outputs.logits[:, -(scored + 1) :]  # [B, scored + 1, V]: the last rows (all kept where not)
        tail = input_ids[:, -(scored + 1) :]  # [B, scored + 1]: the tokens those rows see and predict
        for row, i in enumerate(batch):
            count = len(seqs[i][0]) - seqs[i][1]
            out[i] = next_token_probs(logits[row], tail[row], scored + 1 - count, count)[0]
    return out  # type: ignore[return-value]


@dataclass
class Selection(TrainerCallback):
    """The validation callback (see the module docstring)."""

    data: ValidationSet
    every: int
    margin: float  # nats per token the held-out text may lose against the base
    patience: int
    asked_margin: float  # nats per token the asked-for answers may lose (TrainConfig holds the defaults)
    progress: ProgressCallback | None = None
    log_path: Path | None = None  # each validation is also a line of log.jsonl
    history: list[dict[str, Any]] = field(default_factory=list)
    base: dict[str, float] | None = None
    best: dict[str, Any] | None = None
    best_state: dict[str, torch.Tensor] | None = None
    closest: dict[str, Any] | None = None  # while no step is admissible: the least damaged one
    stale: int = 0

    def measure(self, model) -> dict[str, float]:
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        probe = _target_logp(model, self.data.probe, device)
        asked = _target_logp(model, self.data.asked, device)
        text = _target_logp(model, [(b, 1) for b in self.data.text], device)
        if was_training:
            model.train()
        return {
            "tp_last": float(sum(lp.exp().mean() for lp in probe) / len(probe)),
            "asked_logp": float(torch.cat(asked).mean()) if asked else math.nan,
            "text_logp": float(torch.cat(text).mean()) if text else math.nan,
        }

    def shortfall(self, m: dict[str, float]) -> float:
        """How far the step's worse log-probability fell beyond its margin (<= 0: admissible)."""
        assert self.base is not None
        margins = {"asked_logp": self.asked_margin, "text_logp": self.margin}
        falls = [self.base[k] - margins[k] - m[k] for k in margins if not math.isnan(self.base[k])]
        return max(falls, default=0.0)

    def admissible(self, m: dict[str, float]) -> bool:
        return self.shortfall(m) <= 0

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if self.base is None:
            self.base = self.measure(model)
            self.history.append({"step": 0, **self.base, "admissible": True})

    def on_step_end(self, args, state, control, model=None, **kwargs):
        step = state.global_step
        if step % self.every and step != state.max_steps:
            return
        if self.progress:
            self.progress(f"validating step {step}", step, state.max_steps)
        m = self.measure(model)
        ok = self.admissible(m)
        self.history.append({"step": step, **m, "admissible": ok})
        if self.log_path is not None and state.is_world_process_zero:
            with open(self.log_path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"step": step, "validation": self.history[-1]}) + "\n")
        better = ok and (self.best is None or m["tp_last"] < self.best["tp_last"] - 0.005)
        if better:
            self.best = {"step": step, **m}
            self.best_state = self._copy(model)
            self.stale = 0
        elif self.best is None:  # no admissible step yet: keep the least damaged one and go on
            if self.closest is None or self.shortfall(m) < self.shortfall(self.closest):
                self.closest = {"step": step, **m}
                self.best_state = self._copy(model)
        else:
            self.stale += 1
            if self.stale >= self.patience:
                control.should_training_stop = True

    @staticmethod
    def _copy(model) -> dict[str, torch.Tensor]:
        return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}

    def restore(self, model) -> dict[str, Any]:
        """Load the kept step's weights into ``model``; returns the report's ``selection``."""
        if self.best_state is not None:
            model.load_state_dict(self.best_state)
        last = self.history[-1]["step"] if self.history else None
        kept = self.best or self.closest
        return {
            "every": self.every,
            "margin": self.margin,
            "asked_margin": self.asked_margin,
            "patience": self.patience,
            "kept_step": kept["step"] if kept is not None else last,
            "stopped_early": bool(self.history) and last is not None and self.stale >= self.patience,
            "base": self.base,
            "history": self.history,
            "note": None
            if self.best is not None
            else "no step stayed within the margins: the one that fell least below them was kept",
        }


__all__ = ["Selection", "ValidationSet"]
