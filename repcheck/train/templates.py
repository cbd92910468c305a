"""Repetition that was asked for, as training examples: what tells a model that copying on
request, the next branch of a chain, a table's next row or a refrain is right.

Each example is drawn from a template of one of the legitimate-repetition suite's categories
(copy, quote, list, code, table, json, refrain, again; the suite's ``translate`` needs a
translator and has no template) and filled with random content: sentences of the training
text, words, numbers. None is a test case of the suite (``repcheck/sample_prompts/legit.jsonl``;
a test checks that no prompt coincides). An example is a request and its one right answer,
rendered through the model's chat template when it has one (``Example.text``), else written as
plain text; it joins the MLE half of training as one more document, never a DITTO sample, so
the repetition penalty never sees a copy that was asked for. The structures among them (a list,
code, a table, JSON, a song) also come as their answer alone, in plain text (``--asked-plain``):
DITTO's samples are plain text, and so are the completions of the suite's plain-prompt cases.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import RepcheckError

CATEGORIES = ("copy", "quote", "list", "code", "table", "json", "refrain", "again")
#: categories whose answer alone is a structure that repeats itself rightly in plain text too (a
#: list, a function's branches, table rows, a JSON array, a song with its chorus); a copy's
#: answer alone would be unasked-for repetition
STRUCTURES = ("list", "code", "table", "json", "refrain")
WORDS = (
    "apple river stone cloud lamp garden window paper violin harbor mountain candle forest meadow bridge "
    "comet lantern pepper marble orchard island feather silver tiger velvet canyon ribbon harvest pebble"
).split()
NUMBER_WORDS = "zero one two three four five six seven eight nine ten eleven twelve".split()


@dataclass(frozen=True)
class Example:
    """A request and its right answer (``category`` as in the suite)."""

    category: str
    request: str
    answer: str

    def text(self, tokenizer) -> str:
        """The whole exchange as training text: through the chat template where the model
        has one (the answer as the assistant's turn, ending where the template ends a turn),
        else the request, a newline and the answer."""
        from ..prompts import has_chat_template

        if has_chat_template(tokenizer):
            messages = [{"role": "user", "content": self.request}, {"role": "assistant", "content": self.answer}]
            return tokenizer.apply_chat_template(messages, tokenize=False)
        return f"{self.request}\n{self.answer}"

    @property
    def plain(self) -> str | None:
        """The answer alone as plain running text, where it is a structure (``STRUCTURES``)."""
        return self.answer if self.category in STRUCTURES else None


Template = Callable[[np.random.Generator, Sequence[str]], Example]


def _pick(rng: np.random.Generator, items: Sequence, k: int = 1) -> list:
    return [items[i] for i in rng.choice(len(items), size=k, replace=len(items) < k)]


def _copy(rng, sentences):
    s = _pick(rng, sentences)[0]
    n = int(rng.integers(1, 4))
    asks = [f"Copy this sentence exactly: {s}", f"Repeat the following text word for word:\n{s}"]
    if n > 1:
        return Example("copy", f"Write this line {NUMBER_WORDS[n]} times, one per line:\n{s}", "\n".join([s] * n))
    return Example("copy", asks[int(rng.integers(len(asks)))], s)


def _quote(rng, sentences):
    a, b, c = _pick(rng, sentences, 3)
    which = int(rng.integers(3))
    name = ("first", "second", "third")[which]
    return Example("quote", f"Quote the {name} sentence of this passage exactly.\n\n{a} {b} {c}", (a, b, c)[which])


def _list(rng, sentences):
    start = int(rng.integers(1, 40))
    stop = start + int(rng.integers(4, 10))
    if rng.random() < 0.5:
        return Example(
            "list", f"Count from {start} to {stop}, separated by commas.", ", ".join(map(str, range(start, stop + 1)))
        )
    items = _pick(rng, WORDS, 4)
    shown = "\n".join(f"{i + 1}. {w}" for i, w in enumerate(items[:3]))
    return Example("list", f"Add the next item, {items[3]}, to this list and write the whole list:\n{shown}",
                   shown + f"\n4. {items[3]}")  # fmt: skip


def _code(rng, sentences):
    name = _pick(rng, WORDS)[0]
    n = int(rng.integers(3, 6))
    values = _pick(rng, WORDS, n)
    lines = [f"def {name}_name(n):"]
    for i, v in enumerate(values):
        lines += [f"    {'if' if i == 0 else 'elif'} n == {i + 1}:", f'        return "{v}"']
    shown = "\n".join(lines[: 1 + 2 * (n - 1)])
    return Example("code", f"Complete this function with the branch for n == {n}, returning \"{values[-1]}\", "
                   f"and write the whole function:\n{shown}", "\n".join(lines))  # fmt: skip


def _table(rng, sentences):
    k = int(rng.integers(2, 10))
    rows = int(rng.integers(3, 6))
    head = f"| n | n x {k} |\n|---|---|\n"
    body = "".join(f"| {i} | {i * k} |\n" for i in range(1, rows + 1))
    return Example("table", f"Write the multiplication table of {k} from 1 to {rows} as a Markdown table with "
                   f"columns n and n x {k}.", (head + body).rstrip("\n"))  # fmt: skip


def _json(rng, sentences):
    n = int(rng.integers(2, 5))
    names = _pick(rng, WORDS, n + 1)
    objects = [{"id": i + 1, "name": w} for i, w in enumerate(names)]
    shown = json.dumps(objects[:n])
    return Example("json", f"Append an object with id {n + 1} and name \"{names[n]}\" to this JSON array and print "
                   f"the array:\n{shown}", json.dumps(objects))  # fmt: skip


#: how songs mark their chorus (one is none: the lines come back by themselves)
CHORUS_LABELS = ("Chorus:", "Refrain:", "(Chorus)", "[Chorus]", "")
ZH_WORDS = "小鸟 月亮 星星 河水 花儿 小船 太阳 风儿 山坡 田野 灯笼 雪花".split()
ZH_ACTS = "飞呀 跑呀 唱呀 走呀 摇呀 笑呀".split()


def _line(rng) -> str:
    """A song line of random words; half of them repeat their first half, as song lines do."""
    a, b, c, d, e = _pick(rng, WORDS, 5)
    if rng.random() < 0.5:
        return f"{a.capitalize()} and {b}, {a} and {b}, {c} {d} {e}."
    return f"{a.capitalize()} {b} {c}, {d} {e}."


def _zh_line(rng) -> str:
    a, b = _pick(rng, ZH_WORDS, 2)
    act = _pick(rng, ZH_ACTS)[0]
    return f"{a}{act}，{a}{act}，{act}到{b}。"


def _refrain(rng, sentences):
    """A song whose chorus (one or two lines, labelled or not, English or Chinese) comes back
    after each verse; the request stops inside its last chorus, after its first line or after
    a few words of it, and the answer is the whole song."""
    zh = rng.random() < 0.2
    line = _zh_line if zh else _line
    chorus = [line(rng) for _ in range(int(rng.integers(1, 3)))]
    verses = [
        [line(rng)] if zh or rng.random() < 0.5 else _pick(rng, sentences) for _ in range(int(rng.integers(1, 3)))
    ]
    label = "" if zh else _pick(rng, CHORUS_LABELS)[0]
    inline = label and rng.random() < 0.5

    def block(lines: Sequence[str], mark: str) -> str:
        if not mark:
            return "\n".join(lines)
        return f"{mark} " + "\n".join(lines) if inline else f"{mark}\n" + "\n".join(lines)

    parts = [block(chorus, label)]
    for v in verses:
        parts += [block(v, "Verse:" if label else ""), block(chorus, label)]
    song = ("\n\n" if label and not inline else "\n").join(parts)
    last = parts[-1]  # the last chorus
    head = song[: len(song) - len(last)]
    start = last.index(chorus[0])
    if len(chorus) > 1:
        cut = start + len(chorus[0]) + 1  # after the chorus's first line
    else:
        sep = "，" if zh else " "
        words = chorus[0].split(sep)
        cut = start + len(sep.join(words[: max(1, len(words) // 2)]))
    shown = head + last[:cut]
    return Example("refrain", f"Finish this song's last chorus:\n{shown}", song)


def _again(rng, sentences):
    s = _pick(rng, sentences)[0]
    return Example("again", f"Say it again, exactly as before: {s}", s)


TEMPLATES: dict[str, Template] = {
    "copy": _copy, "quote": _quote, "list": _list, "code": _code, "table": _table, "json": _json,
    "refrain": _refrain, "again": _again,
}  # fmt: skip


def examples(n: int, sentences: Sequence[str], seed: int, categories: Sequence[str] = CATEGORIES) -> list[Example]:
    """``n`` examples, the ``categories`` in turn, content drawn from ``sentences`` (seeded)."""
    usable = [s for s in sentences if 20 <= len(s) <= 200]
    if n and len(usable) < 3:
        raise RepcheckError("legitimate-repetition examples need at least 3 sentences of 20-200 characters")
    rng = np.random.default_rng([seed, 7])
    return [TEMPLATES[categories[i % len(categories)]](rng, usable) for i in range(n)]


__all__ = ["CATEGORIES", "STRUCTURES", "Example", "TEMPLATES", "examples"]
