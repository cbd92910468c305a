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
from typing import TYPE_CHECKING

from ..progress import ProgressCallback
from .base import GenerationRequest, RawGeneration
from .hf_utils import eos_ids_of

if TYPE_CHECKING:  # pragma: no cover
    from ..decoding import DecodingSetting
    from .hf import HFBackend

#: GenerationConfig fields that a repcheck setting controls, at values that leave the
#: distribution alone; a checkpoint's own values of these are replaced (sampling happens in
#: ``SeededSampler``, so do_sample stays False).
NEUTRAL = {
    "do_sample": False,
    "temperature": 1.0,
    "top_k": None,
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
    """Every stop id of a loaded transformers model (see ``hf_utils.eos_ids_of``)."""
    return eos_ids_of(getattr(backend.model, "generation_config", None), backend.tokenizer)


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


def generate(
    backend: HFBackend, request: GenerationRequest, progress: ProgressCallback | None = None
) -> list[RawGeneration]:
    """Continue every prompt of ``request`` with transformers' ``generate``, ``batch_size``
    continuations per call."""
    import torch

    from ..processors import SeededSampler, row_seed
    from .batching import pad_batch

    setting = request.setting
    rows = request.rows()
    stop = eos_ids(backend)
    config = generation_config(backend, setting, request.max_new_tokens, stop)
    out: list[RawGeneration] = []
    label = f"generating: {setting.name}"
    if progress:
        progress(label, 0, len(rows))
    for start in range(0, len(rows), request.batch_size):
        chunk = rows[start : start + request.batch_size]
        seqs = [request.prompts[i] for i, _ in chunk]
        # Left padding: every prompt ends at column `width`, where generation starts.
        input_ids, attention_mask, offsets = pad_batch(seqs, backend.pad_id, "left")
        width = input_ids.shape[1]
        processors = setting.logits_processors(backend.tokenizer, prompt_length=width, pad_lengths=offsets)
        if setting.do_sample:
            processors.append(SeededSampler([row_seed(request.seed, i, s) for i, s in chunk]))
        with torch.inference_mode(), _as_model_defaults(backend.model, config):
            result = backend.model.generate(
                input_ids=input_ids.to(backend.input_device),
                attention_mask=attention_mask.to(backend.input_device),
                generation_config=config,
                logits_processor=processors,
            )
        for (prompt_index, sample), seq in zip(chunk, result[:, width:].tolist()):
            end = next((k for k, t in enumerate(seq) if t in stop), None)
            tokens = seq if end is None else seq[:end]
            out.append(RawGeneration(prompt_index, sample, tokens, "length" if end is None else "eos"))
        if progress:
            progress(label, min(start + request.batch_size, len(rows)), len(rows))
    return out
