"""One training run, end to end: check everything, evaluate, train, save, evaluate again, report.

Everything that can be refused is refused before the output directory is touched (bad
options, an unreadable or too small corpus, a model that is not a causal LM or that peft
cannot wrap, a non-empty ``out`` without ``overwrite``). While training runs, ``out`` holds
Trainer's checkpoints (``checkpoints/``), ``log.jsonl``, ``train_config.json`` and
``before.json``; the final checkpoint and the report are written into a temporary directory
inside ``out`` and moved into place together. Ctrl-C leaves the last complete checkpoint,
which ``resume`` continues.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..cpu import has_amx
from ..errors import RepcheckError
from ..outputs import missing_dirs, remove_if_empty, remove_previous_run
from ..progress import ProgressCallback
from .config import TrainConfig
from .data import end_tokens, text_blocks
from .evaluate import EvalSet, evaluate

#: Working files of a run in progress (besides the final checkpoint and report).
WORKING = ("checkpoints", "log.jsonl", "train_config.json", "before.json")
#: Config fields that must match to resume a run.
RESUME_KEYS = (
    "method",
    "model",
    "data",
    "self_requests",
    "seed",
    "batch_size",
    "grad_accum",
    "block_size",
    "lora",
    "rep_rate",
    "lam",
    "end_scale",
    "chat_samples",
    "alpha",
    "gamma",
)


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training; the message says which checkpoint a resume would continue."""


@dataclass
class TrainResult:
    out: Path
    report: dict[str, Any]
    written: list[Path]


def precision_flags(precision: str, device: str) -> dict[str, bool]:
    """bf16 autocast on GPUs that support it and on CPUs with AMX; fp16 on other GPUs; else fp32."""
    import torch

    if precision == "auto":
        if device.startswith("cuda"):
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            precision = "bf16" if has_amx() else "fp32"
    return {"bf16": precision == "bf16", "fp16": precision == "fp16"}


def last_checkpoint(out: Path) -> Path | None:
    """The newest complete Trainer checkpoint (its trainer_state.json is written last)."""
    folder = out / "checkpoints"
    done = [p for p in folder.glob("checkpoint-*") if (p / "trainer_state.json").is_file()] if folder.is_dir() else []
    return max(done, key=lambda p: int(p.name.split("-")[-1]), default=None)


