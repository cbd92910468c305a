"""llama.cpp as a backend (``--backend llamacpp``): a GGUF file evaluated with its quantized
weights, as llama.cpp users run it (llama-cpp-python, ``pip install 'repcheck[llamacpp]'``).

The hf backend dequantizes a GGUF to float; this one does not, so ``repcheck diff --backend
llamacpp`` on a Q8_0 and a Q4_K_M file measures what the quantization does to the
self-reinforcement curve. llama.cpp computes the logits (``logits_all``: one row per prompt
position); the probabilities, and in generation every decoding setting, are repcheck's own
code on those logits, the same processors the hf backend applies (so DRY, n-gram bans and
windowed penalties work here too, with identical meaning). Generation goes one token at a time
through llama.cpp's KV cache; continuations of one prompt reuse its evaluated prefix.

The tokenizer is a Hugging Face tokenizer (read from the GGUF file by transformers, or
``tokenizer=``), checked against llama.cpp's own tokenization of a test string.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import RepcheckError
from ..progress import ProgressCallback
from .base import PROBE_TEXTS, ContextWindow, LogitsRow, RawGeneration, require_same_tokens
from .common import EngineBackend, import_engine

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from .base import GenerationRequest, Scored, ScoreRequest
#: context reserved when neither max_model_len nor a smaller model context says otherwise:
#: llama.cpp keeps one row of logits per position of it (n_ctx x vocab floats)
DEFAULT_N_CTX = 4096

#: llama.cpp's ``llama_ftype`` values (``general.file_type``) by name, for provenance
FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S",
    12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K",
    19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL",
    26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16",
}  # fmt: skip


def import_llama_cpp():
    return import_engine(
        "llama_cpp", "llamacpp",
        "llama-cpp-python: pip install 'repcheck[llamacpp]' (it compiles llama.cpp; see docs/backends.md)",
    )  # fmt: skip


@dataclass(eq=False)
class LlamaCppBackend(EngineBackend):
    """A GGUF model in llama.cpp (``llama_cpp.Llama`` with ``logits_all``) and its HF tokenizer.
    Every decoding key but beam search works: the processors run on llama.cpp's logits. Its
    ``dtype`` is "gguf": the file's own types."""

    file_type: str | None = None

    kind: ClassVar[str] = "llamacpp"
    engine: ClassVar[str] = "llama_cpp_python"

    def extra_info(self) -> dict[str, Any]:
        return {"quantization": self.file_type}

    # ---- llama.cpp calls -------------------------------------------------------------------
    def _check_length(self, n: int) -> None:
        if self.context_length is not None and n > self.context_length:
            raise RepcheckError(
                f"a sequence of {n} tokens exceeds the {self.context_length} positions llama.cpp reserved; "
                "raise --max-model-len",
                param="max_model_len",
            )

    def _evaluate(self, ids: Sequence[int], keep: int = 0) -> None:
        """Evaluate ``ids[keep:]`` after the first ``keep`` positions already in the KV cache."""
        self.llm.n_tokens = keep  # eval drops every cached position from here on
        self.llm.eval(list(ids[keep:]))

    def _rows(self, first: int, last: int) -> torch.Tensor:
        """Logits rows first .. last - 1 of what was evaluated: [last - first, V], float32."""
        import torch

        return torch.from_numpy(self.llm.scores[first:last].copy())

    def sequence_logits(self, ids: Sequence[int]) -> torch.Tensor:
        """[T, V] logits of one sequence (row t predicts token t + 1)."""
        self._check_length(len(ids))
        self._evaluate(ids)
        return self._rows(0, len(ids))

    def _score(self, request: ScoreRequest, progress: ProgressCallback | None) -> list[Scored]:
        """One sequence at a time (llama.cpp's high-level API has no batch of sequences)."""
        import torch

        from ..metrics import next_token_probs
        from .hf_utils import scored

        out = []
        for i, (ids, start) in enumerate(zip(request.sequences, request.starts, strict=True)):
            logits = self.sequence_logits(ids)
            out.append(scored(*next_token_probs(logits, torch.tensor(list(ids)), start, len(ids) - start)))
            if progress:
                progress("scoring", i + 1, len(request))
        return out

    def logits(self, sequences: Sequence[Sequence[int]], *, batch_size: int = 8) -> Iterator[list[LogitsRow]]:
        """One ``LogitsRow`` per batch: llama.cpp evaluates one sequence at a time."""
        import torch

        for i, ids in enumerate(sequences):
            yield [LogitsRow(i, self.sequence_logits(ids), torch.tensor(list(ids)))]

    def _generate(self, request: GenerationRequest, progress: ProgressCallback | None) -> list[RawGeneration]:
        """Token by token: llama.cpp's logits, then the setting's processors (the hf backend's),
        then the argmax, or a draw seeded by (seed, prompt, sample) exactly as the hf backend
        seeds it."""
        import torch

        from ..guard.detector import LoopGuard
        from ..processors import SeededSampler, row_seed

        setting = request.setting
        stop = set(self.stop_ids)
        out: list[RawGeneration] = []
        label, total = f"generating: {setting.name}", len(request.rows())
        if progress:
            progress(label, 0, total)
        for index, prompt in enumerate(request.prompts):
            prompt = list(prompt)
            budget = request.budget(index)
            self._check_length(len(prompt) + budget)
            self._evaluate(prompt)
            for sample in range(request.per_prompt):
                processors = setting.logits_processors(self.tokenizer, prompt_length=len(prompt))
                if setting.do_sample:
                    processors.append(SeededSampler([row_seed(request.seed, index, sample)]))
                ids, new, finish, extra = list(prompt), [], "length", {}
                guard = LoopGuard(request.stop_on_loop) if request.stop_on_loop is not None else None
                with torch.inference_mode():
                    for step in range(budget):
                        if step:
                            self._evaluate(ids, keep=len(ids) - 1)
                        scores = self._rows(len(ids) - 1, len(ids))  # [1, V]
                        token = int(processors(torch.tensor([ids]), scores).argmax(-1))
                        if token in stop:
                            finish = "eos"
                            break
                        ids.append(token)
                        new.append(token)
                        found = guard.feed(token) if guard is not None else None
                        if found is not None:  # the loop is confirmed: stop paying for it
                            finish, extra = "loop", {"loop": found.to_dict(), "cut": 0}
                            break
                out.append(RawGeneration(index, sample, new, finish, extra))
                self.llm.n_tokens = len(prompt)  # the next sample starts from the prompt's cache
                if progress:
                    progress(label, len(out), total)
        return out

    def close(self) -> None:
        if self.llm is not None:
            self.llm.close()
        self.llm = None
        gc.collect()


