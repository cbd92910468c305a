"""TrainConfig: every choice of a training run, validated before any model loads."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RepcheckError, require_int, require_number

METHODS = ("ditto", "ul-token", "ul-seq", "scalegrad", "mle")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
ANCHORS = ("mle", "kl", "plain")
#: the default peak learning rates (docs/training.md: the sweep)
LORA_LEARNING_RATE = 5e-4
FULL_LEARNING_RATE = 5e-5
#: the default factor on the base's chance of ending in the anchor's target (docs/training.md: the sweep)
END_SCALE = 0.1
#: the default share of the method's own steps (the others are MLE steps; docs/training.md)
REP_RATES = {"ditto": 0.35, "ul-seq": 0.5}


def _f(default: Any, help: str, factory: Any = None) -> Any:
    """A field with its help text (the CLI's ``--help`` reads it: written once, here)."""
    if factory is not None:
        return field(default_factory=factory, metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    """A training run. Defaults are the documented budget of ``benchmarks/train_ditto.py``;
    each field's ``help`` is what ``repcheck train --help`` says of it."""

    method: str = _f("ditto", "The training method; mle is the control.")
    model: str = _f("smollm2-135m", "The model to train (a built-in alias, a directory, a .gguf file or a hub id).")
    data: list[str] = _f(
        None,
        "Training text besides the model's own: .txt (one document a line), .jsonl/.json (text), .csv (text "
        "column), a directory of .txt files, or the shipped corpus by name (python_docs); repeatable. Default: "
        "none, the model's own answers only (--self-samples).",
        factory=list,
    )
    self_samples: int = _f(
        192,
        "Requests the model answers itself, sampled at its recommended settings, loops and near-duplicates "
        "dropped: MLE text from its own distribution (cached; 0: none, then --data is needed).",
    )
    self_requests: str | None = _f(
        None,
        "A file of requests (one per line) the model answers itself instead of the built-in tasks and "
        "beginnings: your users' kind of request, so that the anchor holds the conversations they have "
        "(--self-samples of them, all where the file has fewer; docs/training.md).",
    )
    self_new_tokens: int = _f(160, "New tokens per self-generated answer.")
    self_sampling: str = _f(
        "recommended",
        "How the model samples its own answers: recommended (the checkpoint's generation_config where it "
        "samples, else temperature 0.7, top-p 0.9), or a sampling setting such as temperature=1.0 (pure "
        "sampling: MLE on it estimates the KL to the base model, so it anchors the model instead of "
        "sharpening it; docs/training.md).",
    )
    legit_mix: float = _f(
        0.25,
        "Examples of repetition that was asked for (copy, quote, list, code, table, JSON, refrain; from "
        "templates, never the legit suite's cases) per MLE document: they teach that such repetition is right.",
    )
    asked_plain: float = _f(
        0.5,
        "Examples of structure (a list, code, a table, JSON, a song with its chorus; from the same templates) "
        "per MLE document given as plain text, the answer alone: DITTO's penalty works on plain text, and "
        "nothing else there shows that a list or a chorus continues (docs/training.md).",
    )
    plain_mix: float = _f(
        1.0,
        "Share of the chat-formatted training documents also given to MLE as plain text (no template, no "
        "end-of-turn token): DITTO's samples are plain text, and without plain text in the MLE half the model "
        "learns to end its turn after a sentence of plain text (docs/training.md).",
    )
    anchor: str = _f(
        "kl",
        "What the MLE half fits on the model's own text: mle (the sampled tokens) or kl (the base model's whole "
        "next-token distribution at every position: no sharpening, no drift; one more forward pass of the base "
        "model per MLE step; plain: kl on the plain text of its answers only, mle on them as chat). The user's "
        "text and asked-for examples stay MLE.",
    )
    end_scale: float | None = _f(
        None,
        "With --anchor kl or plain: the factor on the base model's probability of ending (the end-of-text and "
        "end-of-turn tokens) in the anchor's target, renormalized: where ending is a coin toss the anchor leans to "
        "going on, where the base would surely end it still ends (default: 0.1, which kept the share of answers "
        "ending at EOS within 10 points of the base's on three draws of the data; 1: the base's own; "
        "docs/training.md).",
    )
    end_weight: float = _f(
        0.0,
        "With --anchor kl: weight of a term that holds the log-probability of ending (the end-of-text and "
        "end-of-turn tokens) to the base model's at every position of the model's own text and of DITTO's "
        "samples; the KL barely notices a doubled chance of ending, greedy decoding does (docs/training.md).",
    )
    out: str = _f("runs/train", "Where the checkpoint, log.jsonl, report.json and before_after.png go.")
    steps: int = _f(150, "Optimizer steps (at most: the selection may stop earlier).")
    batch_size: int = _f(4, "Sequences per step (per device).")
    grad_accum: int = _f(1, "Gradient accumulation steps.")
    block_size: int = _f(128, "Tokens per training sequence.")
    learning_rate: float | None = _f(
        None, "Peak learning rate, linear warm-up and decay (default: 5e-4 with LoRA, 5e-5 for every weight)."
    )
    warmup_steps: int = _f(10, "Steps of linear warm-up.")
    weight_decay: float = _f(0.0, "AdamW weight decay.")
    seed: int = _f(0, "Seeds the split, the batches and the weights' updates.")
    # method parameters (Xu et al. 2022; Welleck et al. 2019; Lin et al. 2021)
    lam: float = _f(
        0.9,
        "DITTO's penalty factor in (0, 1]; 0.9 keeps copying on request better than the paper's 0.5 for "
        "open-ended text (docs/training.md: the sweep).",
    )
    free_copies: int = _f(
        0,
        "DITTO: repeats of a sentence left unpenalized (0: the paper's, the penalty starts at the second copy; "
        "1: a sentence may be repeated once, as a refrain is, and the penalty starts at the third).",
    )
    sentence_starts: bool = _f(
        False,
        "DITTO: penalize the first token of every later copy too (the paper's); off, the penalty starts after "
        "each copy's first token, where the end of the turn is not the only way out (docs/training.md).",
    )
    spare_ends: bool = _f(
        False,
        "DITTO: leave the end-of-text and end-of-turn tokens out of the penalty's softmax, so that the "
        "probability it takes from a repeated token never goes to ending the answer (docs/training.md).",
    )
    chat_samples: float = _f(
        0.0,
        "DITTO: share of the chat-formatted training documents whose pseudo-repetitive samples sit inside "
        "their conversation (the request and the opened assistant turn before the answer's text) instead of "
        "being plain text: the penalty then meets a repeat where ending the turn is a way out, and "
        "--end-weight can hold that way shut (docs/training.md).",
    )
    rep_rate: float | None = _f(
        None,
        "Share of DITTO (or ul-seq) steps; the others are MLE steps (default: 0.35 for DITTO, where more anchored "
        "steps kept the answers, the refrains and the prose better than 0.5 at the same loop reduction "
        "(docs/training.md); 0.5 for ul-seq).",
    )
    alpha: float = _f(1.0, "Token-level unlikelihood weight (>= 0).")
    gamma: float = _f(0.2, "ScaleGrad's scale of novel tokens, in (0, 1].")
    seq_prefix: int = _f(32, "ul-seq: tokens of a block used as the prompt.")
    seq_continuation: int = _f(64, "ul-seq: greedy continuation length.")
    seq_ngram: int = _f(4, "ul-seq: n of the repeated n-grams it penalizes.")
    # LoRA (peft)
    lora: bool = _f(
        True,
        "Train a LoRA adapter (peft) on every linear layer, merged into the saved model; --no-lora trains every "
        "weight (the sweep: LoRA keeps more of the model at the same loop reduction, and trains faster).",
    )
    lora_rank: int = _f(16, "LoRA rank.")
    lora_alpha: int = _f(32, "LoRA alpha.")
    lora_targets: list[str] | None = _f(None, "Module names to adapt (repeatable); default all linear.")
    merge: bool = _f(True, "Merge the LoRA adapter into the saved model (else save OUT/adapter).")
    # run
    precision: str = _f("auto", "auto: bf16 autocast on AMX CPUs and GPUs, else fp32.")
    device: str = _f("auto", "Where to train: auto picks cuda when present.")
    eval_fraction: float = _f(0.05, "Share of documents held out for the before/after evaluation.")
    eval_repeats: int = _f(8, "K for the probe of held-out sentences.")
    eval_sentences: int = _f(24, "Held-out sentences probed before and after.")
    eval_prompts: int = _f(32, "Open-ended prompts answered greedily before and after (as chat where the model chats).")
    eval_new_tokens: int = _f(256, "New tokens per greedy answer of the evaluation (loops show at this length).")
    eval_legit: str = _f(
        "legit",
        "The legitimate-repetition suite run greedily before and after: the shipped one (legit), a .jsonl file "
        "of the same format, or none.",
    )
    select_every: int = _f(
        25,
        "Steps between validations of both objectives (TP at the last copy of held-out sentences; the "
        "log-probability of asked-for copies and of held-out text); the run keeps the best step and stops when "
        "it stops improving (0: no selection, the last step is kept).",
    )
    select_margin: float = _f(0.15, "Nats per token the validation's held-out text may lose against the base model.")
    select_asked_margin: float = _f(
        0.0,
        "Nats per token the validation's asked-for copies may lose against the base model (0: a step that copies "
        "on request worse than the base is never kept).",
    )
    patience: int = _f(2, "Validations without a better step, once one is admissible, before the run stops early.")
    save_steps: int | None = _f(None, "Steps between checkpoints (default: every quarter of the run).")
    keep_checkpoints: bool = _f(False, "Keep Trainer's checkpoints in OUT/checkpoints after success.")
    overwrite: bool = _f(False, "Start over in a non-empty --out.")
    resume: bool = _f(False, "Continue the interrupted run in --out.")

    @classmethod
    def help(cls, name: str) -> str:
        return cls.__dataclass_fields__[name].metadata["help"]

    def validate(self) -> TrainConfig:
        if self.method not in METHODS:
            raise RepcheckError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}", param="method")
        require_int("steps", self.steps, 1)
        require_int("batch_size", self.batch_size, 1)
        require_int("grad_accum", self.grad_accum, 1)
        require_int("block_size", self.block_size, 16)
        require_int("warmup_steps", self.warmup_steps, 0)
        require_int("seed", self.seed, 0)
        if self.learning_rate is None:
            self.learning_rate = LORA_LEARNING_RATE if self.lora else FULL_LEARNING_RATE
        require_number("learning_rate", self.learning_rate, 0, 1, lo_open=True)
        require_number("weight_decay", self.weight_decay, 0, 1)
        require_number("lam", self.lam, 0, 1, lo_open=True)
        require_number("gamma", self.gamma, 0, 1, lo_open=True)
        require_number("alpha", self.alpha, 0, 1e3)
        if self.rep_rate is None:
            self.rep_rate = REP_RATES.get(self.method, 0.5)
        require_number("rep_rate", self.rep_rate, 0, 1)
        require_number("eval_fraction", self.eval_fraction, 0, 0.5, lo_open=True)
        require_int("eval_repeats", self.eval_repeats, 2)
        require_int("eval_sentences", self.eval_sentences, 1)
        require_int("eval_prompts", self.eval_prompts, 1)
        require_int("eval_new_tokens", self.eval_new_tokens, 1)
        require_int("self_samples", self.self_samples, 0)
        require_int("self_new_tokens", self.self_new_tokens, 16)
        if self.self_sampling != "recommended":
            from ..decoding import parse_setting

            if not parse_setting(self.self_sampling).do_sample:
                raise RepcheckError(
                    f"--self-sampling {self.self_sampling!r} does not sample; give a sampling setting such as "
                    "temperature=1.0, or recommended",
                    param="self_sampling",
                )
        require_number("legit_mix", self.legit_mix, 0, 4)
        require_number("plain_mix", self.plain_mix, 0, 1)
        require_number("chat_samples", self.chat_samples, 0, 1)
        require_number("asked_plain", self.asked_plain, 0, 4)
        if self.anchor not in ANCHORS:
            raise RepcheckError(f"unknown anchor {self.anchor!r}; choose one of {', '.join(ANCHORS)}", param="anchor")
        require_number("end_weight", self.end_weight, 0, 100)
        if self.end_scale is None:  # the anchor's target is the base's distribution; --anchor mle has none
            self.end_scale = 1.0 if self.anchor == "mle" else END_SCALE
        require_number("end_scale", self.end_scale, 0, 1, lo_open=True)
        if self.end_scale != 1.0 and self.anchor == "mle":
            raise RepcheckError(
                "--end-scale tilts the base model's distribution, which --anchor mle does not compute; "
                "use --anchor kl or plain",
                param="end_scale",
            )
        if self.end_weight and self.anchor == "mle":
            raise RepcheckError(
                "--end-weight holds the base model's chance of ending, which --anchor mle does not compute; "
                "use --anchor kl or plain",
                param="end_weight",
            )
        require_int("free_copies", self.free_copies, 0)
        require_int("select_every", self.select_every, 0)
        require_number("select_margin", self.select_margin, 0, 10)
        require_number("select_asked_margin", self.select_asked_margin, 0, 10)
        require_int("patience", self.patience, 1)
        if self.self_requests and self.self_samples == 0:
            raise RepcheckError("--self-requests needs --self-samples above 0", param="self_requests")
        if not self.data and self.self_samples == 0:
            raise RepcheckError(
                "no training text: give --data, or let the model write its own (--self-samples N)", param="data"
            )
        require_int("seq_prefix", self.seq_prefix, 1)
        require_int("seq_continuation", self.seq_continuation, self.seq_ngram + 1)
        require_int("lora_rank", self.lora_rank, 1)
        require_int("lora_alpha", self.lora_alpha, 1)
        if self.save_steps is not None:
            require_int("save_steps", self.save_steps, 1)
        if self.precision not in PRECISIONS:
            raise RepcheckError(f"precision must be one of {', '.join(PRECISIONS)}", param="precision")
        if self.method == "ul-seq" and self.seq_prefix + self.seq_continuation > self.block_size * 4:
            raise RepcheckError("ul-seq's prefix plus continuation must stay within 4 blocks", param="seq_continuation")
        if self.resume and self.overwrite:
            raise RepcheckError("resume continues a run in its directory; overwrite starts a new one: not both")
        return self

    @property
    def checkpoint_every(self) -> int:
        return self.save_steps or max(1, self.steps // 4)

    @property
    def out_path(self) -> Path:
        return Path(self.out).expanduser()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = set(cls.__dataclass_fields__)
        unknown = set(d) - names
        if unknown:
            raise RepcheckError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        return cls(**d)