def prepare_out(cfg: TrainConfig) -> Path | None:
    """Check the output directory before any work; return the checkpoint to resume from."""
    from ..outputs import check_output_dir

    out = cfg.out_path
    if cfg.resume:
        ckpt = last_checkpoint(out)
        stored = out / "train_config.json"
        if ckpt is None or not stored.is_file():
            raise RepcheckError(f"{out} holds no complete checkpoint of a repcheck training run to resume", param="out")
        try:
            before = json.loads(stored.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as err:
            raise RepcheckError(
                f"{stored} cannot be read ({type(err).__name__}); the run cannot be resumed", param="resume"
            ) from None
        if not isinstance(before, dict):
            raise RepcheckError(f"{stored} holds {type(before).__name__}, not a training configuration", param="resume")
        changed = [k for k in RESUME_KEYS if before.get(k) != getattr(cfg, k)]
        if changed:
            raise RepcheckError(
                f"cannot resume with different {', '.join(changed)} than the run in {out}", param="resume"
            )
        return ckpt
    if (
        out.exists()
        and out.is_dir()
        and any(p for p in out.iterdir() if not p.name.startswith("."))
        and not cfg.overwrite
    ):
        raise RepcheckError(
            f"{out} is not empty; choose a new directory, resume the run in it (--resume), or start over (--overwrite)",
            param="out",
        )
    check_output_dir(out, overwrite=True)
    return None


def train(
    cfg: TrainConfig, progress: ProgressCallback | None = None, before: dict[str, Any] | None = None
) -> TrainResult:
    """Train ``cfg.model`` with ``cfg.method`` and report the probe, generation and perplexity
    before and after (see docs/training.md). ``before``: the base model's evaluation from an
    earlier run with the same data and evaluation settings (a sweep measures it once)."""
    from accelerate import PartialState

    from ..backends.hf import load_hf
    from ..backends.hf_utils import quiet_transformers, resolve_device
    from ..backends.spec import locate
    from .mix import gather

    cfg.validate()
    locate(cfg.model)
    resume_from = prepare_out(cfg)
    state = PartialState()
    device = str(state.device) if state.num_processes > 1 else resolve_device(cfg.device)
    flags = precision_flags(cfg.precision, device)
    model = load_hf(cfg.model, dtype="float32", device=device, progress=progress)
    tok = model.tokenizer
    if cfg.block_size > (model.context_length or cfg.block_size):
        raise RepcheckError(
            f"block_size {cfg.block_size} exceeds the model's context of {model.context_length}", param="block_size"
        )
    data = gather(cfg, model, progress)
    eval_set = EvalSet.build(tok, data.held_out, cfg, model.context_length)
    selection = _selection(cfg, tok, data, progress)
    trainable = _wrap_lora(model.model, cfg) if cfg.lora else model.model
    data_info = {**data.info, "eval": eval_set.to_dict()}

    out = cfg.out_path
    if resume_from is None and cfg.overwrite:  # remove an earlier run's files before this one writes any
        remove_previous_run(out, also=WORKING)
    created = missing_dirs(out)
    out.mkdir(parents=True, exist_ok=True)
    before_path = out / "before.json"
    if state.is_main_process:
        if before is None and resume_from is not None:
            before = _stored_before(before_path)
        if before is None:
            try:
                before = evaluate(model, eval_set, cfg, progress)
            except BaseException:  # interrupted or failed before anything was written: no empty --out
                remove_if_empty(created)
                raise
        before_path.write_text(json.dumps(before, indent=1, allow_nan=True))
        (out / "train_config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    state.wait_for_everyone()

    trainer = _trainer(cfg, trainable, tok, data, out, flags, device, progress, selection)
    started = time.perf_counter()
    model.model.train()
    try:
        with quiet_transformers():  # its "Writing model shards" bars; progress is ours
            trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    except KeyboardInterrupt:
        ckpt = last_checkpoint(out)
        where = (
            f"the last complete checkpoint is {ckpt}; continue with --resume"
            if ckpt
            else "no checkpoint was complete yet"
        )
        raise TrainingInterrupted(f"training interrupted at step {trainer.state.global_step}; {where}") from None
    elapsed = time.perf_counter() - started
    chosen = selection.restore(trainable) if selection is not None else None
    final = _final_model(trainable, cfg)
    final.eval()
    model.model = final
    training = {
        "steps": trainer.state.global_step,
        "elapsed_s": round(elapsed, 1),
        "tokens": trainer.tokens_seen,
        "tokens_per_s": round(trainer.tokens_seen / elapsed, 1) if elapsed > 0 else None,
        "final_log": [e for e in trainer.state.log_history if "loss" in e][-1:],
        "precision": "bf16" if flags["bf16"] else "fp16" if flags["fp16"] else "fp32",
        "device": device,
        "processes": state.num_processes,
        "resumed_from": str(resume_from) if resume_from else None,
        "selection": chosen,
    }
    written: list[Path] = []
    report: dict[str, Any] = {}
    if state.is_main_process:
        after = evaluate(model, eval_set, cfg, progress)
        info_after = {**model.info(), "spec": str(out), "name": out.name, "sha256": None}
        report, written = _publish(cfg, model, data_info, training, before, after, info_after, progress)
        if not cfg.keep_checkpoints:
            shutil.rmtree(out / "checkpoints", ignore_errors=True)
            (out / "before.json").unlink(missing_ok=True)
    state.wait_for_everyone()
    return TrainResult(out, report, written)


def _stored_before(path: Path) -> dict[str, Any] | None:
    """The evaluation before training that a resumed run stored, or None where it is missing
    or unreadable (then the base model is evaluated again: the same numbers)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _wrap_lora(model, cfg: TrainConfig):
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise RepcheckError(
            "LoRA needs peft: pip install peft (or train every weight: --no-lora)", param="lora"
        ) from None
    targets = cfg.lora_targets or "all-linear"
    try:
        return get_peft_model(
            model, LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, target_modules=targets, lora_dropout=0.0)
        )
    except (ValueError, TypeError, AttributeError) as err:
        raise RepcheckError(f"peft cannot wrap this model with LoRA ({err})", param="lora") from None


def _final_model(trainable, cfg: TrainConfig):
    """The trained model as a plain transformers model (LoRA merged), or the peft model with
    ``merge=False``."""
    if cfg.lora and cfg.merge:
        return trainable.merge_and_unload()
    return trainable


def _selection(cfg: TrainConfig, tokenizer, data, progress):
    """The validation that chooses the step to keep (``repcheck.train.select``), or None."""
    if not cfg.select_every:
        return None
    from .mix import validation_sentences
    from .select import Selection, ValidationSet

    sentences = validation_sentences(
        tokenizer, data.validation, most_tokens=(cfg.block_size * 4 - 1) // cfg.eval_repeats
    )
    if not sentences:
        raise RepcheckError("the validation split has no sentence to probe; give more text", param="select_every")
    text = text_blocks(tokenizer, data.validation, cfg.block_size)[:8] or [
        tokenizer(" ".join(data.validation), add_special_tokens=False)["input_ids"][: cfg.block_size]
    ]
    valid = ValidationSet.build(tokenizer, sentences, data.asked, text, cfg.eval_repeats)
    return Selection(
        valid,
        every=cfg.select_every,
        margin=cfg.select_margin,
        patience=cfg.patience,
        asked_margin=cfg.select_asked_margin,
        progress=progress,
        log_path=Path(cfg.out) / "log.jsonl",
    )


def _trainer(cfg: TrainConfig, model, tokenizer, data, out: Path, flags, device: str, progress, selection=None):
    from transformers import PrinterCallback, TrainingArguments

    from .engine import RepetitionTrainer, ReportCallback, StepBatches, one_batch

    args = TrainingArguments(
        output_dir=str(out / "checkpoints"),
        max_steps=cfg.steps,
        per_device_train_batch_size=1,  # an item of StepBatches is a whole batch
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay,
        lr_scheduler_type="linear",
        logging_steps=max(1, min(10, cfg.steps // 20)),
        logging_first_step=True,
        save_steps=cfg.checkpoint_every,
        save_total_limit=2,
        seed=cfg.seed,
        data_seed=cfg.seed,
        use_cpu=not device.startswith(("cuda", "mps")),
        report_to=[],
        disable_tqdm=True,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        dataloader_pin_memory=False,
        max_grad_norm=1.0,
        **flags,
    )
    dataset = StepBatches(cfg, data.blocks, data.pairs, items=cfg.steps * cfg.grad_accum, own=data.own)
    trainer = RepetitionTrainer(
        ends=end_tokens(tokenizer, getattr(model, "generation_config", None)),
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=one_batch,
        callbacks=[ReportCallback(progress, out / "log.jsonl", cfg.method)] + ([selection] if selection else []),
        train_config=cfg,
    )
    trainer.remove_callback(PrinterCallback)  # it prints every log dict to stdout; ours goes to log.jsonl
    return trainer


def _publish(cfg, model, data_info, training, before, after, info_after, progress):
    from ..outputs import publish
    from ..provenance import dumps
    from .report import plot_before_after, report_document

    info_before = {**model.info(), "spec": cfg.model, "name": cfg.model}
    doc = report_document(
        cfg.to_dict(), data_info, training, before, after, {"before": info_before, "after": info_after}
    )
    out = cfg.out_path

    def write(tmp: Path) -> None:
        if progress:
            progress("saving the checkpoint", 0, 0)
        if cfg.lora and not cfg.merge:
            model.model.save_pretrained(tmp / "adapter")
            model.tokenizer.save_pretrained(tmp / "adapter")
        else:
            model.model.save_pretrained(tmp)
            model.tokenizer.save_pretrained(tmp)
        (tmp / "report.json").write_text(dumps(doc) + "\n", encoding="utf-8")
        (tmp / "train_config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n", encoding="utf-8")
        if (out / "log.jsonl").is_file():
            shutil.copyfile(out / "log.jsonl", tmp / "log.jsonl")
        plot_before_after(doc, tmp / "before_after.png")

    from ..backends.hf_utils import quiet_transformers

    with quiet_transformers():
        written = publish(out, "train", None, write, overwrite=True)
    return doc, written


def evaluate_only(cfg: TrainConfig, base: str, progress: ProgressCallback | None = None) -> TrainResult:
    """Compare an existing checkpoint (``cfg.model``) with ``base`` on the same held-out split
    and prompts: the report of a training run, without the training."""
    from ..backends.hf import load_hf
    from ..backends.spec import locate

    cfg.validate()
    for spec in (base, cfg.model):  # both, before either is evaluated
        locate(spec)
    from dataclasses import replace

    from ..outputs import check_output_dir, publish
    from ..provenance import dumps
    from .mix import gather
    from .report import plot_before_after, report_document

    check_output_dir(cfg.out_path, cfg.overwrite)
    results, infos, held_out, data_info = {}, {}, None, {}
    for key, spec in (("before", base), ("after", cfg.model)):
        model = load_hf(spec, dtype="float32", device=cfg.device, progress=progress)
        if held_out is None:  # the held-out split of the base's training data (its own answers: cached)
            data = gather(replace(cfg, method="mle"), model, progress)
            held_out, data_info = data.held_out, data.info
        eval_set = EvalSet.build(model.tokenizer, held_out, cfg, model.context_length)
        results[key], infos[key] = evaluate(model, eval_set, cfg, progress), model.info()
        model.close()
    data_info = {**data_info, "eval": eval_set.to_dict()}
    doc = report_document(cfg.to_dict(), data_info, None, results["before"], results["after"], infos)

    def write(tmp: Path) -> None:
        (tmp / "report.json").write_text(dumps(doc) + "\n", encoding="utf-8")
        plot_before_after(doc, tmp / "before_after.png")

    written = publish(cfg.out_path, "train", None, write, cfg.overwrite)
    return TrainResult(cfg.out_path, doc, written)
