"""The cost of one training step of the default recipe, on any device: steps/s, tokens/s and
(on a GPU) peak memory.

The default TrainConfig (DITTO on a rank-16 LoRA adapter, --no-lora: every weight; batch 4 x
128 tokens, half the steps DITTO's, half MLE, whose tokens count as the model's own text, so
that --anchor kl adds the base model's forward pass) and
--method mle for the same input ids, at --precision (auto: bf16 on GPUs and AMX CPUs), on the
shipped corpus (the data's values do not change a step's cost). --random-init builds a model
of --model's architecture with random weights (what a GPU machine without the weights can
time: the cost does not depend on the values); --shape 1b a Llama of 1.2 B parameters with
the same tokenizer, for what to expect on a larger model. Warm-up steps are not timed.

Usage: python benchmarks/train_step.py [--model smollm2-135m] [--device auto] [--precision auto]
       [--random-init] [--shape 1b] [--steps 20] [--warmup 5] [--batch-size 4] [--no-lora]
       [--anchor mle|kl]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace

from transformers import TrainerCallback

SHAPES = {  # Llama-3.2-1B's shape (untied head), the built-in's tokenizer
    "1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
               num_key_value_heads=8, head_dim=64, tie_word_embeddings=False),
}  # fmt: skip


def random_model(spec: str, shape: str | None, where: str) -> str:
    """A directory holding ``spec``'s tokenizer and config (reshaped by ``shape``) with random
    weights. ``spec``: a directory with the config and tokenizer (no weights needed), or a
    model repcheck loads (a built-in alias)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if not os.path.isdir(spec):
        from repcheck import load_model

        spec = load_model(spec, device="cpu").model.config._name_or_path  # its converted directory
    config = AutoConfig.from_pretrained(spec)
    for k, v in SHAPES.get(shape or "", {}).items():
        setattr(config, k, v)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(where)
    AutoTokenizer.from_pretrained(spec).save_pretrained(where)
    return where


class Clock(TrainerCallback):
    """A Trainer callback that times every step (synchronizing the GPU around it)."""

    def __init__(self, cuda: bool):
        self.cuda, self.times, self.t = cuda, [], 0.0

    def _sync(self):
        if self.cuda:
            import torch

            torch.cuda.synchronize()

    def on_step_begin(self, *args, **kwargs):
        self._sync()
        self.t = time.perf_counter()

    def on_step_end(self, *args, **kwargs):
        self._sync()
        self.times.append(time.perf_counter() - self.t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--random-init", action="store_true")
    ap.add_argument("--shape", choices=sorted(SHAPES))
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--no-lora", dest="lora", action="store_false", help="train every weight, not a LoRA adapter")
    ap.add_argument("--anchor", choices=("mle", "kl", "plain"), help="the MLE steps' anchor (default: the recipe's)")
    args = ap.parse_args()

    import torch
    from transformers import PrinterCallback, TrainingArguments

    from repcheck.backends.hf import load_hf
    from repcheck.backends.hf_utils import resolve_device
    from repcheck.cpu import describe_cpu
    from repcheck.threads import LoadMeter
    from repcheck.train.config import TrainConfig
    from repcheck.train.data import read_corpus, repetition_pairs, split_corpus, text_blocks
    from repcheck.train.engine import RepetitionTrainer, StepBatches, one_batch
    from repcheck.train.run import _wrap_lora, precision_flags

    device = resolve_device(args.device)
    tmp = tempfile.mkdtemp(prefix="repcheck-train-step-")
    spec = random_model(args.model, args.shape, tmp) if args.random_init or args.shape else args.model
    model = load_hf(spec, dtype="float32", device=device)
    params = sum(p.numel() for p in model.model.parameters())
    on_cuda = device.startswith("cuda")
    where = torch.cuda.get_device_name() if on_cuda else f"CPU: {describe_cpu()}, {torch.get_num_threads()} threads"
    flags = precision_flags(args.precision, device)
    precision = "bf16" if flags["bf16"] else "fp16" if flags["fp16"] else "fp32"
    # the default recipe (a LoRA adapter on every linear layer; --no-lora: every weight), wrapped once
    recipe = TrainConfig(
        batch_size=args.batch_size, steps=args.warmup + args.steps, warmup_steps=0, lora=args.lora,
        **({"anchor": args.anchor} if args.anchor else {}),
    ).validate()  # fmt: skip
    mode = f"a LoRA adapter (rank {recipe.lora_rank}, every linear layer)" if recipe.lora else "every weight"
    print(f"{params / 1e6:.0f} M parameters{' (random weights)' if spec != args.model else ''}, {precision}, {where}; "
          f"training {mode}, MLE steps anchored by {recipe.anchor}")  # fmt: skip
    split = split_corpus(read_corpus(), 0.05, 0)
    trainable = _wrap_lora(model.model, recipe) if recipe.lora else model.model
    for method in ("ditto", "mle"):
        cfg = replace(recipe, method=method)
        blocks = text_blocks(model.tokenizer, split.train, cfg.block_size)
        pairs = repetition_pairs(model.tokenizer, split.train, cfg.block_size)
        targs = TrainingArguments(
            output_dir=os.path.join(tmp, "out"), max_steps=cfg.steps, per_device_train_batch_size=1,
            use_cpu=not on_cuda, report_to=[], disable_tqdm=True, save_strategy="no", remove_unused_columns=False,
            logging_steps=10**6, learning_rate=cfg.learning_rate, **flags,
        )  # fmt: skip
        own = [[True] * cfg.block_size] * len(
            blocks
        )  # timed as the model's own text (--anchor kl: the base's pass too)
        batches = StepBatches(cfg, blocks, pairs, cfg.steps, own=own)
        clock = Clock(on_cuda)
        trainer = RepetitionTrainer(
            model=trainable, args=targs, train_dataset=batches, data_collator=one_batch, train_config=cfg,
            callbacks=[clock],
        )  # fmt: skip
        trainer.remove_callback(PrinterCallback)
        if on_cuda:
            torch.cuda.reset_peak_memory_stats()
        with LoadMeter() as load:
            trainer.train()
        timed = clock.times[args.warmup :]
        per_step = sum(timed) / len(timed)
        tokens = cfg.batch_size * cfg.block_size
        memory = f", peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if on_cuda else ""
        print(f"  {method:6s} {1 / per_step:6.2f} steps/s, {tokens / per_step:8.0f} tokens/s "
              f"({len(timed)} steps of {tokens} tokens after {args.warmup} warm-up){memory}; {load.describe()}",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    os.environ.setdefault("TQDM_DISABLE", "1")
    main()
