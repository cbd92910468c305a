"""Before and after: what training did to repetition and to language.

On the held-out split (never trained on), the shipped open-ended prompts and general prose:

* the probe's curve on held-out sentences (TP, MP, IP, WR per copy, mean with 95% interval,
  K = 8 by default) and its summary (TP at the last copy, ...);
* greedy answers to the open-ended prompts (through the chat template where the model has
  one, ``eval_new_tokens`` long: loops show at 256 tokens): seq-rep-4, rep-sen, the loop
  rate, the mean answer length and the share that end at EOS (a model that answers in a third
  of the words repeats less for that reason alone: the report also gives seq-rep-4 on
  length-matched answers, each prompt's two answers cut to the shorter's length);
* the legitimate-repetition suite, greedy (``repcheck.legit``): the pass rate, per category,
  so that a cure which breaks copying, code or lists shows it;
* perplexity on held-out text (exp of the mean negative log-likelihood of every token of the
  held-out documents, cut into the training block size) and on general prose outside the
  training domain (the shipped ``wiki_en`` sentences): a cure must not cost the model its
  language.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..backends.base import Backend, ScoreRequest
from ..errors import RepcheckError
from ..legit import LegitSuite, load_legit_suite, run_legit
from ..legit.suite import describe
from ..progress import ProgressCallback
from ..prompts import has_chat_template
from .config import TrainConfig
from .data import sentences_of, text_blocks

#: Held-out sentences probed: long enough to be a sentence, short enough for K copies.
MIN_SENTENCE_TOKENS, MAX_SENTENCE_TOKENS = 5, 40


@dataclass
class EvalSet:
    sentences: list[str]  # held-out sentences for the probe
    prompts: list[str]  # open-ended prompts for greedy generation
    blocks: list[list[int]]  # held-out text, tokenized, for perplexity
    legit: LegitSuite | None = None  # legitimate repetition (None: not measured)
    general: list[list[int]] | None = None  # general prose outside the training domain, for perplexity

    @classmethod
    def build(cls, tokenizer, held_out: list[str], cfg: TrainConfig, context_length: int | None = None) -> EvalSet:
        from ..gate.suite import read_set

        longest = MAX_SENTENCE_TOKENS
        if context_length:  # K copies and the BOS token must fit
            longest = min(longest, (context_length - 1) // cfg.eval_repeats)
        sentences = []
        for sents in sentences_of(held_out):
            for s in sents:
                n = len(tokenizer(s, add_special_tokens=False)["input_ids"])
                if MIN_SENTENCE_TOKENS <= n <= longest:
                    sentences.append(s)
        if not sentences:
            raise RepcheckError(
                f"the held-out split has no sentence of {MIN_SENTENCE_TOKENS}-{longest} tokens to probe "
                f"{cfg.eval_repeats} times; give a larger corpus or a larger eval fraction",
                param="eval_fraction",
            )
        blocks = text_blocks(tokenizer, held_out, cfg.block_size) or [
            text_blocks(tokenizer, held_out * 4, cfg.block_size // 2)[0]
        ]
        legit = None if cfg.eval_legit == "none" else load_legit_suite(cfg.eval_legit)
        general = text_blocks(tokenizer, [" ".join(read_set("wiki_en", None))], cfg.block_size)
        return cls(sentences[: cfg.eval_sentences], read_set("open_ended", cfg.eval_prompts), blocks, legit, general)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sentences": self.sentences,
            "prompts": self.prompts,
            "perplexity_tokens": sum(map(len, self.blocks)),
            "general_perplexity_tokens": sum(map(len, self.general or [])),
            "legit": describe(self.legit) if self.legit else None,
        }


def perplexity(model: Backend, blocks: list[list[int]], batch_size: int = 8) -> float:
    """exp(mean -log P(token | earlier tokens)) over every token after each block's first."""
    scored = model.score(ScoreRequest(blocks, [1] * len(blocks), batch_size))
    total = sum(float(s.logp.sum()) for s in scored)
    count = sum(len(s.logp) for s in scored)
    return math.exp(-total / count)