def load_llamacpp(
    spec: str,
    *,
    dtype: str = "float32",
    device: str = "auto",
    progress: ProgressCallback | None = None,
    tokenizer: str | None = None,
    max_model_len: int | None = None,
    n_threads: int | None = None,
) -> LlamaCppBackend:
    """Open a .gguf file (or a built-in alias's GGUF) in llama.cpp.

    ``max_model_len``: positions reserved (llama.cpp's ``n_ctx``; default the model's context,
    at most 4096). ``n_threads``: llama.cpp's threads (default: torch's, which ``--threads``
    sets). ``device`` "cuda" offloads every layer where this llama.cpp build can.
    """
    from ..errors import require_int
    from .hf_utils import context_window, eos_ids_of, require_causal
    from .spec import locate, one_line, resolve

    if dtype != "float32":
        raise RepcheckError(
            "the llamacpp backend computes in the GGUF file's own types: leave --dtype at float32", param="dtype"
        )
    if max_model_len is not None:
        require_int("max_model_len", max_model_len, 2, 10**8)
    if device not in ("auto", "cpu", "cuda"):
        raise RepcheckError(f"the llamacpp backend runs on cpu or cuda, not {device}", param="device")
    llama_cpp = import_llama_cpp()
    offload = bool(llama_cpp.llama_supports_gpu_offload())
    if device == "cuda" and not offload:
        raise RepcheckError("this llama-cpp-python was built without GPU offload; use --device cpu", param="device")
    gpu = offload and device != "cpu"
    if locate(spec) not in ("gguf", "builtin"):
        raise RepcheckError(
            f"the llamacpp backend runs GGUF files; {spec} is not one (give a .gguf path, or use --backend hf)",
            param="model",
        )
    target = resolve(spec, progress)  # a built-in alias resolves to its GGUF file
    hf_tok, config = _hf_side(target, tokenizer)
    if config is not None:
        require_causal(config, spec)
    window = context_window(config) if config is not None else ContextWindow(None)
    n_ctx = max_model_len or min(window.max_tokens or DEFAULT_N_CTX, DEFAULT_N_CTX)
    import torch

    threads = n_threads or torch.get_num_threads()  # --threads sets torch's
    options = {"n_ctx": n_ctx, "n_threads": threads, "n_gpu_layers": -1 if gpu else 0}
    if progress:
        progress(f"loading {target.name} in llama.cpp", 0, 0)
    try:
        llm = llama_cpp.Llama(
            model_path=str(target.path),
            logits_all=True,
            n_threads_batch=threads,
            seed=0,
            verbose=False,
            **options,
        )
    except Exception as err:  # noqa: BLE001 - llama.cpp reports a bad file as ValueError, a bad setup as others
        raise RepcheckError(
            f"llama.cpp could not load {spec} (corrupt or unsupported GGUF?): {one_line(err)}"
        ) from None
    metadata = dict(getattr(llm, "metadata", {}) or {})
    try:
        for text in PROBE_TEXTS:
            theirs = llm.tokenize(text.encode(), add_bos=False, special=False)
            require_same_tokens(hf_tok(text, add_special_tokens=False)["input_ids"], theirs, "GGUF file", text)
    except RepcheckError:
        llm.close()
        raise
    stop = eos_ids_of(None, hf_tok)
    eos = int(llm.token_eos())
    if eos >= 0 and eos not in stop:
        stop.append(eos)
    file_type = metadata.get("general.file_type")
    return LlamaCppBackend(
        llm=llm,
        dtype="gguf",
        tokenizer=hf_tok,
        spec=spec,
        name=target.name,
        source=target.source,
        window=ContextWindow(n_ctx, window.sliding, window.sliding_layers, window.layers),
        stop_ids=stop,
        file_type=FILE_TYPES.get(int(file_type), str(file_type)) if file_type is not None else None,
        architecture=metadata.get("general.architecture"),
        sha256=target.sha256,
        device="cuda" if gpu else "cpu",
        engine_options=options,
        engine_version=str(llama_cpp.__version__),
    )


def _hf_side(target, tokenizer: str | None):
    """The Hugging Face tokenizer (``tokenizer`` or the one transformers reads from the GGUF
    file) and the model config from the GGUF (None where transformers cannot read this
    architecture's GGUF: then the window is llama.cpp's n_ctx alone)."""
    from .hf_utils import load_config, load_tokenizer

    try:
        config = load_config(target)
    except RepcheckError:  # an architecture transformers' GGUF reader lacks
        config = None
    if tokenizer:
        return load_tokenizer(tokenizer, tokenizer), config
    return load_tokenizer(target.directory, str(target.path), gguf_file=target.gguf_file), config
