"""Before and after: what training did to repetition and to language.

On the held-out split (never trained on) and the shipped open-ended prompts:

* the probe's curve on held-out sentences (TP, MP, IP, WR per copy, mean with 95% interval,
  K = 8 by default) and its summary (TP at the last copy, ...);
* greedy generation on the open-ended prompts: seq-rep-4, rep-sen and the loop rate;
* perplexity on held-out text: exp of the mean negative log-likelihood of every token of
  the held-out documents, cut into the training block size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..backends.base import Backend, ScoreRequest
from ..errors import RepcheckError
from ..progress import ProgressCallback
from .config import TrainConfig
from .data import sentences_of, text_blocks

#: Held-out sentences probed: long enough to be a sentence, short enough for K copies.
MIN_SENTENCE_TOKENS, MAX_SENTENCE_TOKENS = 5, 40


@dataclass
class EvalSet:
    sentences: list[str]  # held-out sentences for the probe
    prompts: list[str]  # open-ended prompts for greedy generation
    blocks: list[list[int]]  # held-out text, tokenized, for perplexity

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
        return cls(sentences[: cfg.eval_sentences], read_set("open_ended", cfg.eval_prompts), blocks)

    def to_dict(self) -> dict[str, Any]:
        return {"sentences": self.sentences, "prompts": self.prompts, "perplexity_tokens": sum(map(len, self.blocks))}


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
    from ..compare import run_compare
    from ..decoding import parse_setting
    from ..probing import probe

    if progress:
        progress("evaluating: probe", 0, 0)
    result = probe(model, eval_set.sentences, repeats=cfg.eval_repeats, batch_size=8)
    summary = result.summary()
    if progress:
        progress("evaluating: greedy generation", 0, 0)
    greedy = parse_setting("greedy")
    cmp = run_compare(model, [greedy], eval_set.prompts, max_new_tokens=cfg.eval_new_tokens, batch_size=16)
    gen = cmp.setting_summary("greedy")
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
        "generation": {
            "seq_rep_4": gen["metrics"]["seq_rep_4"]["mean"],
            "rep_sen": gen["metrics"]["rep_sen"]["mean"],
            "loop_rate": gen["loop_rate"],
            "example": gen["example"],
        },
        "perplexity": perplexity(model, eval_set.blocks),
    }


#: The three numbers the benchmark judges, with the direction that is better.
HEADLINE = (
    ("probe.tp_last", "TP at the last copy", "lower"),
    ("generation.seq_rep_4", "greedy seq-rep-4", "lower"),
    ("generation.loop_rate", "greedy loop rate", "lower"),
    ("generation.rep_sen", "greedy rep-sen", "lower"),
    ("perplexity", "held-out perplexity", "lower"),
)


def pick(block: dict[str, Any], path: str) -> float:
    value: Any = block
    for key in path.split("."):
        value = value[key]
    return math.nan if value is None else float(value)


def comparison(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """Before -> after for the headline numbers, with the change and the ratio."""
    rows = []
    for path, label, better in HEADLINE:
        b, a = pick(before, path), pick(after, path)
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
