"""What vLLM's API speaks, for the two backends that talk to it (``vllm`` in-process, ``openai``
over HTTP): the decoding keys it applies, the sampling parameters a repcheck setting becomes,
and its prompt logprobs read into ``Scored``.

vLLM returns prompt logprobs as one entry per prompt token (None for the first): a mapping
from token id to a Logprob (``logprob``, ``rank``, ...) that holds the actual token and the
rank-1 token (one entry when they are the same). In-process these are objects, over HTTP JSON
objects with string keys; ``parse_prompt_logprobs`` reads both, and refuses anything else with
one line naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import RepcheckError
from .base import Scored

if TYPE_CHECKING:  # pragma: no cover
    from ..decoding import DecodingSetting

#: decoding keys vLLM's sampling parameters apply with the same meaning as repcheck's
#: (presence and frequency count generated tokens only, as in repcheck; the repetition penalty
#: covers prompt and output, as in transformers)
SERVED_SETTING_KEYS = frozenset(
    {"temperature", "top_k", "top_p", "min_p", "repetition_penalty", "presence_penalty", "frequency_penalty"}
)

#: the value of each key that leaves the distribution alone. A server fills every key a
#: request leaves out from the checkpoint's generation_config (vLLM does, and instruct
#: checkpoints ship sampling defaults and repetition penalties), so every request carries
#: every key: what is not in the setting is sent with its neutral value.
NEUTRAL = {
    "temperature": 1.0,
    "top_k": -1,
    "top_p": 1.0,
    "min_p": 0.0,
    "repetition_penalty": 1.0,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
}


def sampling_params(setting: DecodingSetting) -> dict[str, Any]:
    """Every sampling key for one setting (its keys already checked): the setting's values,
    neutral values for the rest, and temperature 0 (greedy) when it does not sample."""
    params = {**NEUTRAL, **{k: v for k, v in setting.params.items() if k in SERVED_SETTING_KEYS}}
    if not setting.do_sample:
        params["temperature"] = 0.0
    return {k: (int(v) if k == "top_k" else float(v)) for k, v in params.items()}


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise RepcheckError(f"{where} is {value!r}, not a log-probability")
    return float(value)


def _entry(raw: Any, where: str) -> dict[int, tuple[float, float]]:
    """token id -> (logprob, rank) of one position's entry."""
    if not isinstance(raw, Mapping) or not raw:
        raise RepcheckError(f"{where} is {type(raw).__name__}, not a non-empty map of token id to logprob")
    out = {}
    for key, value in raw.items():
        try:
            token = int(key)
        except (TypeError, ValueError):
            raise RepcheckError(f"{where} has the key {key!r}, not a token id") from None
        if value is None or isinstance(value, (str, bool, int, float, list)):
            raise RepcheckError(f"{where}[{token}] is {value!r}, not a logprob object")
        logprob = _number(_field(value, "logprob"), f"{where}[{token}].logprob")
        rank = _field(value, "rank")
        out[token] = (
            logprob,
            float(rank) if isinstance(rank, (int, float)) and not isinstance(rank, bool) else math.inf,
        )
    return out


def parse_prompt_logprobs(entries: Any, ids: Sequence[int], start: int, where: str = "prompt_logprobs") -> Scored:
    """p, pmax, argmax, logp of ``ids[start:]`` from vLLM's prompt logprobs (see the module
    docstring). pmax is the rank-1 token's probability (the actual token's where that is
    larger: both are the same number when the actual token is the argmax)."""
    n = len(ids)
    if not isinstance(entries, Sequence) or isinstance(entries, (str, bytes)):
        raise RepcheckError(f"{where} is {type(entries).__name__}, not a list")
    if len(entries) < n:
        raise RepcheckError(f"{where} has {len(entries)} entries for a prompt of {n} tokens")
    logp, lmax = np.empty(n - start), np.empty(n - start)
    arg = np.empty(n - start, dtype=np.int64)
    for i, t in enumerate(range(start, n)):
        entry = _entry(entries[t], f"{where}[{t}]")
        if ids[t] not in entry:
            raise RepcheckError(f"{where}[{t}] lacks the prompt's token {ids[t]}")
        actual = entry[ids[t]][0]
        best_id, (best, _rank) = min(entry.items(), key=lambda kv: (kv[1][1], -kv[1][0]))
        if actual > best:
            best_id, best = ids[t], actual
        logp[i], lmax[i], arg[i] = actual, best, best_id
    return Scored.from_logprobs(logp, lmax, arg)
