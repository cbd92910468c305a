"""Sentence inputs: read sets from files, tokenize, draw random-token sentences, split text.

Files are read as people save them: UTF-8 with or without a byte-order mark, any line
ending; ``.txt`` holds one sentence per line (blank lines and ``#`` comments skipped; a
form feed or U+2028 inside a line stays inside the sentence), ``.jsonl`` one JSON object
with a string ``text`` per line, ``.json`` an array of strings or of such objects, ``.csv``
a ``text`` column (quoted fields may span lines). Files are streamed, so ``limit`` stops
reading early. The sets shipped with repcheck are named without a path (``SHIPPED_SETS``:
``--file wiki_en``), so they work from a wheel as from a checkout.
"""

from __future__ import annotations

import csv
import itertools
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import RepcheckError, require_int
from .progress import ProgressCallback

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedTokenizerBase

#: Sentences tokenized per call (fast tokenizers encode a list much faster than one by one).
TOKENIZE_CHUNK = 1024


@dataclass(frozen=True)
class EncodedSentence:
    """A sentence and its L token ids (no special tokens)."""

    text: str
    token_ids: tuple[int, ...]


# ---- reading files ---------------------------------------------------------------------------
#: the sentence and prompt sets installed with repcheck, by name
SHIPPED_SETS = {
    "wiki_en": "wiki_en.txt",  # 104 English encyclopedia sentences
    "zh": "zh.txt",  # Chinese sentences
    "open_ended": "open_ended.txt",  # open-ended prompts for compare
    # conversations ({"messages": [...]} per line) for compare --chat
    "chat_en": "chat_en.jsonl",  # open-ended and instruction requests, some with a system turn
    "chat_zh": "chat_zh.jsonl",
    "reasoning_en": "reasoning_en.jsonl",  # short word problems, "Think step by step."
    "reasoning_zh": "reasoning_zh.jsonl",
}


def resolve_input(path: str | Path) -> Path:
    """A file's path, or the installed file of a shipped set named without a path
    (``wiki_en``) when no such file exists here."""
    given = Path(path).expanduser()
    if not given.exists() and str(path) in SHIPPED_SETS:
        return Path(__file__).resolve().parent / "sample_prompts" / SHIPPED_SETS[str(path)]
    return given


def read_sentences(path: str | Path, limit: int | None = None) -> list[str]:
    """Every sentence of a file (see the module docstring for the formats), or the first
    ``limit``. Refuses a file with none."""
    if limit is not None:
        require_int("limit", limit, 1)
    texts = list(itertools.islice(iter_sentences(path), limit))
    if not texts:
        raise RepcheckError(f"sentence file {path} holds no sentences")
    return texts


def iter_sentences(path: str | Path) -> Iterator[str]:
    """Stream the sentences of a file (or shipped set), stripped, empty ones skipped."""
    path = resolve_input(path)
    suffix = path.suffix.lower()
    try:
        # utf-8-sig drops a byte-order mark; newline="" leaves line endings to the reader
        # (the csv module needs that for quoted fields that span lines).
        with open(path, encoding="utf-8-sig", newline="" if suffix == ".csv" else None) as fh:
            if suffix == ".jsonl":
                rows = _from_jsonl(fh, path)
            elif suffix == ".json":
                rows = _from_json(fh, path)
            elif suffix == ".csv":
                rows = _from_csv(fh, path)
            else:
                rows = _from_text(fh)
            for text in rows:
                text = text.strip()
                if text:
                    yield text
    except OSError as err:
        hint = f" (the shipped sets are named without a path: {', '.join(SHIPPED_SETS)})" if not path.exists() else ""
        raise RepcheckError(f"cannot read sentence file {path}: {err.strerror or err}{hint}") from None
    except UnicodeDecodeError as err:
        raise RepcheckError(f"sentence file {path} is not UTF-8 text ({err.reason} at byte {err.start})") from None


def _from_text(fh) -> Iterator[str]:
    for line in fh:  # universal newlines: \n, \r\n, \r (not U+2028 or form feeds)
        text = line.rstrip("\r\n")
        if not text.lstrip().startswith("#"):
            yield text


def _text_field(row: Any, where: str) -> str:
    if isinstance(row, str):
        return row
    if not isinstance(row, dict) or "text" not in row:
        raise RepcheckError(f'{where}: expected a JSON object with a "text" field')
    if not isinstance(row["text"], str):
        raise RepcheckError(f'{where}: "text" must be a string, not {type(row["text"]).__name__}')
    return row["text"]


