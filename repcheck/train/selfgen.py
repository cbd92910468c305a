"""MLE data that does not move the model: text the model writes itself.

DITTO's paper fine-tunes on the model's own pretraining distribution; a user rarely has that
corpus, and a narrow one (the shipped Python documentation) pulls the model into its domain
and its style. The model's own answers are the closest thing at hand: ``self_generated``
asks it ``n`` open requests (``instructions``: tasks and beginnings of a text x topics,
written for this purpose, none of them an evaluation prompt; or the user's own, which are
the conversations the anchor should hold), through its chat template when
it has one, sampled at its recommended settings (the checkpoint's generation_config where it
samples, else ``DEFAULT_SAMPLING``), and keeps the answers that are neither loops nor
near-duplicates of one another. The answers (each with its request, as a conversation where the model chats)
become training documents. An answer the budget cut short is rendered with its turn left open
(no end-of-turn token): only answers that ended by themselves teach where answers end, so
training on them does not make answers shorter. They are cached by the model's identity and
every choice that shaped them, so a second run (or a sweep) does not generate them again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import RepcheckError
from ..progress import ProgressCallback

#: sampling for a checkpoint whose generation_config does not sample (SmolLM2's model card
#: recommends temperature 0.2 and top_p 0.9 for chat; a little more temperature keeps the
#: answers varied)
DEFAULT_SAMPLING = "temperature=0.7,top_p=0.9"
#: an answer is kept only if its 4-gram set overlaps every kept answer's by less than this
NEAR_DUPLICATE = 0.5
VERSION = 3  # of the recipe: part of the cache key

TASKS = (
    "Explain {t} to a curious twelve-year-old.",
    "Write a short paragraph about {t}.",
    "What are the advantages and disadvantages of {t}?",
    "Give three practical tips about {t}.",
    "Describe the history of {t} in a few sentences.",
    "Write a short story that involves {t}.",
    "Why do people care about {t}?",
    "Summarize what everyone should know about {t}.",
)
#: requests that are the start of a text to go on with, as users also write them (and as the
#: open-ended evaluation prompts are, none of which is among them): with instructions only,
#: the anchor never sees such a conversation and DITTO's pull to end the turn went unchecked
#: there (docs/training.md)
BEGINNINGS = (
    "The best thing about {t} is",
    "When I think of {t}, I remember",
    "Everyone who has tried {t} knows that",
    "My friend asked me about {t}, and I said",
    "What surprised me most about {t} was",
    "It all started with {t}, when",
)
TOPICS = (
    "gardening", "the ocean tides", "public libraries", "learning to cook", "volcanoes", "honeybees",
    "train travel", "saving money", "the night sky", "chess", "recycling", "mountain hiking", "coffee",
    "ancient Rome", "rainforests", "writing letters", "electric cars", "bread baking", "birdwatching",
    "the human heart", "photography", "city parks", "solar power", "board games", "jazz music", "bicycles",
    "friendship", "sleep", "the printing press", "deserts", "museums", "rain", "pottery", "lighthouses",
    "vaccines", "maps", "bridges", "tea ceremonies", "robots in factories", "penguins",
)  # fmt: skip


def instructions(n: int, seed: int, requests: Sequence[str] | None = None) -> list[str]:
    """``n`` distinct requests in a seeded order: of every task and beginning with every topic,
    or of the user's ``requests`` (``--self-requests``; duplicates dropped, all of them where
    there are fewer than ``n``)."""
    import numpy as np

    if requests is not None:
        every = list(dict.fromkeys(r.strip() for r in requests if r.strip()))
        n = min(n, len(every))
    else:
        every = [task.format(t=topic) for task in TASKS + BEGINNINGS for topic in TOPICS]
    if n > len(every):
        raise RepcheckError(f"at most {len(every)} self-generated samples (asked for {n})", param="self_samples")
    order = np.random.default_rng([seed, 11]).permutation(len(every))
    return [every[i] for i in order[:n]]


def read_requests(path: str) -> list[str]:
    """The requests of a ``--self-requests`` file: one per line (or a .json/.jsonl/.csv as
    ``repcheck.sentences`` reads them); refuses a missing or empty file with one line."""
    from ..sentences import read_sentences

    try:
        return read_sentences(path)
    except RepcheckError as err:
        raise RepcheckError(f"--self-requests: {err}", param="self_requests") from None


@dataclass
class SelfData:
    """The kept answers as training documents, and what was dropped and why."""

    documents: list[str]
    answers: list[str]
    finished: list[bool]  # the answer ended by itself (else the budget cut it)
    setting: str
    asked: int
    dropped_loops: int
    dropped_duplicates: int
    dropped_short: int
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "kept": len(self.documents),
            "asked": self.asked,
            "setting": self.setting,
            "dropped": {
                "loops": self.dropped_loops,
                "near_duplicates": self.dropped_duplicates,
                "too_short": self.dropped_short,
            },  # fmt: skip
            "cached": self.cached,
        }


def recommended_setting(model) -> str:
    """The checkpoint's own sampling (its generation_config samples), else DEFAULT_SAMPLING."""
    config = getattr(getattr(model, "model", None), "generation_config", None)
    if config is not None and getattr(config, "do_sample", False):
        parts = [f"temperature={config.temperature:g}"] if config.temperature else []
        if config.top_p is not None and config.top_p < 1:
            parts.append(f"top_p={config.top_p:g}")
        if config.top_k:
            parts.append(f"top_k={int(config.top_k)}")
        if parts:
            return ",".join(parts)
    return DEFAULT_SAMPLING