def evaluate(
    model: Backend, eval_set: EvalSet, cfg: TrainConfig, progress: ProgressCallback | None = None
) -> dict[str, Any]:
    """The numbers a training report compares before and after."""
    from ..decoding import parse_setting
    from ..probing import probe

    if progress:
        progress("evaluating: probe", 0, 0)
    result = probe(model, eval_set.sentences, repeats=cfg.eval_repeats, batch_size=8)
    summary = result.summary()
    if progress:
        progress("evaluating: greedy answers", 0, 0)
    answers = greedy_answers(model, eval_set.prompts, cfg.eval_new_tokens)
    gen = answer_metrics(answers)
    legit = None
    suite = eval_set.legit
    if suite is not None and suite.needs_chat_template and not has_chat_template(model.tokenizer):
        suite = suite.plain_only()  # a base model: the cases it can be asked without a template
    if suite is not None and len(suite):
        legit = run_legit(model, suite, parse_setting("greedy"), skip_too_long=True, progress=progress).to_dict()
        legit = {
            k: legit[k] for k in ("suite", "pass_rate", "passed", "n", "ci95", "by_category", "skipped") if k in legit
        }
    if progress:
        progress("evaluating: perplexity", 0, 0)
    return {
        "probe": {
            "per_copy": [
                {k: row[k] for k in ("n", "tp", "mp", "ip", "wr", "ci95", "n_sentences")} for row in result.per_copy()
            ],
            "tp_first": summary["tp_first"]["mean"],
            "tp_last": summary["tp_last"]["mean"],
            "tp_last_ci95": summary["tp_last"]["ci95"],
            "lock_in_rate": summary["lock_in_rate"],
        },
        "generation": gen,
        "legit": legit,
        "perplexity": perplexity(model, eval_set.blocks),
        "perplexity_general": perplexity(model, eval_set.general) if eval_set.general else None,
    }


def greedy_answers(model: Backend, prompts: list[str], max_new_tokens: int) -> tuple[list, list[str], bool]:
    """Greedy answers to ``prompts`` (raw generations, their texts, whether as chat): as the
    user's turn through the chat template where the model has one (what users of a chat model
    see), else continued as plain text."""
    from ..backends.base import GenerationRequest
    from ..decoding import parse_setting

    sources, ids, chat = rendered_prompts(model, prompts)
    budgets = fitting_budgets(ids, max_new_tokens, model.context_length)
    raw = model.generate(GenerationRequest(ids, parse_setting("greedy"), budgets, batch_size=16, sources=sources))
    return raw, [model.tokenizer.decode(g.token_ids, skip_special_tokens=True) for g in raw], chat


def rendered_prompts(model: Backend, prompts: list[str]) -> tuple[list, list[list[int]], bool]:
    """(sources, token ids, whether as chat) of ``prompts`` as ``greedy_answers`` gives them to
    the model: the user's turn through the chat template where it has one, else plain text."""
    from ..prompts import Prompt, render_all

    chat = has_chat_template(model.tokenizer)
    sources = [Prompt(messages=({"role": "user", "content": p},)) if chat else Prompt(text=p) for p in prompts]
    return sources, render_all(model.tokenizer, sources, [1] * len(prompts), model.context_length, model.name), chat


def fitting_budgets(prompts: list[list[int]], wanted: int, context_length: int | None) -> list[int]:
    """``wanted`` new tokens per prompt, fewer where the prompt leaves less room in the
    context window (a small model's 128 positions)."""
    if context_length is None:
        return [wanted] * len(prompts)
    return [max(1, min(wanted, context_length - len(p))) for p in prompts]


def answer_metrics(answers: tuple[list, list[str], bool]) -> dict[str, Any]:
    """Means over the answers of seq-rep-4 and rep-sen, the loop rate, the mean length and the
    share that end at EOS."""
    from ..repetition import continuation_metrics

    raw, texts, chat = answers
    rows = [continuation_metrics(g.token_ids, t) for g, t in zip(raw, texts, strict=True)]

    def mean(key: str) -> float:  # over the answers where the metric is defined (an empty answer has none)
        values = [r[key] for r in rows if r[key] is not None and not math.isnan(r[key])]
        return sum(values) / len(values) if values else math.nan

    n = len(raw)
    return {
        "chat": chat,
        "seq_rep_4": mean("seq_rep_4"),
        "rep_sen": mean("rep_sen"),
        "loop_rate": sum(r["loop"] for r in rows) / n,
        "mean_length": sum(len(g.token_ids) for g in raw) / n,
        "eos_rate": sum(g.finished for g in raw) / n,
        "example": texts[0] if texts else "",
        "continuations": [list(g.token_ids) for g in raw],  # for the length-matched comparison
        "ended": [bool(g.finished) for g in raw],  # per answer, for the comparison of where answers end
        "looped": [bool(r["loop"]) for r in rows],
    }


