"""The training loop: transformers' Trainer with one ``compute_loss`` per method.

Gradient accumulation, mixed precision, checkpointing and resuming, and multi-GPU (plain
``accelerate launch -m repcheck train ...``, DeepSpeed, FSDP) come from Trainer and
accelerate. What repcheck adds: the batches (``StepBatches``: each item is the whole batch of
one step, built from the seed and the step number, so a resumed run sees the same batches),
the losses (``repcheck.train.losses``; with ``--anchor kl`` the MLE steps also run the base
model: the LoRA adapter switched off, or a frozen copy), and logging of each loss component.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers import Trainer, TrainerCallback

from ..progress import ProgressCallback
from . import losses
from .config import TrainConfig
from .data import repetition_sample


class StepBatches(torch.utils.data.Dataset):
    """Item i is the batch of (micro-)step i, drawn from ``numpy``'s generator seeded by
    (seed, i): for DITTO and ul-seq a step is of that kind with probability ``rep_rate`` and a
    plain MLE step otherwise (the two alternate, they are not summed); for the other methods
    every step is a block of text under the method's loss."""

    def __init__(
        self,
        cfg: TrainConfig,
        blocks: Sequence[Sequence[int]],
        pairs: Sequence[tuple[list[int], list[int]]],
        items: int,
        own: Sequence[Sequence[bool]] | None = None,
    ):
        self.cfg, self.blocks, self.pairs, self.items, self.own = cfg, blocks, pairs, items, own

    def __len__(self) -> int:
        return self.items

    def kind(self, rng: np.random.Generator) -> str:
        if self.cfg.method in ("ditto", "ul-seq"):
            return self.cfg.method if rng.random() < self.cfg.rep_rate else "mle"
        return self.cfg.method

    def __getitem__(self, i: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.cfg.seed, int(i)])
        kind = self.kind(rng)
        B = self.cfg.batch_size
        if kind == "ditto":
            samples = [
                repetition_sample(*self.pairs[k], self.cfg.block_size, self.cfg.free_copies)
                for k in rng.integers(len(self.pairs), size=B)
            ]
            return {
                "kind": kind,
                "input_ids": torch.tensor([s.input_ids for s in samples]),
                "starts": [s.start for s in samples],
                "periods": [s.period for s in samples],
            }
        picks = rng.integers(len(self.blocks), size=B)
        item = {"kind": kind, "input_ids": torch.tensor([self.blocks[k] for k in picks])}
        if kind == "mle" and self.cfg.anchor != "mle" and self.own is not None:
            own = [self.own[k] for k in picks]  # [B, T]: the model's own text
            if any(map(any, own)):  # none (the user's text only): plain MLE, no base-model pass
                item["own"] = torch.tensor(own)
        return item


def one_batch(items: list[dict[str, Any]]) -> dict[str, Any]:
    """The data loader yields items of one batch each (``per_device_train_batch_size=1``)."""
    (item,) = items
    return item


