"""Anti-repetition logits processors that transformers lacks, plus the windowed repeat penalty.

Each is a ``transformers.LogitsProcessor``: ``__call__(input_ids [B, T], scores [B, V]) ->
scores [B, V]``, where ``input_ids`` is everything so far (prompt and generated tokens) and
``scores`` are the next-token logits. They are used both by ``generate`` and, position by
position, by the probe under decoding settings.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence

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
    ``penalty_last_n`` tokens are searched (0: the whole sequence).

    repcheck marks a token as a breaker when its decoded text contains a breaker string;
    llama.cpp also matches breakers that span several tokens.
    """

    MAX_MATCH = 512  # caps the search per candidate, as llama.cpp caps the match length

    def __init__(
        self, multiplier: float, base: float, allowed_length: int, breaker_ids: Iterable[int], penalty_last_n: int = 0
    ):
        self.multiplier, self.base, self.allowed = float(multiplier), float(base), int(allowed_length)
        self.breakers = frozenset(int(i) for i in breaker_ids)
        self.last_n = int(penalty_last_n)

    def match_lengths(self, ids: Sequence[int]) -> dict[int, int]:
        """For one sequence: candidate token -> length of the repeated suffix it would extend."""
        n = len(ids)
        if n < 2 or ids[-1] in self.breakers:
            return {}
        lengths: dict[int, int] = {}
        last = ids[-1]
        for i in range(n - 1):  # every earlier occurrence of the last token
            if ids[i] != last:
                continue
            candidate = ids[i + 1]
            if candidate in self.breakers:
                continue
            # Extend the match backwards: ids[i - k] == ids[n - 1 - k] for k = 1, 2, ...
            length = 1
            while length < self.MAX_MATCH:
                j, k = i - length, n - 1 - length
                if j < 0 or ids[j] in self.breakers or ids[j] != ids[k]:
                    break
                length += 1
            lengths[candidate] = max(lengths.get(candidate, 0), length)
        return lengths

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        scores = scores.clone()
        for b in range(input_ids.shape[0]):
            ids = input_ids[b].tolist()
            if self.last_n > 0:
                ids = ids[-self.last_n :]
            for token, length in self.match_lengths(ids).items():
                if length >= self.allowed:
                    scores[b, token] -= self.multiplier * self.base ** (length - self.allowed)
        return scores


#: tokenizer -> its decoded vocabulary; decoding every id takes a noticeable moment and
#: DRY processors are built for every generation batch and every probe.
_DECODED_VOCAB: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def breaker_token_ids(tokenizer, breakers: Sequence[str]) -> set[int]:
    """Token ids whose decoded text contains any of the breaker strings."""
    texts = _DECODED_VOCAB.get(tokenizer)
    if texts is None or len(texts) != len(tokenizer):
        texts = _DECODED_VOCAB[tokenizer] = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
    return {i for i, text in enumerate(texts) if any(b in text for b in breakers)}