def _from_jsonl(fh, path: Path) -> Iterator[str]:
    for i, line in enumerate(fh, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise RepcheckError(f"{path}:{i}: not valid JSON") from None
        if not isinstance(row, dict):
            raise RepcheckError(f'{path}:{i}: expected a JSON object with a "text" field')
        yield _text_field(row, f"{path}:{i}")


def _from_json(fh, path: Path) -> Iterator[str]:
    try:
        doc = json.load(fh)
    except ValueError as err:
        raise RepcheckError(f"{path} is not valid JSON ({err})") from None
    if not isinstance(doc, list):
        raise RepcheckError(f'{path}: expected a JSON array of strings or of objects with a "text" field')
    for i, row in enumerate(doc):
        yield _text_field(row, f"{path}: item {i}")


def _from_csv(fh, path: Path) -> Iterator[str]:
    reader = csv.DictReader(fh)
    try:
        names = reader.fieldnames
    except csv.Error as err:
        raise RepcheckError(f"{path}: not a readable CSV file ({err})") from None
    if not names or "text" not in names:
        raise RepcheckError(f'{path}: CSV needs a "text" column (found: {", ".join(names or [])})')
    try:
        for row in reader:
            yield row["text"] or ""
    except csv.Error as err:
        raise RepcheckError(f"{path}:{reader.line_num}: {err}") from None


# ---- tokenizing ----------------------------------------------------------------------------
def encode_sentences(
    tokenizer: PreTrainedTokenizerBase, texts: Iterable[str], progress: ProgressCallback | None = None
) -> list[EncodedSentence]:
    """Tokenize each sentence once, without special tokens; refuse empty ones."""
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            where = "the sentence is empty" if len(texts) == 1 else f"sentence {i + 1} is empty"
            raise RepcheckError(f"{where}; give a sentence with at least one token")
    out = []
    for start in range(0, len(texts), TOKENIZE_CHUNK):
        chunk = texts[start : start + TOKENIZE_CHUNK]
        for text, ids in zip(chunk, tokenizer(chunk, add_special_tokens=False)["input_ids"]):
            if not ids:
                raise RepcheckError(f"the sentence {text!r} tokenizes to no tokens")
            out.append(EncodedSentence(text, tuple(int(i) for i in ids)))
        if progress and len(texts) > TOKENIZE_CHUNK:
            progress("tokenizing", len(out), len(texts))
    return out


def random_sentences(
    tokenizer: PreTrainedTokenizerBase,
    n: int,
    length: int | tuple[int, int],
    seed: int = 0,
    *,
    full_vocabulary: bool = False,
) -> list[EncodedSentence]:
    """``n`` sentences of token ids drawn uniformly (seeded) from the vocabulary: the paper
    shows that even such sentences self-reinforce.

    ``length``: tokens per sentence, or a (low, high) range drawn uniformly per sentence, as
    the paper draws its random sentences. Special tokens are excluded unless
    ``full_vocabulary`` (every id of the tokenizer, as the paper's code samples them)."""
    import numpy as np

    require_int("n", n, 1)
    require_int("seed", seed, 0)
    lo, hi = (length, length) if isinstance(length, int) else length
    require_int("length", lo, 1)
    require_int("length", hi, lo)
    special = set() if full_vocabulary else set(tokenizer.all_special_ids)
    vocab = np.array([i for i in range(len(tokenizer)) if i not in special])
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        size = lo if lo == hi else int(rng.integers(lo, hi + 1))
        ids = tuple(int(i) for i in rng.choice(vocab, size=size, replace=True))
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
    if not key:
        raise RepcheckError("the token to draw is empty; give a word of the sentence", param="token")
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
    raise RepcheckError(f"{word!r} is not a token of the sentence (its tokens: {shown})", param="token")


# ---- splitting text into sentences ---------------------------------------------------------
#: Words ending in "." that do not end a sentence (compared without the dot, lower case).
ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st mt vs etc e.g i.e cf al fig no vol pp approx inc ltd co corp dept est "
    "jan feb mar apr jun jul aug sep sept oct nov dec u.s u.k a.m p.m".split()
)
_CJK_END = "。！？"  # full stops that need no space after them
_CLOSERS = "\"'”’)]}»」』）】"
_C = re.escape(_CLOSERS)
_BOUNDARY = re.compile(
    rf"""(?:
        [{_CJK_END}]+[{_C}]*           # 。！？: no space needed after them
      | [.!?…]+[{_C}]*(?=\s|$)         # . ! ? followed by white space or the end
    )[^\S\n]*
    | \n\s*                                  # a line break always ends a sentence
    """,
    re.X,
)


def split_sentences(text: str) -> list[str]:
    """Split text into sentences at . ! ? (followed by white space) and 。！？ (no space
    needed), and at line breaks; closing quotes and brackets stay with their sentence, and
    abbreviations (Mr., e.g., U.S.), initials (J. R. R.) and decimals (3.14) do not split."""
    out, start = [], 0
    for m in _BOUNDARY.finditer(text):
        end = m.end()
        piece = text[start:end].strip()
        mark = m.group(0).strip()
        if mark.startswith(".") and _not_a_sentence_end(text[start : m.start()]):
            continue  # "Mr." or "J." : keep going, the sentence goes on
        if piece:
            out.append(piece)
        start = end
    rest = text[start:].strip()
    if rest:
        out.append(rest)
    return out


def _not_a_sentence_end(before: str) -> bool:
    """Whether the word right before a "." is an abbreviation or an initial (one capital)."""
    word = before.rsplit(None, 1)[-1] if before.split() else ""
    word = word.lstrip("\"'“‘([{«")
    return word.lower() in ABBREVIATIONS or (len(word) == 1 and word.isupper())
