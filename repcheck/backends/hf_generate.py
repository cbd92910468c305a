"""Batched, seeded generation with transformers' ``generate`` under one decoding setting.

What makes the text trustworthy:

* The checkpoint's own ``generation_config`` is the starting point (so a chat model's
  several EOS ids stop generation); only the knobs a repcheck setting controls are
  neutralized (sampling, beams, the repetition penalty, the n-gram ban), and every logits
  processor comes from ``DecodingSetting.logits_processors``: generation and the probe under
  decoding apply the same processors in the same order.
* Left padding never counts as context: processors that read earlier tokens see each row
  without its padding (``processors.IgnoreLeftPadding``), so a prompt's continuation does
  not depend on which prompts it was batched with.
* Sampling draws each continuation from its own generator, seeded by (seed, prompt,
  sample), with the Gumbel-max trick on the processed distribution; the same command gives
  the same text at any batch size.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..progress import ProgressCallback
from .base import RawGeneration

if TYPE_CHECKING:  # pragma: no cover
    from ..decoding import DecodingSetting
    from .hf import HFBackend

#: GenerationConfig fields that a repcheck setting controls; a checkpoint's own values of
#: these are replaced (sampling happens in ``SeededSampler``, so do_sample stays False).
NEUTRAL = {
    "do_sample": False,
    "temperature": 1.0,
    "top_k": 50,
    "top_p": 1.0,
    "typical_p": 1.0,
    "min_p": None,
    "epsilon_cutoff": 0.0,
    "eta_cutoff": 0.0,
    "repetition_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "num_return_sequences": 1,
}


def eos_ids(backend: HFBackend) -> list[int]:
    """Every stop id of a loaded transformers model (see ``eos_ids_of``)."""
    return eos_ids_of(getattr(backend.model, "generation_config", None), backend.tokenizer)


def eos_ids_of(generation_config, tokenizer) -> list[int]:
    """Every stop id: the checkpoint generation config's (often several for chat models),
    else the tokenizer's EOS. Every backend stops on the same ids."""
    configured = getattr(generation_config, "eos_token_id", None)
    if configured is None:
        configured = tokenizer.eos_token_id
    if configured is None:
        return []
    return [int(i) for i in (configured if isinstance(configured, (list, tuple)) else [configured])]


def generation_config(backend: HFBackend, setting: DecodingSetting, max_new_tokens: int, stop: list[int]):
    from transformers import GenerationConfig

    base = getattr(backend.model, "generation_config", None)
    config = copy.deepcopy(base) if base is not None else GenerationConfig()
    for key, value in NEUTRAL.items():
        setattr(config, key, value)
    config.num_beams = setting.num_beams
    config.max_new_tokens = max_new_tokens
    config.max_length = None
    config.pad_token_id = backend.pad_id
    config.eos_token_id = stop or None
    config.use_cache = True
    return config


@contextlib.contextmanager
def _as_model_defaults(model, config):
    """Make ``config`` the model's own generation config for one call: transformers fills
    (5.x) or overrides (4.5x) values of a passed config that look like library defaults with
    the model's, which would bring back the checkpoint's sampling knobs."""
    original = model.generation_config
    model.generation_config = config
    try:
        yield
    finally:
        model.generation_config = original


def row_seed(seed: int, prompt_index: int, sample: int) -> int:
    """A 63-bit seed for one continuation, independent of batching."""
    import numpy as np

    return int(np.random.SeedSequence([seed & 0xFFFFFFFF, prompt_index, sample]).generate_state(2, np.uint64)[0] >> 1)


def generate(
    backend: HFBackend,
    prompts: Sequence[Sequence[int]],
    setting: DecodingSetting,
    *,
    max_new_tokens: int,
    samples: int = 1,
    seed: int = 0,
    batch_size: int = 16,
    progress: ProgressCallback | None = None,
) -> list[RawGeneration]:
    """Continue every prompt (token ids): ``samples`` continuations per prompt when the
    setting samples, one otherwise. ``batch_size`` counts continuations per ``generate`` call."""
    import torch

    from ..processors import SeededSampler
    from .hf import pad_batch

    n_return = samples if setting.do_sample else 1
    rows = [(i, s) for i in range(len(prompts)) for s in range(n_return)]
    stop = eos_ids(backend)
    config = generation_config(backend, setting, max_new_tokens, stop)
    out: list[RawGeneration] = []
    if progress:
        progress(f"generating: {setting.name}", 0, len(rows))
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        seqs = [prompts[i] for i, _ in chunk]
        # Left padding: every prompt ends at column `width`, where generation starts.
        input_ids, attention_mask, offsets = pad_batch(seqs, backend.pad_id, "left")
        width = input_ids.shape[1]
        processors = setting.logits_processors(backend.tokenizer, prompt_length=width, pad_lengths=offsets)
        if setting.do_sample:
            processors.append(SeededSampler([row_seed(seed, i, s) for i, s in chunk]))
        with torch.inference_mode(), _as_model_defaults(backend.model, config):
            result = backend.model.generate(
                input_ids=input_ids.to(backend.input_device),
                attention_mask=attention_mask.to(backend.input_device),
                generation_config=config,
                logits_processor=processors,
            )
        for (prompt_index, sample), seq in zip(chunk, result[:, width:].tolist()):
            end = next((k for k, t in enumerate(seq) if t in stop), None)
            out.append(
                RawGeneration(
                    prompt_index=prompt_index,
                    sample=sample,
                    token_ids=seq if end is None else seq[:end],
                    finished=end is not None,
                )
            )
        if progress:
            progress(f"generating: {setting.name}", min(start + batch_size, len(rows)), len(rows))
    return out
