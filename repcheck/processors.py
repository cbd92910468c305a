"""Anti-repetition logits processors that transformers lacks, plus the windowed repeat penalty,
the padding guard and the per-row seeded sampler used in batched generation.

Each is a ``transformers.LogitsProcessor``: ``__call__(input_ids [B, T], scores [B, V]) ->
scores [B, V]``, where ``input_ids`` is everything so far (prompt and generated tokens) and
``scores`` are the next-token logits. They are used both by ``generate`` and, position by
position, by the probe under decoding settings.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterable, Sequence

import numpy as np
import torch
from transformers import LogitsProcessor


class PresenceFrequencyPenaltyProcessor(LogitsProcessor):
    """OpenAI / vLLM presence and frequency penalties, over generated tokens only.

        logit[v] -= frequency_penalty * count[v] + presence_penalty * 1[count[v] > 0]

    where ``count[v]`` counts token v in the generated part of the sequence
    (``input_ids[:, prompt_length:]``), limited to its last ``last_n`` tokens when given.
    """

    def __init__(
        self, presence_penalty: float, frequency_penalty: float, prompt_length: int, last_n: int | None = None
    ):
        self.presence, self.frequency = float(presence_penalty), float(frequency_penalty)
        self.prompt_length, self.last_n = int(prompt_length), last_n

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        generated = input_ids[:, self.prompt_length :]  # [B, G]
        if self.last_n is not None:
            generated = generated[:, -self.last_n :]
        if generated.shape[1] == 0:
            return scores
        counts = torch.zeros_like(scores).scatter_add_(1, generated, torch.ones_like(generated, dtype=scores.dtype))
        return scores - self.frequency * counts - self.presence * (counts > 0).to(scores.dtype)


class WindowedRepetitionPenaltyProcessor(LogitsProcessor):
    """llama.cpp's ``repeat_penalty`` over the last ``last_n`` tokens (``repeat_last_n``).

    Like transformers' RepetitionPenaltyLogitsProcessor (CTRL, Keskar et al. 2019), which
    looks at the whole sequence: a token seen in the window has its logit divided by
    ``penalty`` if positive, multiplied by it if negative.
    """

    def __init__(self, penalty: float, last_n: int):
        self.penalty, self.last_n = float(penalty), int(last_n)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        window = input_ids[:, -self.last_n :]  # [B, N]
        seen = scores.gather(1, window)
        penalized = torch.where(seen < 0, seen * self.penalty, seen / self.penalty)
        return scores.scatter(1, window, penalized)


class DRYProcessor(LogitsProcessor):
    """DRY ("Don't Repeat Yourself"), with llama.cpp's semantics (p-e-w, 2024).

    For each candidate token v: if appending v would extend a suffix of the context that
    already occurred earlier followed by v, and that repeated suffix has length
    L >= allowed_length, then

        logit[v] -= multiplier * base ** (L - allowed_length)

    Matching stops at sequence breakers (tokens whose text contains "\\n", ":", '"', "*"
    by default), so the penalty restarts after every line or quote. Only the last
    ``penalty_last_n`` tokens are searched: -1 (the default) means the whole sequence and 0
    disables DRY, as in llama.cpp (``--dry-penalty-last-n``). As in llama.cpp
    (``src/llama-sampler.cpp``), the exponent is clamped to ``FLOAT_MAX_LOG / log(base)``
    (computed in float32), so a very long match gets a huge but finite penalty.

    repcheck marks a token as a breaker when its decoded text contains a breaker string;
    llama.cpp also matches breakers that span several tokens. Match lengths are not capped
    (llama.cpp caps none either): every earlier occurrence's match comes from one Z-array of
    the reversed context, as llama.cpp computes it, so a step costs O(context) whatever the
    matches' lengths.
    """

    FLOAT_MAX_LOG = np.float32(88.7228391)  # ln(float32 max), llama.cpp's constant

    def __init__(
        self, multiplier: float, base: float, allowed_length: int, breaker_ids: Iterable[int], penalty_last_n: int = -1
    ):
        self.multiplier, self.base, self.allowed = float(multiplier), float(base), int(allowed_length)
        self.breakers = frozenset(int(i) for i in breaker_ids)
        self.last_n = int(penalty_last_n)
        self.max_exponent = int(self.FLOAT_MAX_LOG / np.log(np.float32(base))) if base > 1.000001 else 0

    def penalty(self, length: int) -> float:
        """multiplier * base ** (length - allowed_length), exponent clamped, always finite."""
        exponent = length - self.allowed
        if self.max_exponent > 0:
            exponent = min(exponent, self.max_exponent)
        value = self.multiplier * math.pow(self.base, exponent)
        return min(value, float(np.finfo(np.float32).max))

    def match_lengths(self, ids: Sequence[int]) -> dict[int, int]:
        """For one sequence: candidate token -> length of the repeated suffix it would extend.

        An earlier position i ending the same run of tokens as the context's end (ids[i - t] ==
        ids[n - 1 - t] for t < length) proposes ids[i + 1]; the run may not cross a breaker.
        z[k] of the reversed context is exactly that run's length for i = n - 1 - k."""
        n = len(ids)
        if n < 2 or ids[-1] in self.breakers:
            return {}
        limit = 0  # tokens at the end before the last breaker: no match crosses it
        while limit < n and ids[n - 1 - limit] not in self.breakers:
            limit += 1
        z = z_array(list(reversed(ids)))
        lengths: dict[int, int] = {}
        for k in range(1, n):
            if z[k] == 0:
                continue
            candidate = ids[n - k]  # the token after the earlier occurrence at n - 1 - k
            if candidate in self.breakers:
                continue
            length = min(z[k], limit)
            if length > lengths.get(candidate, 0):
                lengths[candidate] = length
        return lengths

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.last_n == 0 or self.multiplier == 0:
            return scores
        scores = scores.clone()
        for b in range(input_ids.shape[0]):
            ids = input_ids[b].tolist()
            if self.last_n > 0:
                ids = ids[-self.last_n :]
            for token, length in self.match_lengths(ids).items():
                if length >= self.allowed:
                    scores[b, token] -= self.penalty(length)
        return scores


