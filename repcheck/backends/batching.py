"""Padded batches for a transformers model: which sequences share a forward pass, how they are
padded, and the pass itself with positions that ignore the padding.

Used by the hf backend's scoring, full distributions and traced passes (``repcheck explain``),
and by its generation (``pad_batch``). A leaf: torch only, imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import RepcheckError

#: Upper bound on the logits tensor of one forward pass ([B, T, V] floats); larger batches
#: are split so peak memory stays modest whatever the batch size says.
LOGITS_BUDGET_BYTES = 512 * 2**20
#: Largest share of a batch's positions that may be padding.
MAX_PADDING_SHARE = 0.2
PADDING_SIDES = ("left", "right")


def plan_batches(lengths: Sequence[int], batch_size: int, vocab: int) -> list[list[int]]:
    """Group sequence indices, longest first, into batches of at most ``batch_size``.

    A batch also closes when its logits would exceed LOGITS_BUDGET_BYTES, or when padding
    would exceed MAX_PADDING_SHARE of its tokens: padded positions cost as much as real
    ones, so a long sequence batched with short ones would slow the whole batch down.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    real = 0  # real tokens in the current batch
    for i in order:
        if batches:
            cur = batches[-1]
            longest = lengths[cur[0]]  # sorted: the first is the longest
            padded = (len(cur) + 1) * longest
            if (
                len(cur) < batch_size
                and padded * vocab * 4 <= LOGITS_BUDGET_BYTES
                and padded - real - lengths[i] <= MAX_PADDING_SHARE * padded
            ):
                cur.append(i)
                real += lengths[i]
                continue
        batches.append([i])
        real = lengths[i]
    return batches


def check_padding_side(padding_side: str) -> str:
    if padding_side not in PADDING_SIDES:
        raise RepcheckError(f"padding side must be 'left' or 'right', not {padding_side!r}", param="padding_side")
    return padding_side


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int, padding_side: str = "left"):
    """Pack sequences into input_ids and attention_mask [B, T], padded on ``padding_side``.

    Returns (input_ids, attention_mask, offsets): sequence b occupies positions
    offsets[b] .. offsets[b] + len(seqs[b]) - 1.
    """
    import torch

    check_padding_side(padding_side)
    B, T = len(seqs), max(len(s) for s in seqs)
    input_ids = torch.full((B, T), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((B, T), dtype=torch.long)
    offsets = []
    for b, s in enumerate(seqs):
        off = T - len(s) if padding_side == "left" else 0
        input_ids[b, off : off + len(s)] = torch.tensor(list(s), dtype=torch.long)
        attention_mask[b, off : off + len(s)] = 1
        offsets.append(off)
    return input_ids, attention_mask, offsets


def padded_forward(
    model, seqs: Sequence[Sequence[int]], pad_id: int, device, padding_side: str = "left", **forward_kwargs
):
    """One forward pass over a padded batch.

    Returns (outputs, input_ids [B, T], offsets) as ``pad_batch`` lays them out; outputs has
    ``logits`` [B, T, V] (and whatever ``forward_kwargs`` ask for, e.g. attentions). Position
    ids count real tokens only, so a padded sequence sees the same positions as it would alone.
    """
    input_ids, attention_mask, offsets = pad_batch(seqs, pad_id, padding_side)
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    input_ids = input_ids.to(device)
    outputs = model(
        input_ids=input_ids,
        attention_mask=attention_mask.to(device),
        position_ids=position_ids.to(device),
        use_cache=False,
        **forward_kwargs,
    )
    return outputs, input_ids, offsets
