"""Training data: the corpus, its held-out split, and the two kinds of samples.

* **Text blocks** (MLE, unlikelihood, ScaleGrad): every document tokenized, joined with the
  EOS token into one stream, cut into blocks of ``block_size`` tokens (after a BOS token).
* **Pseudo-repetitive samples** (DITTO, ``fairseq/custom/repetetion_penalty_accum_loss.py``
  ``re_orgnize_sentence``): running text up to a sentence, then that sentence repeated until
  the block is full; the loss mask covers the copies after the first. As the paper's samples
  are cut from the running token stream, the copies are joined as running text joins
  sentences: each copy is the sentence's tokens *with* the separator that precedes it there
  (a space in Latin text, nothing in CJK), the prefix is the text before it in its document
  (its last tokens, as many as fit), and no BOS token is added.

Sentences come from ``repcheck.sentences.split_sentences`` (Latin and CJK punctuation), not
from a "." token id, which BPE tokenizers do not have.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import RepcheckError
from ..sentences import iter_sentences, split_sentences

#: The corpus that ships with repcheck (see docs/training.md for its source and licence).
DEFAULT_CORPUS = "python_docs"


def default_corpus_path():
    return resources.files("repcheck") / "train" / "corpus" / f"{DEFAULT_CORPUS}.txt"


def read_corpus(paths: Sequence[str | Path] = ()) -> list[str]:
    """Documents from files (the same formats as ``probe --file``: one document a line, a
    JSONL/JSON ``text``, a CSV ``text`` column), directories of .txt files and the shipped
    corpus by name (``python_docs``, also what no path gives)."""
    if not paths:
        paths = [DEFAULT_CORPUS]
    docs: list[str] = []
    for raw in paths:
        if str(raw) == DEFAULT_CORPUS and not Path(raw).exists():
            with resources.as_file(default_corpus_path()) as p:
                docs.extend(iter_sentences(p))
            continue
        path = Path(raw).expanduser()
        if path.is_dir():
            files = sorted(f for f in path.rglob("*.txt") if f.is_file())
            if not files:
                raise RepcheckError(f"{path} holds no .txt files", param="data")
            for f in files:
                docs.extend(iter_sentences(f))
        elif path.exists():
            docs.extend(iter_sentences(path))
        else:
            raise RepcheckError(f"no such file or directory: {path}", param="data")
    if not docs:
        raise RepcheckError("the training corpus is empty", param="data")
    return docs


@dataclass
class Split:
    train: list[str]  # documents
    held_out: list[str]


def split_corpus(documents: Sequence[str], eval_fraction: float, seed: int) -> Split:
    """Keep a seeded ``eval_fraction`` of the documents (at least one) out of training."""
    if not 0 < eval_fraction < 1:
        raise RepcheckError(f"eval_fraction must be in (0, 1), got {eval_fraction}", param="eval_fraction")
    if len(documents) < 2:
        raise RepcheckError("the corpus needs at least 2 documents (lines): one to train on, one held out")
    order = np.random.default_rng(seed).permutation(len(documents))
    n_eval = max(1, round(eval_fraction * len(documents)))
    held = set(order[:n_eval].tolist())
    return Split(
        train=[d for i, d in enumerate(documents) if i not in held],
        held_out=[d for i, d in enumerate(documents) if i in held],
    )


def sentences_of(documents: Iterable[str]) -> list[list[str]]:
    """Each document's sentences (documents with none are dropped)."""
    return [s for s in (split_sentences(d) for d in documents) if s]


# ---- token-level samples ----------------------------------------------------------------------
@dataclass(frozen=True)
class RepetitionSample:
    """One pseudo-repetitive sample: ``input_ids`` of exactly the block size; ``start`` is the
    first position whose loss counts (where the second copy begins) and ``period`` the length
    of the repeated sentence in tokens."""

    input_ids: tuple[int, ...]
    start: int
    period: int


def text_blocks(
    tokenizer, documents: Sequence[str], block_size: int, ends: Sequence[bool] | None = None
) -> list[list[int]]:
    """The documents as one token stream (EOS after each document, or after those ``ends``
    marks: a chat transcript ends its own turns, and an answer the budget cut short must not
    end), cut into blocks of ``block_size`` tokens, each after a BOS (or EOS) token. The last
    partial block is dropped."""
    return _cut(tokenizer, documents, block_size, ends, None)[0]


def marked_blocks(
    tokenizer,
    documents: Sequence[str | Sequence[tuple[str, bool]]],
    block_size: int,
    ends: Sequence[bool],
    marks: Sequence[bool],
) -> tuple[list[list[int]], list[list[bool]]]:
    """``text_blocks`` and, beside each block, a flag per token: its document's ``marks``, or,
    for a document given as (text, flag) segments, each segment's own flag (a document's EOS
    carries its last flag; each block's leading BOS is False)."""
    return _cut(tokenizer, documents, block_size, ends, marks)


def _cut(tokenizer, documents, block_size, ends, marks) -> tuple[list[list[int]], list[list[bool]]]:
    from ..sentences import prefix_ids

    start = prefix_ids(tokenizer)
    sep = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    width = block_size - len(start)
    ends = list(ends) if ends is not None else [True] * len(documents)
    marks = list(marks) if marks is not None else [False] * len(documents)
    segments = [[(d, m)] if isinstance(d, str) else list(d) for d, m in zip(documents, marks, strict=True)]
    ids_of = iter(tokenizer([t for doc in segments for t, _ in doc], add_special_tokens=False)["input_ids"])
    stream: list[int] = []
    flags: list[bool] = []
    for doc, end in zip(segments, ends, strict=True):
        for _, flag in doc:
            ids = next(ids_of)
            stream.extend(ids)
            flags.extend([flag] * len(ids))
        if end:
            stream.extend(sep)
            flags.extend([doc[-1][1]] * len(sep))
    cuts = range(0, len(stream) - width + 1, width)
    return (
        [start + stream[i : i + width] for i in cuts],
        [[False] * len(start) + flags[i : i + width] for i in cuts],
    )