def z_array(s: Sequence[int]) -> list[int]:
    """z[k] = length of the longest common prefix of s and s[k:] (z[0] = len(s)), in O(len(s))."""
    n = len(s)
    z = [0] * n
    if n:
        z[0] = n
    left = right = 0
    for k in range(1, n):
        if k < right:
            z[k] = min(right - k, z[k - left])
        while k + z[k] < n and s[z[k]] == s[k + z[k]]:
            z[k] += 1
        if k + z[k] > right:
            left, right = k, k + z[k]
    return z


#: tokenizer -> its decoded vocabulary; decoding every id takes a noticeable moment and
#: DRY processors are built for every generation batch and every probe.
_DECODED_VOCAB: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def breaker_token_ids(tokenizer, breakers: Sequence[str]) -> set[int]:
    """Token ids whose decoded text contains any of the breaker strings."""
    texts = _DECODED_VOCAB.get(tokenizer)
    if texts is None or len(texts) != len(tokenizer):
        texts = _DECODED_VOCAB[tokenizer] = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
    return {i for i, text in enumerate(texts) if any(b in text for b in breakers)}


class IgnoreLeftPadding(LogitsProcessor):
    """Run ``inner`` on every row without its left padding.

    In a left-padded batch, row b's first ``pad_lengths[b]`` columns are padding. Processors
    that read earlier tokens (transformers' repetition penalty and n-gram ban, the windowed
    penalty, DRY) would count them as context (padding uses the EOS id), so batching would
    change the text. Rows are grouped by padding length and each group is processed without
    it. Rows expanded by beam search or several return sequences are mapped back to their
    prompt (transformers repeats each prompt's row consecutively).
    """

    def __init__(self, inner: LogitsProcessor, pad_lengths: Sequence[int]):
        self.inner = inner
        self.pads = torch.as_tensor(list(pad_lengths), dtype=torch.long)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        pads = self.pads
        if input_ids.shape[0] != len(pads):
            pads = pads.repeat_interleave(input_ids.shape[0] // len(pads))
        if not bool(pads.any()):
            return self.inner(input_ids, scores)
        out = scores.clone()
        for pad in pads.unique().tolist():
            rows = (pads == pad).nonzero().squeeze(1).to(scores.device)
            out[rows] = self.inner(input_ids[rows, pad:], scores[rows])
        return out


def row_seed(seed: int, prompt_index: int, sample: int) -> int:
    """A 63-bit seed for one continuation, independent of batching (every backend that
    samples with ``SeededSampler`` seeds each continuation with it)."""
    return int(np.random.SeedSequence([seed & 0xFFFFFFFF, prompt_index, sample]).generate_state(2, np.uint64)[0] >> 1)


class SeededSampler(LogitsProcessor):
    """Sample the next token of every row from its own seeded generator (Gumbel-max).

    token = argmax_v (log softmax(scores)[v] + g_v), g_v = -log(-log u_v), u_v ~ U(0, 1)
    drawn from row b's generator: a draw from softmax(scores) (Gumbel 1954; Maddison et al.
    2014). The processed scores become 0 at the drawn token and -inf elsewhere, so greedy
    decoding emits it. Each row's draws depend only on its own seed and step, never on the
    batch it is in.
    """

    def __init__(self, seeds: Sequence[int]):
        self.generators = [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        logp = scores.float().log_softmax(-1).cpu()  # [B, V]; -inf where a warper removed a token
        out = torch.full_like(scores, -math.inf)
        for b, g in enumerate(self.generators):
            u = torch.rand(logp.shape[-1], generator=g).clamp_min(1e-30)
            token = int((logp[b] - torch.log(-torch.log(u))).argmax())
            out[b, token] = 0.0
        return out
