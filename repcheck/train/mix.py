"""What a run trains on, evaluates on and validates on, assembled in one place.

* **Documents**: the model's own answers (``selfgen``; the default source) and the user's
  text (``--data``, the shipped ``python_docs`` corpus by name), each document kept as plain
  text (DITTO's samples and the held-out sentences come from it) and as training text (an
  answer with its request, through the chat template where the model chats).
* **Splits**: a seeded ``eval_fraction`` of the documents is held out and halved: one half for
  the final evaluation, the other for the validation that chooses the step to keep (the
  final evaluation never sees what chose the step).
* **MLE text**: the training documents plus ``legit_mix`` examples of asked-for repetition per
  document (``templates``, content from training sentences) and, for a ``plain_mix`` share of
  the chat-formatted documents, their plain text as well (no end-of-turn token after it), and
  ``asked_plain`` examples of structure per document as their answer alone, in a
  seeded order, as one stream cut into blocks; each token marked where it is the model's own
  text (its answers, their plain text), which ``--anchor kl`` holds to the base model's
  distribution instead of training on the sampled token.
* **DITTO samples**: from the training documents' plain text only: an asked-for copy is never
  a pseudo-repetitive sample. For a ``chat_samples`` share of the chat-formatted documents
  the samples sit inside the conversation: the request and the opened assistant turn, then
  the answer's text before the repeated sentence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import RepcheckError
from ..progress import ProgressCallback
from .config import TrainConfig
from .data import check_corpus, marked_blocks, read_corpus, repetition_pairs, sentences_of, split_corpus
from .templates import STRUCTURES, examples


@dataclass
class Document:
    plain: str  # the text itself (an answer, a paragraph)
    training: str  # what MLE trains on (the answer with its request where the model chats)
    ends: bool = True  # an EOS token follows it in the MLE stream (not where the text ends itself)
    own: bool = False  # the model's own text (``--anchor kl`` anchors it to the base model)


@dataclass
class TrainingData:
    blocks: list[list[int]]  # MLE blocks
    own: list[list[bool]]  # per block and token: the model's own text (not the user's, not an asked-for example)
    pairs: list[tuple[list[int], list[int]]]  # DITTO (prefix, copy) pairs
    held_out: list[str]  # plain documents for the final evaluation
    validation: list[str]  # plain documents for the step selection
    asked: list[tuple[str, str]]  # validation: (rendered request, right answer) of asked-for repetition
    info: dict[str, Any] = field(default_factory=dict)


def gather(cfg: TrainConfig, model, progress: ProgressCallback | None = None) -> TrainingData:
    """Every document, split, mixed and tokenized (see the module docstring)."""
    from .selfgen import read_requests, self_generated

    tok = model.tokenizer
    docs: list[Document] = []
    info: dict[str, Any] = {"sources": []}
    if cfg.data:
        if progress:
            progress("reading the training text", 0, 0)
        user = read_corpus(cfg.data)
        docs += [Document(d, d) for d in user]
        info["sources"].append({"data": list(cfg.data), "documents": len(user)})
    if cfg.self_samples:
        requests = read_requests(cfg.self_requests) if cfg.self_requests else None
        own = self_generated(
            model,
            cfg.self_samples,
            cfg.self_new_tokens,
            cfg.seed,
            progress=progress,
            sampling=cfg.self_sampling,
            requests=requests,
        )
        docs += [Document(a, t, ends=False, own=True) for a, t in zip(own.answers, own.documents, strict=True)]
        info["sources"].append({"self_generated": own.to_dict()})
    split = split_corpus(list(range(len(docs))), cfg.eval_fraction, cfg.seed)
    held = [docs[i] for i in split.held_out]
    train = [docs[i] for i in split.train]
    evaluation, validation = held[0::2], held[1::2]

    train_sentences = [s for sents in sentences_of(d.plain for d in train) for s in sents]
    n_examples = round(cfg.legit_mix * len(train))
    asked_train = examples(n_examples, train_sentences, cfg.seed) if n_examples else []
    from ..prompts import has_chat_template

    chat = has_chat_template(tok)
    in_chat = cfg.anchor == "kl"  # "plain": the anchor holds the plain text only; chat stays MLE
    mle_docs = [(d.training, d.ends, d.own and (in_chat or d.training == d.plain)) for d in train] + [
        (asked_segments(e, tok, in_chat), not chat, False) for e in asked_train
    ]
    # the plain text of chat-formatted documents too: DITTO's samples are plain text, and a model
    # that only ever sees plain text in them learns to end its turn after any sentence there
    chatted = [d for d in train if d.training != d.plain]
    picked = np.random.default_rng([cfg.seed, 5]).permutation(len(chatted))[: round(cfg.plain_mix * len(chatted))]
    mle_docs += [(chatted[i].plain + "\n\n", False, chatted[i].own) for i in sorted(picked)]
    n_plain = round(cfg.asked_plain * len(train))
    plain_examples = examples(n_plain, train_sentences, cfg.seed + 2, STRUCTURES) if n_plain else []
    mle_docs += [(e.plain + "\n\n", False, False) for e in plain_examples]
    texts, ends, own = zip(*(mle_docs[i] for i in np.random.default_rng([cfg.seed, 3]).permutation(len(mle_docs))))
    blocks, own_tokens = marked_blocks(tok, texts, cfg.block_size, ends, own)
    pairs, n_chat = ditto_pairs(cfg, tok, train) if cfg.method == "ditto" else ([], 0)
    check_corpus(pairs, blocks, cfg.method, cfg.block_size)
    if len(held) < 2:
        raise RepcheckError(
            f"{len(docs)} documents leave fewer than 2 to hold out (eval_fraction {cfg.eval_fraction}); give more text",
            param="eval_fraction",
        )

    validation_sentences = [s for sents in sentences_of(d.plain for d in validation) for s in sents]
    asked_val = examples(24, validation_sentences or train_sentences, cfg.seed + 1)
    info.update(
        documents=len(docs),
        train_documents=len(train),
        held_out_documents=len(evaluation),
        validation_documents=len(validation),
        asked_for_examples=len(asked_train),
        plain_documents=len(picked),
        plain_examples=len(plain_examples),
        train_blocks=len(blocks),
        train_tokens=len(blocks) * cfg.block_size,
        own_tokens=sum(map(sum, own_tokens)),
        repetition_pairs=len(pairs),
        repetition_pairs_in_chat=n_chat,
    )
    return TrainingData(
        blocks=blocks,
        own=own_tokens,
        pairs=pairs,
        held_out=[d.plain for d in evaluation],
        validation=[d.plain for d in validation],
        asked=[request_and_answer(tok, e) for e in asked_val],
        info=info,
    )


def ditto_pairs(cfg: TrainConfig, tokenizer, train: Sequence[Document]) -> tuple[list, int]:
    """DITTO's (prefix, copy) pairs from the training documents' plain text, those of a seeded
    ``chat_samples`` share of the chat-formatted documents inside their conversation (the
    text before the answer as the head of every prefix); and how many pairs are in chat."""
    heads = [d.training[: d.training.index(d.plain)] if d.plain and d.plain in d.training else "" for d in train]
    chatted = [i for i, head in enumerate(heads) if head]
    rng = np.random.default_rng([cfg.seed, 7])
    chosen = set(rng.permutation(chatted)[: round(cfg.chat_samples * len(chatted))].tolist()) if chatted else set()
    plain = [d.plain for i, d in enumerate(train) if i not in chosen]
    pairs = repetition_pairs(tokenizer, plain, cfg.block_size, free_copies=cfg.free_copies)
    if not chosen:
        return pairs, 0
    order = sorted(chosen)
    in_chat = repetition_pairs(
        tokenizer, [train[i].plain for i in order], cfg.block_size, free_copies=cfg.free_copies,
        heads=[heads[i] for i in order],
    )  # fmt: skip
    return pairs + in_chat, len(in_chat)


def asked_segments(example, tokenizer, anchor_end: bool = True) -> list[tuple[str, bool]]:
    """An asked-for example as MLE text in two segments: the exchange up to the end of the
    answer (MLE: the answer is right), then what closes the turn (the end-of-turn token),
    flagged as the model's own, so ``--anchor kl`` leaves where answers end to the base model:
    short exchanges that all end would otherwise teach the model to end its answers early.
    ``anchor_end=False`` (``--anchor plain``, where chat text stays MLE): one MLE segment."""
    text = example.text(tokenizer)
    cut = text.rfind(example.answer)
    if not anchor_end or cut < 0 or not text[cut + len(example.answer) :].strip():
        return [(text, False)]
    cut += len(example.answer)
    return [(text[:cut], False), (text[cut:], True)]


def request_and_answer(tokenizer, example) -> tuple[str, str]:
    """The rendered request (the assistant's turn opened, where the model chats) and the text
    that completes it into the whole exchange (the answer and the turn's end)."""
    from ..prompts import has_chat_template

    if has_chat_template(tokenizer):
        request = tokenizer.apply_chat_template(
            [{"role": "user", "content": example.request}], add_generation_prompt=True, tokenize=False
        )
        whole = example.text(tokenizer)
        if whole.startswith(request):
            return request, whole[len(request) :]
        return request, example.answer
    return example.request + "\n", example.answer


def validation_sentences(tokenizer, documents: Sequence[str], limit: int = 12, most_tokens: int = 30) -> list[str]:
    """Sentences of the validation documents short enough to be repeated 8 times."""
    out = []
    for sents in sentences_of(documents):
        for s in sents:
            if 5 <= len(tokenizer(s, add_special_tokens=False)["input_ids"]) <= most_tokens:
                out.append(s)
    return out[:limit]


__all__ = [
    "Document",
    "TrainingData",
    "asked_segments",
    "ditto_pairs",
    "gather",
    "request_and_answer",
    "validation_sentences",
]