def _cache_path(model, prompts: Sequence[str], setting: str, max_new_tokens: int, seed: int) -> Path:
    from ..backends.cache import cache_dir

    info = model.info()
    identity = info.get("sha256") or info.get("spec")
    key = json.dumps([VERSION, identity, list(prompts), setting, max_new_tokens, seed], ensure_ascii=False)
    return cache_dir() / "selfgen" / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"


def training_text(tokenizer, request: str, answer: str, finished: bool, chat: bool) -> str:
    """The request and its answer as training text: the whole exchange through the chat
    template, or for an answer the budget cut short, the opened assistant turn and the answer
    without the turn's end (plain text: the request, a newline, the answer, and the EOS token
    only where it ended)."""
    if chat:
        user = [{"role": "user", "content": request}]
        if finished:
            return tokenizer.apply_chat_template(user + [{"role": "assistant", "content": answer}], tokenize=False)
        return tokenizer.apply_chat_template(user, add_generation_prompt=True, tokenize=False) + answer
    return f"{request}\n{answer}" + ((tokenizer.eos_token or "") if finished else "")


def self_generated(
    model,
    n: int,
    max_new_tokens: int = 160,
    seed: int = 0,
    batch_size: int = 16,
    progress: ProgressCallback | None = None,
    sampling: str = "recommended",
    requests: Sequence[str] | None = None,
) -> SelfData:
    """``n`` requests answered by ``model`` itself (see the module docstring), filtered;
    ``sampling`` is a sampling setting (``temperature=1.0``) or ``recommended``; ``requests``
    the user's own instead of the built-in tasks and beginnings (``instructions``)."""
    from ..backends.base import GenerationRequest
    from ..decoding import parse_setting
    from ..prompts import Prompt, has_chat_template, render_all
    from ..repetition import continuation_metrics, ngrams

    prompts = instructions(n, seed, requests)
    n = len(prompts)
    setting_text = recommended_setting(model) if sampling == "recommended" else sampling
    path = _cache_path(model, prompts, setting_text, max_new_tokens, seed)
    if path.is_file():
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            return SelfData(**{**doc, "cached": True})
        except (OSError, ValueError, TypeError):
            pass  # a damaged cache entry is made again
    tok = model.tokenizer
    chat = has_chat_template(tok)
    sources = [Prompt(messages=({"role": "user", "content": p},)) if chat else Prompt(text=p) for p in prompts]
    from .evaluate import fitting_budgets

    ids = render_all(tok, sources, [1] * n, model.context_length, model.name)
    relabel = (
        (lambda _d, done, total: progress("generating training text (cached afterwards)", done, total))
        if progress
        else None
    )
    raw = model.generate(
        GenerationRequest(
            ids,
            parse_setting(setting_text),
            fitting_budgets(ids, max_new_tokens, model.context_length),
            samples=1,
            seed=seed,
            batch_size=batch_size,
            sources=sources,
        ),  # fmt: skip
        relabel,
    )
    documents, answers, finished, kept_grams = [], [], [], []
    loops = duplicates = short = 0
    for prompt, g in zip(prompts, raw, strict=True):
        text = tok.decode(g.token_ids, skip_special_tokens=True).strip()
        if len(g.token_ids) < 16 or len(text) < 40:
            short += 1
            continue
        if continuation_metrics(g.token_ids, text)["loop"]:
            loops += 1
            continue
        grams = set(ngrams(g.token_ids, 4))
        if any(len(grams & other) / max(1, min(len(grams), len(other))) >= NEAR_DUPLICATE for other in kept_grams):
            duplicates += 1
            continue
        kept_grams.append(grams)
        answers.append(text)
        finished.append(g.finished)
        documents.append(training_text(tok, prompt, text, g.finished, chat))
    data = SelfData(documents, answers, finished, setting_text, n, loops, duplicates, short)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = {k: v for k, v in data.__dict__.items() if k != "cached"}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)
    except OSError:
        pass  # an unwritable cache costs the next run the generation, nothing else
    return data


__all__ = ["DEFAULT_SAMPLING", "SelfData", "instructions", "read_requests", "recommended_setting", "self_generated"]
