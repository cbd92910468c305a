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


def chunks(request: GenerationRequest) -> list[list[int]]:
    """Rows of ``request.rows()`` grouped into ``generate`` calls: rows of one budget together
    (a call has one ``max_new_tokens``), prompts of similar length together (less padding), at
    most ``batch_size`` a call. The text does not depend on the grouping (tested)."""
    rows = request.rows()

    def budget(k: int) -> int:
        return request.budget(rows[k][0])

    order = sorted(range(len(rows)), key=lambda k: (budget(k), len(request.prompts[rows[k][0]])))
    out: list[list[int]] = []
    for k in order:
        if out and len(out[-1]) < request.batch_size and budget(out[-1][0]) == budget(k):
            out[-1].append(k)
        else:
            out.append([k])
    return out


def generate(
    backend: HFBackend, request: GenerationRequest, progress: ProgressCallback | None = None
) -> list[RawGeneration]:
    """Continue every prompt of ``request`` with transformers' ``generate``, ``batch_size``
    continuations per call (``chunks``)."""
    import torch

    from ..processors import SeededSampler, row_seed
    from .batching import pad_batch

    setting = request.setting
    rows = request.rows()
    stop = eos_ids(backend)
    out: list[RawGeneration | None] = [None] * len(rows)
    label, done = f"generating: {setting.name}", 0
    if progress:
        progress(label, 0, len(rows))
    for chunk in chunks(request):
        picked = [rows[k] for k in chunk]
        config = generation_config(backend, setting, request.budget(picked[0][0]), stop)
        # Left padding: every prompt ends at column `width`, where generation starts.
        input_ids, attention_mask, offsets = pad_batch([request.prompts[i] for i, _ in picked], backend.pad_id, "left")
        width = input_ids.shape[1]
        processors = setting.logits_processors(backend.tokenizer, prompt_length=width, pad_lengths=offsets)
        if setting.do_sample:
            processors.append(SeededSampler([row_seed(request.seed, i, s) for i, s in picked]))
        with torch.inference_mode(), _as_model_defaults(backend.model, config):
            result = backend.model.generate(
                input_ids=input_ids.to(backend.input_device),
                attention_mask=attention_mask.to(backend.input_device),
                generation_config=config,
                logits_processor=processors,
            )
        for k, (prompt_index, sample), seq in zip(chunk, picked, result[:, width:].tolist()):
            end = next((j for j, t in enumerate(seq) if t in stop), None)
            tokens = seq if end is None else seq[:end]
            out[k] = RawGeneration(prompt_index, sample, tokens, "length" if end is None else "eos")
        done += len(chunk)
        if progress:
            progress(label, done, len(rows))
    return out  # type: ignore[return-value]