class RepetitionTrainer(Trainer):
    """Trainer whose loss is the method's (``repcheck.train.losses``), with each component
    logged (``loss_ditto``, ``loss_mle``, ``loss_ul``, ...) and tokens per second."""

    def __init__(self, *args, train_config: TrainConfig, ends: Sequence[int] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.train_config = train_config
        self.ends = list(ends)  # the end-of-text and end-of-turn tokens (data.end_tokens)
        self.spared = self.ends if train_config.spare_ends else []  # out of DITTO's softmax
        self.model_accepts_loss_kwargs = False  # our loss is a mean: Trainer divides by accumulation
        self._parts: dict[str, list[float]] = defaultdict(list)
        self._tokens = 0
        self._since = time.perf_counter()
        self.tokens_seen = 0
        self._reference = None  # --anchor kl, every weight trained: the base model, frozen before any step
        if train_config.anchor != "mle" and not hasattr(self.model, "disable_adapter"):
            import copy

            self._reference = copy.deepcopy(self.model).eval().requires_grad_(False)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        cfg = self.train_config
        kind, ids = inputs["kind"], inputs["input_ids"]
        start = None
        if kind == "ul-seq":
            ids, start = self._continue(model, ids)
        logits = model(input_ids=ids, use_cache=False).logits
        if kind == "ditto":
            loss = losses.ditto(
                logits, ids, inputs["starts"], inputs["periods"], cfg.lam, cfg.sentence_starts, self.spared
            )
            if cfg.end_weight:  # the penalty's way out of a repeat must not be the end of the text
                loss = loss + self._end_hold(logits, self._base_logits(model, ids), torch.ones_like(ids, dtype=bool))
        elif kind == "mle" and "own" in inputs:
            base = self._base_logits(model, ids)
            loss = losses.anchored(logits, base, ids, inputs["own"], self.ends, cfg.end_scale)
            if cfg.end_weight:
                loss = loss + self._end_hold(logits, base, inputs["own"])
        elif kind == "mle":
            loss = losses.mle(logits, ids)
        elif kind == "ul-token":
            nll, ul = losses.unlikelihood_token(logits, ids, cfg.alpha)
            self._parts["nll"].append(nll.item())
            self._parts["ul"].append(ul.item())
            loss = nll + ul
        elif kind == "scalegrad":
            loss = losses.scalegrad(logits, ids, cfg.gamma)
        elif kind == "ul-seq":
            loss = losses.unlikelihood_sequence(logits, ids, start, cfg.seq_ngram)
        else:  # pragma: no cover - StepBatches only makes the kinds above
            raise AssertionError(kind)
        self._parts[kind.replace("-", "_")].append(loss.item())
        self._tokens += ids.numel()
        return (loss, None) if return_outputs else loss

    def _end_hold(self, logits: torch.Tensor, base_logits: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
        """``--end-weight`` times ``losses.end_hold`` on the positions ``where`` [B, T] marks, logged as loss_end."""
        hold = losses.end_hold(logits, base_logits, where, self.ends)
        self._parts["end"].append(hold.item())
        return self.train_config.end_weight * hold

    @torch.no_grad()
    def _base_logits(self, model, ids: torch.Tensor) -> torch.Tensor:
        """The base model's logits [B, T, V]: the LoRA adapter switched off, or (every weight
        trained) a frozen copy of the model as it was before the first step."""
        unwrapped = self.accelerator.unwrap_model(model)
        if hasattr(unwrapped, "disable_adapter"):
            with unwrapped.disable_adapter():
                return unwrapped(input_ids=ids, use_cache=False).logits
        return self._reference(input_ids=ids, use_cache=False).logits

    @torch.no_grad()
    def _continue(self, model, blocks: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Sequence-level unlikelihood's own data: the first ``seq_prefix`` tokens of each
        block, continued greedily for ``seq_continuation`` tokens by the current model."""
        cfg = self.train_config
        ids = blocks[:, : cfg.seq_prefix]
        out = model(input_ids=ids, use_cache=True)
        past, nxt = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
        generated = [nxt]
        for _ in range(cfg.seq_continuation - 1):
            out = model(input_ids=nxt, past_key_values=past, use_cache=True)
            past, nxt = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
            generated.append(nxt)
        return torch.cat([ids, *generated], dim=1), cfg.seq_prefix

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:  # a training log: add the components and the throughput
            for name, values in self._parts.items():
                if values:
                    logs[f"loss_{name}"] = round(sum(values) / len(values), 4)
            elapsed = time.perf_counter() - self._since
            if elapsed > 0 and self._tokens:
                logs["tokens_per_s"] = round(self._tokens / elapsed, 1)
            self.tokens_seen += self._tokens
            logs["tokens"] = self.tokens_seen
            self._parts.clear()
            self._tokens, self._since = 0, time.perf_counter()
        super().log(logs, start_time)


class ReportCallback(TrainerCallback):
    """Progress to the caller's callback and every log line to ``log.jsonl`` (first process only)."""

    def __init__(self, progress: ProgressCallback | None, log_path, method: str):
        self.progress, self.log_path, self.method = progress, log_path, method
        self.last: dict[str, float] = {}

    def on_step_end(self, args, state, control, **kwargs):
        if self.progress and state.is_world_process_zero:
            self.progress(self._describe(), state.global_step, state.max_steps)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        if "loss" in logs:
            self.last = logs
        with open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"step": state.global_step, **logs}) + "\n")

    def _describe(self) -> str:
        if not self.last:
            return f"training ({self.method})"
        parts = [f"loss {self.last['loss']:.3f}"]
        parts += [f"{k[5:]} {v:.3f}" for k, v in self.last.items() if k.startswith("loss_")]
        if "tokens_per_s" in self.last:
            parts.append(f"{self.last['tokens_per_s']:.0f} tok/s")
        return f"training ({self.method}): " + ", ".join(parts)
