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
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..progress import ProgressCallback
from .base import LONG_GENERATION, GenerationRequest, RawGeneration
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


def chunks(request: GenerationRequest, kv_rows: Callable[[int], int] | None = None) -> list[list[int]]:
    """Rows of ``request.rows()`` grouped into ``generate`` calls: rows of one budget together
    (a call has one ``max_new_tokens``), prompts of similar length together (less padding), at
    most ``batch_size`` a call, and at most ``kv_rows(length)`` rows whose KV cache of
    ``length`` positions fits the memory budget (long generations). The text does not depend
    on the grouping (tested)."""
    rows = request.rows()

    def budget(k: int) -> int:
        return request.budget(rows[k][0])

    order = sorted(range(len(rows)), key=lambda k: (budget(k), len(request.prompts[rows[k][0]])))
    out: list[list[int]] = []
    for k in order:
        length = len(request.prompts[rows[k][0]]) + budget(k)  # the longest row so far: the order is ascending
        cap = min(request.batch_size, kv_rows(length)) if kv_rows else request.batch_size
        if out and len(out[-1]) < cap and budget(out[-1][0]) == budget(k):
            out[-1].append(k)
        else:
            out.append([k])
    return out


def kv_bytes_per_position(config, dtype) -> int:
    """Bytes of KV cache one position of one row takes: keys and values of every layer."""
    import torch

    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer", 1)
    heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_head", 1)
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    hidden = getattr(config, "hidden_size", None) or getattr(config, "n_embd", 1)
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    return 2 * layers * kv_heads * head_dim * torch.tensor([], dtype=dtype).element_size()


def kv_budget_bytes(device) -> int:
    """The memory long generations may fill with KV cache: half the GPU's free memory, or a
    quarter of the machine's available memory on a CPU (``$REPCHECK_KV_BUDGET_GB`` overrides)."""
    import os

    env = os.environ.get("REPCHECK_KV_BUDGET_GB")
    if env:
        return int(float(env) * 2**30)
    if str(device).startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info(device)
        return free // 2
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            fields = dict(line.split(":", 1) for line in fh)
        return int(fields["MemAvailable"].split()[0]) * 1024 // 4
    except (OSError, KeyError, ValueError):
        return 4 * 2**30


def step_progress(progress, label: str, base: int, total: int, rows: int, width: int):
    """A stopping criterion that never stops: it reports the tokens generated so far (every
    16 steps), so a long ``generate`` call shows progress and an ETA."""
    import torch
    from transformers import StoppingCriteria

    class StepProgress(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            step = input_ids.shape[1] - width
            if step % 16 == 0:
                progress(label, min(total, base + step * rows), total)
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    return StepProgress()


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
    # long generations report tokens (an ETA within a call), short ones continuations
    by_tokens = request.longest >= LONG_GENERATION
    total = sum(request.budget(i) for i, _ in rows) if by_tokens else len(rows)
    if progress:
        progress(label, 0, total)
    per_position = kv_bytes_per_position(backend.model.config, backend.model.dtype)
    budget_bytes = kv_budget_bytes(backend.input_device)
    from transformers import StoppingCriteriaList

    for chunk in chunks(request, lambda length: max(1, budget_bytes // (per_position * length))):
        picked = [rows[k] for k in chunk]
        config = generation_config(backend, setting, request.budget(picked[0][0]), stop)
        # Left padding: every prompt ends at column `width`, where generation starts.
        input_ids, attention_mask, offsets = pad_batch([request.prompts[i] for i, _ in picked], backend.pad_id, "left")
        width = input_ids.shape[1]
        processors = setting.logits_processors(backend.tokenizer, prompt_length=width, pad_lengths=offsets)
        if setting.do_sample:
            processors.append(SeededSampler([row_seed(request.seed, i, s) for i, s in picked]))
        guard, criteria = None, []
        if request.stop_on_loop is not None:
            from ..guard.stopping import LoopStopping

            guard = LoopStopping(len(picked), width, stop, request.stop_on_loop)
            criteria.append(guard)
        if by_tokens and progress:
            criteria.append(step_progress(progress, label, done, total, len(picked), width))
        with torch.inference_mode(), _as_model_defaults(backend.model, config):
            result = backend.model.generate(
                input_ids=input_ids.to(backend.input_device),
                attention_mask=attention_mask.to(backend.input_device),
                generation_config=config,
                logits_processor=processors,
                stopping_criteria=StoppingCriteriaList(criteria) if criteria else None,
            )
        for b, (k, (prompt_index, sample), seq) in enumerate(zip(chunk, picked, result[:, width:].tolist())):
            end = next((j for j, t in enumerate(seq) if t in stop), None)
            found = guard.guard.found[b] if guard is not None else None
            if found is not None and (end is None or found.at <= end):  # stopped by the guard, not at a stop token
                out[k] = RawGeneration(
                    prompt_index, sample, seq[: found.at], "loop", {"loop": found.to_dict(), "cut": 0}
                )
                continue
            tokens = seq if end is None else seq[:end]
            out[k] = RawGeneration(prompt_index, sample, tokens, "length" if end is None else "eos")
        done += sum(request.budget(i) for i, _ in picked) if by_tokens else len(chunk)
        if progress:
            progress(label, done, total)
    return out  # type: ignore[return-value]
