"""Each backend against the hf backend on the same work, in one run.

For every backend that can run here (hf always; vllm and llamacpp where installed; a served
backend, openai, sglang or tgi, with --base-url), on the built-in model:
  * prompt scoring: the probe's sequences (wiki_en sentences x K copies), tokens/s;
  * generation: greedy continuations of the open-ended prompts, new tokens/s, as the backend
    batches them (hf: one batched generate; vllm: its scheduler; llamacpp: one sequence at a
    time through its KV cache; served: --concurrency requests in flight);
and each as a ratio to hf's. llamacpp computes with the GGUF's quantized weights (Q4_1), the
others with the float32 dequantization, so its ratios compare engines *and* arithmetic. On a
GPU (--device cuda) the target is vLLM generation >= 5x hf's batched generation.

A server measured on the machine that runs this script shares its cores with it: each line
prints the load other processes (the server among them) put on the machine while it ran, and
the server's kind and version, so that a figure is never read without its conditions.

Usage: python benchmarks/backends.py [--backends hf,vllm,llamacpp,openai] [--device cpu|cuda]
       [--sentences 16] [--repeats 8] [--prompts 16] [--new-tokens 64]
       [--base-url http://127.0.0.1:8000/v1 --served smollm2-135m --tokenizer DIR --concurrency 4]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVED = ("openai", "sglang", "tgi")
MODULES = {"vllm": "vllm", "llamacpp": "llama_cpp", **{name: "httpx" for name in SERVED}}


def available(name: str, base_url: str | None) -> str | None:
    """Why a backend cannot run here, or None."""
    module = MODULES.get(name)
    if module and importlib.util.find_spec(module) is None:
        return f"{module} is not installed"
    if name in SERVED and not base_url:
        return "no --base-url"
    return None


def load(name: str, args):
    from repcheck import load_model

    if name in SERVED:
        return load_model(args.served, backend=name, base_url=args.base_url, tokenizer=args.tokenizer,
                          concurrency=args.concurrency)  # fmt: skip
    if name == "vllm":
        return load_model(backend="vllm", device=args.device, max_model_len=2048)
    if name == "llamacpp":
        return load_model(backend="llamacpp", device=args.device)
    return load_model(device=args.device)


def measure(model, args) -> dict[str, float]:
    from repcheck import read_sentences
    from repcheck.backends.base import ScoreRequest
    from repcheck.decoding import parse_setting
    from repcheck.generation import generate
    from repcheck.metrics import repeated_input
    from repcheck.probing import encode_inputs

    sentences = read_sentences(ROOT / "sample_prompts" / "wiki_en.txt")[: args.sentences]
    encoded, prefix = encode_inputs(model, sentences, None)
    seqs = [repeated_input(prefix, list(e.token_ids), args.repeats) for e in encoded]
    starts = [len(prefix)] * len(seqs)
    model.score(ScoreRequest(seqs[:2], starts[:2], 8))  # warm up
    t = time.perf_counter()
    model.score(ScoreRequest(seqs, starts, 8))
    score_s = time.perf_counter() - t
    prompts = read_sentences(ROOT / "sample_prompts" / "open_ended.txt")[: args.prompts]
    greedy = parse_setting("greedy")
    generate(model, prompts[:2], greedy, max_new_tokens=4, batch_size=2)  # warm up
    run = generate(model, prompts, greedy, max_new_tokens=args.new_tokens, batch_size=len(prompts))
    return {
        "score_tokens_s": sum(len(s) for s in seqs) / score_s,
        "generate_tokens_s": run.new_tokens / run.elapsed_s,
        "new_tokens": run.new_tokens,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", default="hf,vllm,llamacpp,openai")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sentences", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=8)
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--base-url", default=None)
    ap.add_argument("--served", default="smollm2-135m")
    ap.add_argument("--tokenizer", default=None)
    ap.add_argument("--concurrency", type=int, default=4, help="served backends: requests in flight")
    args = ap.parse_args()
    import torch

    from repcheck.cpu import describe_cpu
    from repcheck.threads import LoadMeter

    names = [n.strip() for n in args.backends.split(",") if n.strip()]
    if "hf" not in names:
        names.insert(0, "hf")
    where = torch.cuda.get_device_name() if args.device == "cuda" else f"{os.cpu_count()} cores, CPU: {describe_cpu()}"
    print(f"{where}; torch {torch.__version__}; {args.sentences} sentences x K={args.repeats}; "
          f"{args.prompts} prompts x {args.new_tokens} new tokens, greedy")  # fmt: skip
    results = {}
    for name in names:
        why = available(name, args.base_url)
        if why:
            print(f"  {name:9s} skipped: {why}")
            continue
        t = time.perf_counter()
        model = load(name, args)
        loaded = time.perf_counter() - t
        with LoadMeter() as meter:
            measured = measure(model, args)
        server = model.info().get("server")
        results[name] = {**measured, "load_s": loaded, "versions": model.versions()}
        model.close()
        r = results[name]
        print(f"  {name:9s} load {loaded:5.1f} s, scoring {r['score_tokens_s']:8.1f} tokens/s, "
              f"generation {r['generate_tokens_s']:7.1f} new tokens/s ({r['new_tokens']} tokens) {r['versions']}"
              + (f" [{server} server at {args.base_url}, {args.concurrency} in flight]" if server else "")
              + f"\n            {meter.describe()}")  # fmt: skip
    base = results["hf"]
    print("\nagainst hf (same sequences, this run):")
    for name, r in results.items():
        print(f"  {name:9s} scoring {r['score_tokens_s'] / base['score_tokens_s']:5.2f}x, "
              f"generation {r['generate_tokens_s'] / base['generate_tokens_s']:5.2f}x")  # fmt: skip
    if args.device == "cuda" and "vllm" in results:
        ratio = results["vllm"]["generate_tokens_s"] / base["generate_tokens_s"]
        print(f"\ntarget: vLLM generation >= 5x hf batched generation on a GPU: {'met' if ratio >= 5 else 'MISSED'}")


if __name__ == "__main__":
    os.environ.setdefault("TQDM_DISABLE", "1")
    main()