def end_tokens(tokenizer, generation_config=None) -> list[int]:
    """The ids that end a text or a turn: the stop ids every backend stops on
    (``hf_utils.eos_ids_of``: the generation config's, else EOS), the tokenizer's EOS, the special
    tokens whose name says end (``<|endoftext|>``, ``<|end_of_text|>``, ``<end_of_turn>``), and those
    that close an assistant turn of the chat template where the model has one (``<|im_end|>``,
    ``<|eot_id|>``)."""
    from ..backends.hf_utils import eos_ids_of
    from ..prompts import has_chat_template

    ids = set(eos_ids_of(generation_config, tokenizer)) | ({tokenizer.eos_token_id} - {None})
    named = [t for t in tokenizer.all_special_tokens if "end" in t.lower() or t in ("</s>", "<eos>")]
    ids |= set(tokenizer.convert_tokens_to_ids(named))
    if has_chat_template(tokenizer):
        turn = tokenizer.apply_chat_template(
            [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], tokenize=False
        )
        tail = tokenizer(turn[turn.rindex("b") + 1 :], add_special_tokens=False)["input_ids"]
        ids |= set(tail) & set(tokenizer.all_special_ids)
    return sorted(ids)


def separator(sentence: str) -> str:
    """What joins a sentence to the one before it in running text: nothing before CJK, else a space."""
    first = sentence[:1]
    return "" if first and ("\u3000" <= first <= "\u9fff" or "\uff00" <= first <= "\uffef") else " "


def repetition_pairs(
    tokenizer,
    documents: Sequence[str],
    block_size: int,
    max_prefix: int = 48,
    free_copies: int = 0,
    heads: Sequence[str] | None = None,
) -> list[tuple[list[int], list[int]]]:
    """(prefix, copy) token pairs from running text: for every sentence after a document's
    first, the prefix is the document's text before it (its last ``max_prefix`` tokens) and
    the copy is the sentence with its separator, tokenized as it occurs there. A pair whose
    prefix and the copies up to the first penalized one (2 + ``free_copies``) do not fit in
    the block is skipped.

    ``heads`` (``--chat-samples``; one per document, "" for none): what precedes the document
    in its conversation (the rendered request and the opened assistant turn). A document with
    a head has it before its text in every prefix, and then the text's last whole sentences
    that fit in ``max_prefix // 2`` tokens (the pair is skipped where the one before is
    longer): the sample is a repeat inside an answer, where ending the turn is a way out that
    plain text does not have."""
    pairs = []
    heads = list(heads) if heads is not None else [""] * len(documents)
    for doc, head in zip(documents, heads, strict=True):
        sents = split_sentences(doc)
        if len(sents) < 2:
            continue
        head_ids = tokenizer(head, add_special_tokens=False)["input_ids"] if head else []
        text = sents[0]
        for n, cur in enumerate(sents[1:], start=1):
            joined = separator(cur) + cur
            if head_ids:
                context = _whole_sentences(tokenizer, sents[:n], max_prefix // 2)
                prefix = head_ids + context if context else []  # none: the copy's separator would open the answer
            else:
                prefix = tokenizer(text, add_special_tokens=False)["input_ids"][-max_prefix:]
            copy = tokenizer(joined, add_special_tokens=False)["input_ids"]
            if copy and prefix and len(prefix) + (2 + free_copies) * len(copy) <= block_size:
                pairs.append((prefix, copy))
            text += joined
    return pairs


def _whole_sentences(tokenizer, sentences: Sequence[str], budget: int) -> list[int]:
    """The tokens of the last of ``sentences`` that fit in ``budget`` tokens, joined as running text."""
    text = ""
    for sentence in reversed(sentences):
        longer = sentence + (separator(text) + text if text else "")
        if len(tokenizer(longer, add_special_tokens=False)["input_ids"]) > budget:
            break
        text = longer
    return tokenizer(text, add_special_tokens=False)["input_ids"] if text else []


def repetition_sample(
    prefix: Sequence[int], sentence: Sequence[int], block_size: int, free_copies: int = 0
) -> RepetitionSample:
    """prefix + sentence + sentence + ... cut at exactly ``block_size`` tokens (DITTO fills the
    block with whole copies and a partial last one). The loss starts at the second copy (DITTO)
    or, with ``free_copies`` = k, at copy 2 + k: the first k repeats are left alone."""
    n = (block_size - len(prefix)) // len(sentence) + 1
    ids = (list(prefix) + list(sentence) * n)[:block_size]
    return RepetitionSample(tuple(ids), start=len(prefix) + (1 + free_copies) * len(sentence), period=len(sentence))


def check_corpus(pairs: Sequence, blocks: Sequence, method: str, block_size: int) -> None:
    """Refuse a corpus the method cannot train on, with a one-line reason."""
    if method == "ditto" and not pairs:
        raise RepcheckError(
            f"DITTO needs documents with at least 2 sentences (a prefix and a sentence to repeat) whose prefix "
            f"and copies up to the first penalized one fit in {block_size} tokens; the corpus has none",
            param="data",
        )
    if not blocks:
        raise RepcheckError(
            f"the corpus is shorter than one block of {block_size} tokens; give more text or a smaller block size",
            param="data",
        )