def add_length_matched(before: dict[str, Any], after: dict[str, Any], n: int = 4) -> None:
    """seq-rep-n of each prompt's two greedy continuations cut to the shorter's length, mean over
    prompts, into both blocks (``generation.seq_rep_4_matched``): the repetition a method
    removed, apart from what shorter answers remove by themselves."""
    from ..repetition import length_matched_seq_rep

    b, a = length_matched_seq_rep(before["generation"]["continuations"], after["generation"]["continuations"], n)
    before["generation"][f"seq_rep_{n}_matched"], after["generation"][f"seq_rep_{n}_matched"] = b, a


def add_end_breakdown(before: dict[str, Any], after: dict[str, Any]) -> None:
    """Where the trained model's answers end at EOS, against the base's answer to the same
    prompt, into ``after["generation"]["eos_breakdown"]`` (counts) and, as a share of the
    prompts, ``generation.eos_where_base_went_on`` (0 for the base against itself):

    * ``base_ended``: the base ended there too;
    * ``base_looped``: the base looped without ending: ending is how an answer without the loop
      finishes, so a cure that removes loops raises the EOS rate by itself;
    * ``base_went_on``: the base went on without a loop: the ends that cut an answer short.

    Skipped where either block lacks the per-answer flags (a base evaluation of an earlier
    repcheck)."""
    b, a = before.get("generation", {}), after.get("generation", {})
    if not all(key in g for g in (b, a) for key in ("ended", "looped")) or len(b["ended"]) != len(a["ended"]):
        return
    counts = {"base_ended": 0, "base_looped": 0, "base_went_on": 0}
    for ended, base_ended, base_looped in zip(a["ended"], b["ended"], b["looped"], strict=True):
        if ended:
            counts["base_ended" if base_ended else "base_looped" if base_looped else "base_went_on"] += 1
    n = len(a["ended"])
    a["eos_breakdown"] = {**counts, "answers": n}
    a["eos_where_base_went_on"] = counts["base_went_on"] / n if n else math.nan
    b["eos_where_base_went_on"] = 0.0


#: The numbers a training report compares, with the direction that is better (None: reported,
#: neither way is better in itself, e.g. the length of answers).
HEADLINE = (
    ("probe.tp_last", "TP at the last copy", "lower"),
    ("generation.seq_rep_4", "greedy seq-rep-4", "lower"),
    ("generation.seq_rep_4_matched", "greedy seq-rep-4, length-matched", "lower"),
    ("generation.loop_rate", "greedy loop rate", "lower"),
    ("generation.rep_sen", "greedy rep-sen", "lower"),
    ("generation.mean_length", "greedy continuation length (tokens)", None),
    ("generation.eos_rate", "greedy continuations ending at EOS", None),
    ("generation.eos_where_base_went_on", "ending at EOS where the base went on, no loop", "lower"),
    ("legit.pass_rate", "legitimate repetition passed", "higher"),
    ("perplexity", "held-out perplexity", "lower"),
    ("perplexity_general", "perplexity on general prose (wiki_en)", "lower"),
)


def pick(block: dict[str, Any], path: str) -> float:
    """A number of an evaluation block by its dotted path (NaN where it was not measured)."""
    value: Any = block
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return math.nan
        value = value[key]
    return math.nan if value is None else float(value)


def comparison(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """Before -> after for the headline numbers, with the change and the ratio."""
    rows = []
    for path, label, better in HEADLINE:
        b, a = pick(before, path), pick(after, path)
        if math.isnan(b) and math.isnan(a):
            continue  # not measured (e.g. no legit suite)
        rows.append(
            {
                "metric": path,
                "label": label,
                "better": better,
                "before": b,
                "after": a,
                "change": a - b,
                "ratio": a / b if b not in (0, math.nan) and math.isfinite(b) and b != 0 else math.nan,
            }
        )
    return rows


def legit_by_category(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """The legit pass rate per category before and after (no rows where it was not measured)."""
    if not before.get("legit") or not after.get("legit"):
        return []
    rows = []
    for cat, b in before["legit"]["by_category"].items():
        a = after["legit"]["by_category"].get(cat, {})
        rows.append(
            {"category": cat, "n": b["n"], "before": b["pass_rate"], "after": a.get("pass_rate"),
             "change": None if a.get("pass_rate") is None else a["pass_rate"] - b["pass_rate"]}
        )  # fmt: skip
    return rows
