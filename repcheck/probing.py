"""The self-reinforcement probe: repeat a sentence K times, one teacher-forced forward pass.

See ``repcheck.metrics`` for the definitions. This module tokenizes, batches sentences with
padding and an attention mask, runs the model once per batch, and hands the logits of each
sequence to ``metrics.next_token_probs``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .builtin import ProgressCallback
from .errors import RepcheckError
from .metrics import next_token_probs, repeated_input
from .models import LoadedModel
from .results import ProbeResult, SentenceResult
from .sentences import EncodedSentence, encode_sentences
from .sentences import prefix_ids as make_prefix_ids

if TYPE_CHECKING:  # pragma: no cover
    from .decoding import DecodingSetting

#: Upper bound on the logits tensor of one forward pass ([B, T, V] floats); larger batches
#: are split so the probe's peak memory stays modest whatever --batch-size says.
LOGITS_BUDGET_BYTES = 512 * 2**20
#: Largest share of a batch's positions that may be padding.
MAX_PADDING_SHARE = 0.2


def processed_next_token_probs(logits, input_ids, start: int, count: int, processors):
    """Like ``metrics.next_token_probs``, but through a decoding setting's logits processors.

    logits [T, V], input_ids [T] of one unpadded sequence. For each scored position t, the
    processors see the real context ``input_ids[:t]`` (so penalties count what came before)
    and the logits that predict token t; the result is renormalized with a softmax.
    """
    import torch

    ps, pmaxs, args = [], [], []
    for t in range(start, start + count):
        scores = processors(input_ids[None, :t], logits[None, t - 1].float().clone())[0]  # [V]
        probs = scores.log_softmax(-1)
        pmax, arg = probs.max(-1)
        ps.append(probs[input_ids[t]].exp())
        pmaxs.append(pmax.exp())
        args.append(arg)
    return torch.stack(ps), torch.stack(pmaxs), torch.stack(args)


def check_fits(n_prefix: int, lengths: Sequence[int], repeats: int, context_length: int | None) -> None:
    """Fail before any forward pass if prefix + K * L exceeds the context window."""
    if repeats < 1:
        raise RepcheckError(f"--repeats must be at least 1 (got {repeats})")
    longest = max(lengths)
    if context_length is not None and n_prefix + repeats * longest > context_length:
        k_max = (context_length - n_prefix) // longest
        raise RepcheckError(
            f"{repeats} copies of a {longest}-token sentence plus a {n_prefix}-token prefix need "
            f"{n_prefix + repeats * longest} tokens, more than the model's context window of "
            f"{context_length}; the largest K that fits is {k_max}"
        )


def probe(
    model: LoadedModel,
    sentences: str | Sequence[str] | Sequence[EncodedSentence],
    *,
    repeats: int = 10,
    prefix: str | None = None,
    batch_size: int = 8,
    padding_side: str = "left",
    progress: ProgressCallback | None = None,
    settings: dict | None = None,
    decoding: DecodingSetting | None = None,
) -> ProbeResult:
    """Probe ``model`` with each sentence repeated ``repeats`` times.

    ``sentences``: one string, several strings, or pre-tokenized ``EncodedSentence`` (for
    random-token sentences). ``prefix`` text goes after the BOS token and before the copies.
    ``progress(description, done, total)`` is called after every batch. With ``decoding``,
    each position's distribution first goes through that setting's logits processors
    (penalties, bans, temperature, truncation) and is renormalized: the probe as the
    decoder would see it (see ``processed_next_token_probs``).
    """
    import torch

    if isinstance(sentences, str):
        sentences = [sentences]
    if not sentences:
        raise RepcheckError("no sentence to probe")
    if padding_side not in ("left", "right"):
        raise RepcheckError(f"padding side must be 'left' or 'right', not {padding_side!r}")
    if batch_size < 1:
        raise RepcheckError(f"--batch-size must be at least 1 (got {batch_size})")
    tok = model.tokenizer
    encoded = [s if isinstance(s, EncodedSentence) else None for s in sentences]
    to_encode = [s for s in sentences if not isinstance(s, EncodedSentence)]
    fresh = iter(encode_sentences(tok, to_encode))
    encoded = [e if e is not None else next(fresh) for e in encoded]
    prefix_ids = make_prefix_ids(tok, prefix)
    check_fits(len(prefix_ids), [len(e.token_ids) for e in encoded], repeats, model.context_length)
    if not prefix_ids:
        raise RepcheckError(
            "the tokenizer has no BOS or EOS token; give a --prefix so the first "
            "token of the first copy has a context to be predicted from"
        )

    # Longest first, so each batch pads little and the first batch shows the peak memory.
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i].token_ids))
    vocab = max(len(tok), getattr(model.model.config, "vocab_size", 0) or 0)
    batches = _batches(order, encoded, len(prefix_ids), repeats, batch_size, vocab)
    # Presence/frequency penalties treat everything after the prefix as generated text.
    processors = decoding.logits_processors(tok, prompt_length=len(prefix_ids)) if decoding else None
    results: list[SentenceResult | None] = [None] * len(encoded)
    decode = _TokenDecoder(tok)
    started, n_tokens = time.perf_counter(), 0
    if progress:
        progress("probing", 0, len(encoded))
    with torch.inference_mode():
        for batch in batches:
            seqs = [repeated_input(prefix_ids, list(encoded[i].token_ids), repeats) for i in batch]
            n_tokens += sum(len(s) for s in seqs)
            scored = _score_batch(model, seqs, len(prefix_ids), padding_side, processors)
            for i, (p, pmax, arg) in zip(batch, scored):
                e = encoded[i]
                L = len(e.token_ids)
                arg = arg.reshape(repeats, L).tolist()
                results[i] = SentenceResult(
                    text=e.text,
                    token_ids=list(e.token_ids),
                    tokens=[decode(t) for t in e.token_ids],
                    p=p.reshape(repeats, L).numpy(),
                    pmax=pmax.reshape(repeats, L).numpy(),
                    argmax_ids=arg,
                    argmax_tokens=[[decode(t) for t in row] for row in arg],
                )
            if progress:
                progress("probing", sum(r is not None for r in results), len(encoded))
    elapsed = time.perf_counter() - started
    return ProbeResult(
        model=model.info(),
        dtype=model.dtype,
        device=model.device,
        repeats=repeats,
        prefix=prefix,
        prefix_ids=prefix_ids,
        sentences=results,  # type: ignore[arg-type]
        settings={
            "batch_size": batch_size,
            "padding_side": padding_side,
            **(settings or {}),
            **({"decoding": decoding.to_dict()} if decoding is not None else {}),
        },
        provenance=_provenance(elapsed, n_tokens),
    )


def _batches(
    order: list[int], encoded: list[EncodedSentence], n_prefix: int, repeats: int, batch_size: int, vocab: int
) -> list[list[int]]:
    """Group sentence indices (sorted longest first) into batches of at most ``batch_size``.

    A batch also closes when its logits would exceed LOGITS_BUDGET_BYTES, or when padding
    would exceed MAX_PADDING_SHARE of its tokens: padded positions cost as much as real
    ones, so a long sentence batched with short ones would slow the whole batch down.
    """
    batches: list[list[int]] = []
    real = 0  # real tokens in the current batch
    for i in order:
        length = n_prefix + repeats * len(encoded[i].token_ids)
        if batches:
            cur = batches[-1]
            longest = n_prefix + repeats * len(encoded[cur[0]].token_ids)  # sorted: first is longest
            padded = (len(cur) + 1) * longest
            if (
                len(cur) < batch_size
                and padded * vocab * 4 <= LOGITS_BUDGET_BYTES
                and padded - real - length <= MAX_PADDING_SHARE * padded
            ):
                cur.append(i)
                real += length
                continue
        batches.append([i])
        real = length
    return batches


def pad_batch(seqs: list[list[int]], pad_id: int, padding_side: str = "left"):
    """Pack sequences into input_ids and attention_mask [B, T], padded on ``padding_side``.

    Returns (input_ids, attention_mask, offsets): sequence b occupies positions
    offsets[b] .. offsets[b] + len(seqs[b]) - 1.
    """
    import torch

    B, T = len(seqs), max(len(s) for s in seqs)
    input_ids = torch.full((B, T), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((B, T), dtype=torch.long)
    offsets = []
    for b, s in enumerate(seqs):
        off = T - len(s) if padding_side == "left" else 0
        input_ids[b, off : off + len(s)] = torch.tensor(s)
        attention_mask[b, off : off + len(s)] = 1
        offsets.append(off)
    return input_ids, attention_mask, offsets


def padded_forward(model: LoadedModel, seqs: list[list[int]], padding_side: str = "left"):
    """One forward pass over a padded batch.

    Returns (logits [B, T, V], input_ids [B, T], offsets) as ``pad_batch`` lays them out.
    Position ids count real tokens only, so a padded sequence sees the same positions as it
    would alone.
    """
    pad_id = model.tokenizer.pad_token_id
    input_ids, attention_mask, offsets = pad_batch(seqs, pad_id if pad_id is not None else 0, padding_side)
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    device = model.device
    input_ids = input_ids.to(device)
    logits = model.model(
        input_ids=input_ids,
        attention_mask=attention_mask.to(device),
        position_ids=position_ids.to(device),
        use_cache=False,
    ).logits
    return logits, input_ids, offsets


def _score_batch(model: LoadedModel, seqs: list[list[int]], n_prefix: int, padding_side: str, processors=None):
    """Yields (p, pmax, argmax), each [K*L], for the copies of each sequence in the batch."""
    logits, input_ids, offsets = padded_forward(model, seqs, padding_side)
    for b, s in enumerate(seqs):
        # The copies start right after the prefix; score all K*L of their tokens.
        start, count = offsets[b] + n_prefix, len(s) - n_prefix
        if processors is None:
            p, pmax, arg = next_token_probs(logits[b], input_ids[b], start, count)
        else:  # the processors must see the sequence without its padding
            real = slice(offsets[b], offsets[b] + len(s))
            p, pmax, arg = processed_next_token_probs(logits[b, real], input_ids[b, real], n_prefix, count, processors)
        yield p.cpu().double(), pmax.cpu().double(), arg.cpu()  # MPS has no float64: move first


class _TokenDecoder:
    """Decode single token ids, memoized (argmax tokens repeat a lot)."""

    def __init__(self, tokenizer):
        self.tokenizer, self.cache = tokenizer, {}

    def __call__(self, token_id: int) -> str:
        if token_id not in self.cache:
            self.cache[token_id] = self.tokenizer.decode([token_id])
        return self.cache[token_id]


def _provenance(elapsed: float, n_tokens: int) -> dict:
    from .provenance import versions

    return {
        **versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "elapsed_s": round(elapsed, 4),
        "tokens": n_tokens,
        "tokens_per_s": round(n_tokens / elapsed, 1) if elapsed > 0 else None,
    }
