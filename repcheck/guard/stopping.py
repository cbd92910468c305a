"""The loop guard inside transformers' ``generate``: a ``StoppingCriteria`` that ends each row
of a batch as soon as its loop is confirmed (transformers >= 4.39 stops rows one by one)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from transformers import StoppingCriteria

from .detector import DEFAULT_GUARD, BatchLoopGuard, GuardConfig


class LoopStopping(StoppingCriteria):
    """Feeds every row's newest token to a ``BatchLoopGuard`` and answers True for the rows
    whose loop it confirms. ``prompt_width``: the column where generation starts (left
    padding); a row that produced a stop token (``stop_ids``) is not fed any more."""

    def __init__(self, rows: int, prompt_width: int, stop_ids: Sequence[int] = (), config: GuardConfig = DEFAULT_GUARD):
        self.guard = BatchLoopGuard(rows, config)
        self.prompt_width = prompt_width
        self.stop_ids = np.asarray(list(stop_ids), dtype=np.int64)
        self.active = np.ones(rows, dtype=bool)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        newest = input_ids[:, -1].cpu().numpy()
        if input_ids.shape[1] > self.prompt_width:  # a generated token (not the prompt)
            self.guard.feed(newest, active=self.active)
            self.active &= ~np.isin(newest, self.stop_ids)
        looped = np.array([f is not None for f in self.guard.found])
        return torch.as_tensor(looped, device=input_ids.device)


__all__ = ["LoopStopping"]
