"""Sentence inputs: read sets from files, tokenize, or draw random-token sentences."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import RepcheckError

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedTokenizerBase


@dataclass(frozen=True)
class EncodedSentence:
    """A sentence and its L token ids (no special tokens)."""

    text: str
    token_ids: tuple[int, ...]


def read_sentences(path: str | Path) -> list[str]:
    """Sentences from a file: ``.jsonl`` (a ``text`` field per line), ``.csv`` (a ``text``
    column), or plain text with one sentence per line (blank lines and ``#`` comments skipped).
    """
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise RepcheckError(f"cannot read sentence file {path}: {getattr(err, 'strerror', None) or err}") from None
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        texts = _from_jsonl(raw, path)
    elif suffix == ".csv":
        texts = _from_csv(raw, path)
    else:
        texts = [line.strip() for line in raw.splitlines()]
        texts = [t for t in texts if t and not t.startswith("#")]
    texts = [t.strip() for t in texts if t.strip()]
    if not texts:
        raise RepcheckError(f"sentence file {path} holds no sentences")
    return texts


def _from_jsonl(raw: str, path: Path) -> list[str]:
    texts = []
    for i, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            texts.append(str(row["text"]))
        except (ValueError, KeyError, TypeError):
            raise RepcheckError(f'{path}:{i}: expected a JSON object with a "text" field') from None
    return texts


def _from_csv(raw: str, path: Path) -> list[str]:
    reader = csv.DictReader(raw.splitlines())
    if not reader.fieldnames or "text" not in reader.fieldnames:
        raise RepcheckError(f'{path}: CSV needs a "text" column (found: {", ".join(reader.fieldnames or [])})')
    return [row["text"] or "" for row in reader]


def encode_sentences(tokenizer: PreTrainedTokenizerBase, texts: Iterable[str]) -> list[EncodedSentence]:
    """Tokenize each sentence once, without special tokens; refuse empty ones."""
    out = []
    for text in texts:
        if not text or not text.strip():
            raise RepcheckError("the sentence is empty; give a sentence with at least one token")
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if not ids:
            raise RepcheckError(f"the sentence {text!r} tokenizes to no tokens")
        out.append(EncodedSentence(text, tuple(int(i) for i in ids)))
    return out


def random_sentences(tokenizer: PreTrainedTokenizerBase, n: int, length: int, seed: int = 0) -> list[EncodedSentence]:
    """``n`` sentences of ``length`` token ids drawn uniformly (seeded) from the vocabulary,
    special tokens excluded. The paper shows that even such sentences self-reinforce."""
    import numpy as np

    if n < 1 or length < 1:
        raise RepcheckError("--random and --length must both be at least 1")
    special = set(tokenizer.all_special_ids)
    vocab = np.array([i for i in range(len(tokenizer)) if i not in special])
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        ids = tuple(int(i) for i in rng.choice(vocab, size=length, replace=True))
        out.append(EncodedSentence(tokenizer.decode(list(ids)), ids))
    return out


def prefix_ids(tokenizer: PreTrainedTokenizerBase, prefix: str | None = None) -> list[int]:
    """BOS (EOS where the tokenizer has no BOS, as GPT-2), then the tokens of ``prefix``."""
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    ids = [int(start)] if start is not None else []
    if prefix:
        ids += [int(i) for i in tokenizer(prefix, add_special_tokens=False)["input_ids"]]
    return ids


def find_token(tokens: list[str], word: str) -> int:
    """Position l of ``word`` among the decoded tokens: the first token equal to it (spaces
    ignored, then case), else the first token of a run of tokens that spells it."""
    stripped = [t.strip() for t in tokens]
    key = word.strip()
    for fold in (str, str.lower):
        candidates = [fold(t) for t in stripped]
        if fold(key) in candidates:
            return candidates.index(fold(key))
        for start in range(len(tokens)):  # a word split over several tokens
            spelled = ""
            for t in tokens[start:]:
                spelled = (spelled + t).strip() if spelled else t.strip()
                if fold(spelled) == fold(key):
                    return start
                if len(spelled) >= len(key):
                    break
    shown = " | ".join(stripped)
    raise RepcheckError(f"--token {word!r} is not a token of the sentence (its tokens: {shown})")
