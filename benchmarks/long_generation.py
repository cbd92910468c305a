"""Long generations on the hf backend against transformers' own batched ``generate``.

The same prompts (the shipped chat prompts, rendered with the chat template), the same greedy
setting and budget, in one batch: repcheck's ``generate`` (its KV-budgeted batches, progress
criterion, and with --stop-on-loop its guard) against one plain ``model.generate`` call on the
same left-padded ids. Each is timed --rounds times, alternating, and the best round counts
(the machine's other load only ever slows a round). Prints new tokens/s of each and the ratio;
the issue's target is >= 0.9x. Also prints the guard's cost: the same repcheck call with
--stop-on-loop on the prompts, with every continuation kept to the full budget (min_tokens equal
to the budget: the guard runs on every token and stops nothing before the last).

Usage: python benchmarks/long_generation.py [--prompts 8] [--new-tokens 512] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--model", default="smollm2-135m", help="a built-in alias or a model directory")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    args = ap.parse_args()

    import torch

    from repcheck import load_model
    from repcheck.backends.batching import pad_batch
    from repcheck.backends.hf_generate import eos_ids
    from repcheck.cpu import describe_cpu
    from repcheck.decoding import parse_setting
    from repcheck.generation import encode_prompts, generate
    from repcheck.guard import GuardConfig
    from repcheck.prompts import read_prompts
    from repcheck.threads import LoadMeter

    model = load_model(args.model, device=args.device, dtype=args.dtype)
    on_cuda = model.input_device.startswith("cuda")
    sync = torch.cuda.synchronize if on_cuda else (lambda: None)
    prompts = read_prompts("chat_en", chat=True)[: args.prompts]
    greedy = parse_setting("greedy")
    n = args.new_tokens
    print(
        f"{os.cpu_count()} cores, {torch.get_num_threads()} threads, CPU: {describe_cpu()}, torch {torch.__version__}"
    )
    where = torch.cuda.get_device_name() if on_cuda else "CPU"
    print(f"{model.name} ({args.dtype}) on {where}: {len(prompts)} chat prompts x {n} new tokens, greedy, one batch")

    ids = encode_prompts(model, prompts, n)
    stop = eos_ids(model)
    input_ids, mask, _ = pad_batch(ids, model.pad_id, "left")
    input_ids, mask = input_ids.to(model.input_device), mask.to(model.input_device)

    def plain() -> tuple[int, float]:
        sync()
        began = time.perf_counter()
        with torch.inference_mode():
            out = model.model.generate(
                input_ids=input_ids, attention_mask=mask, max_new_tokens=n, do_sample=False,
                eos_token_id=stop, pad_token_id=model.pad_id,
            )  # fmt: skip
        sync()
        wall = time.perf_counter() - began
        new = 0
        for row in out[:, input_ids.shape[1] :].tolist():
            end = next((j for j, t in enumerate(row) if t in stop), None)
            new += len(row) if end is None else end + 1
        return new, wall

    never = GuardConfig(min_tokens=n)  # watches every token; only a loop filling the whole budget could stop a row

    def ours(guard=None) -> tuple[int, float]:
        run = generate(model, prompts, greedy, max_new_tokens=n, batch_size=len(prompts), stop_on_loop=guard)
        return run.new_tokens, run.elapsed_s

    generate(model, prompts[:2], greedy, max_new_tokens=8, batch_size=2)  # warm up
    best: dict[str, tuple[int, float]] = {}
    with LoadMeter() as load:
        for _ in range(args.rounds):
            for label, fn in (
                ("transformers generate", plain),
                ("repcheck", ours),
                ("repcheck + guard", lambda: ours(never)),
            ):
                tokens, wall = fn()
                if label not in best or tokens / wall > best[label][0] / best[label][1]:
                    best[label] = (tokens, wall)
                print(f"  {label:22s} {tokens} new tokens in {wall:.1f} s: {tokens / wall:.1f} tokens/s", flush=True)
    rate = {k: t / w for k, (t, w) in best.items()}
    print(f"\nbest of {args.rounds} rounds; {load.describe()}")
    print(f"repcheck / transformers generate: {rate['repcheck'] / rate['transformers generate']:.3f}x (target >= 0.9x)")
    overhead = rate["repcheck"] / rate["repcheck + guard"] - 1
    print(
        f"the guard's overhead (every token watched, nothing stopped): {overhead * 100:+.1f}% of generation time (target < 2%)"
    )


if __name__ == "__main__":
    os.environ.setdefault("TQDM_DISABLE", "1")
    main()
