"""The Hugging Face transformers backend: load any causal LM, score sequences, give full
distributions, generate, and expose its heads and neurons (``HookableBackend``).

torch and transformers are imported inside functions so that importing repcheck (and
``repcheck --help``) stays fast.
"""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import RepcheckError
from ..progress import ProgressCallback
from .base import ContextWindow, LogitsRow, TraceBatch, model_block
from .batching import check_padding_side, padded_forward, plan_batches
from .builtin import DEFAULT_MODEL
from .common import BaseBackend
from .hf_utils import (
    check_dtype,
    context_window,
    hub_kwargs,
    load_config,
    quiet_transformers,
    require_causal,
    resolve_device,
    scored,
    torch_dtype,
)
from .spec import ResolvedSpec, hub_error, one_line, resolve

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from .base import GenerationRequest, RawGeneration, Scored, ScoreRequest, Units

#: attention kernels ``attn_implementation`` may name (``explain`` needs eager)
ATTN_IMPLEMENTATIONS = ("eager", "sdpa", "flash_attention_2")


@dataclass(eq=False)
class HFBackend(BaseBackend):
    """A transformers causal LM and its tokenizer, with what a report needs to say about it."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    spec: str  # what the user asked for
    name: str  # a readable name (alias, directory name or hub id)
    source: str  # "builtin", "local", "gguf" or "hub"
    dtype: str
    device: str
    window: ContextWindow
    sha256: str | None = None  # of the weights file(s), where known
    attn_implementation: str | None = None
    padding_side: str = "left"  # of scoring batches (results do not depend on it; a test checks)
    extra: dict[str, Any] = field(default_factory=dict)

    kind: ClassVar[str] = "hf"

    def info(self) -> dict[str, Any]:
        """The ``model`` block of a JSON report."""
        return model_block(
            self,
            source=self.source,
            sha256=self.sha256,
            cls=type(self.model).__name__,
            padding_side=self.padding_side,
        )

    # ---- forward passes ------------------------------------------------------------------
    @property
    def pad_id(self) -> int:
        """Any id works for padding (it is masked); the tokenizer's pad, else EOS, else 0."""
        tok = self.tokenizer
        for candidate in (tok.pad_token_id, tok.eos_token_id):
            if isinstance(candidate, int):
                return candidate
        return 0

    @property
    def vocab_size(self) -> int:
        return max(len(self.tokenizer), getattr(self.model.config.get_text_config(), "vocab_size", 0) or 0)

    @property
    def input_device(self) -> str:
        """Where inputs go (the first layer's device when the model is spread over several)."""
        return str(self.model.get_input_embeddings().weight.device)

    def _passes(self, sequences: Sequence[Sequence[int]], batch_size: int, padding_side: str, **forward_kwargs):
        """(batch indices, outputs, input_ids [B, T], offsets) of each padded forward pass."""
        import torch

        with torch.inference_mode():
            for batch in plan_batches([len(s) for s in sequences], batch_size, self.vocab_size):
                outputs, input_ids, offsets = padded_forward(
                    self.model, [sequences[i] for i in batch], self.pad_id, self.input_device, padding_side,
                    **forward_kwargs,
                )  # fmt: skip
                yield batch, outputs, input_ids, offsets

    def _score(self, request: ScoreRequest, progress: ProgressCallback | None) -> list[Scored]:
        """p, pmax and argmax for positions ``starts[i]`` .. end of every sequence."""
        from ..metrics import next_token_probs

        seqs, starts = request.sequences, request.starts
        out: list[Scored | None] = [None] * len(seqs)
        done = 0
        for batch, outputs, input_ids, offsets in self._passes(seqs, request.batch_size, self.padding_side):
            for b, i in enumerate(batch):
                start, count = offsets[b] + starts[i], len(seqs[i]) - starts[i]
                out[i] = scored(*next_token_probs(outputs.logits[b], input_ids[b], start, count))
            done += len(batch)
            if progress:
                progress("scoring", done, len(seqs))
        return out  # type: ignore[return-value]

    def logits(self, sequences: Sequence[Sequence[int]], *, batch_size: int = 8) -> Iterator[list[LogitsRow]]:
        """Per batch: every sequence's logits [T, V] and ids [T], padding removed."""
        for batch, outputs, input_ids, offsets in self._passes(sequences, batch_size, "left"):
            yield [
                LogitsRow(i, outputs.logits[b, offsets[b] : offsets[b] + len(sequences[i])], input_ids[b, offsets[b] :])
                for b, i in enumerate(batch)
            ]

    def _generate(self, request: GenerationRequest, progress: ProgressCallback | None) -> list[RawGeneration]:
        from .hf_generate import generate

        return generate(self, request, progress)

    # ---- HookableBackend ---------------------------------------------------------------------
    def units(self) -> Units:
        from .hf_hooks import layout

        return layout(self.model).units()

    def ablated(self, heads=(), neurons=(), head_means=None, neuron_means=None):
        from .hf_hooks import ablated

        return ablated(self.model, heads, neurons, head_means, neuron_means)

    def traced(self, sequences: Sequence[Sequence[int]], *, batch_size: int = 4) -> Iterator[TraceBatch]:
        """Eager passes with attention weights, head outputs and neuron activations (the
        model must have been loaded with ``attn_implementation="eager"``)."""
        from .hf_hooks import recorded

        impl = getattr(self.model.config, "_attn_implementation", None)
        if impl not in (None, "eager"):
            raise RepcheckError(
                f"attention weights need eager attention, but the model was loaded with {impl!r}; "
                "load it with attn_implementation='eager' (the explain command does)"
            )
        acts: dict[str, dict[int, torch.Tensor]] = {"heads": {}, "neurons": {}}
        with (
            recorded(self.model, "heads", acts["heads"].__setitem__),
            recorded(self.model, "neurons", acts["neurons"].__setitem__),
        ):
            for batch, outputs, _ids, offsets in self._passes(sequences, batch_size, "left", output_attentions=True):
                if outputs.attentions is None or outputs.attentions[0] is None:
                    raise RepcheckError(
                        "the model returned no attention weights; load it with attn_implementation='eager'"
                    )
                yield TraceBatch(batch, offsets, outputs.attentions, dict(acts["heads"]), dict(acts["neurons"]))

    def close(self) -> None:
        """Drop the weights now (``diff`` loads one checkpoint at a time)."""
        import torch

        self.model = None  # type: ignore[assignment]
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


#: The public name of the Hugging Face backend, as the 0.1 API called it.
LoadedModel = HFBackend


# ---- loading ---------------------------------------------------------------------------------
def load_hf(
    spec: str = DEFAULT_MODEL,
    *,
    dtype: str = "float32",
    device: str = "auto",
    progress: ProgressCallback | None = None,
    attn_implementation: str | None = None,
    device_map: str | None = None,
    padding_side: str = "left",
) -> HFBackend:
    """Load a causal LM and its tokenizer with transformers.

    ``dtype`` float32 is the default because bfloat16, while 2-3x faster on CPUs with AMX,
    moves probabilities by up to ~0.1. ``device="auto"`` picks CUDA where present;
    ``device_map="auto"`` spreads a large model over every GPU (accelerate).
    ``attn_implementation`` (one of ``ATTN_IMPLEMENTATIONS``) is passed to
    ``from_pretrained``; attention weights (``repcheck explain``) need "eager".
    ``padding_side`` of scoring batches ("left" or "right"; the numbers do not depend on it).
    A GGUF file (and the built-in alias) is converted to safetensors once (``convert``).
    """
    from .convert import hf_directory

    tdtype = torch_dtype(check_dtype(dtype))
    check_padding_side(padding_side)
    if attn_implementation not in (None, *ATTN_IMPLEMENTATIONS):
        raise RepcheckError(
            f"unknown attention implementation {attn_implementation!r}; choose one of {', '.join(ATTN_IMPLEMENTATIONS)}",
            param="attn_implementation",
        )
    if device_map not in (None, "auto"):
        raise RepcheckError(f"device_map must be 'auto' or unset, not {device_map!r}", param="device_map")
    resolved_device = resolve_device(device) if device_map is None else "auto"
    target = resolve(spec, progress)
    directory = hf_directory(target, progress)
    if progress:
        where = " from the Hugging Face hub" if target.source == "hub" and not target.local_files_only else ""
        progress(f"loading {target.name}{where}", 0, 0)
    # a GGUF's conversion is a plain local checkpoint
    local = dataclasses.replace(target, source="local", path=directory) if target.is_gguf else target
    config = load_config(local)
    require_causal(config, spec)
    model, tokenizer = _load_weights(local, target, tdtype, resolved_device, device_map, attn_implementation)
    model.eval()
    if device_map == "auto":
        resolved_device = str(model.get_input_embeddings().weight.device)
    return HFBackend(
        model=model,
        tokenizer=tokenizer,
        spec=spec,
        name=target.name,
        source=target.source,
        dtype=dtype,
        device=resolved_device,
        window=context_window(config),
        sha256=target.sha256,
        attn_implementation=attn_implementation,
        padding_side=padding_side,
    )


def _load_weights(local: ResolvedSpec, target: ResolvedSpec, tdtype, device: str, device_map, attn: str | None):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = hub_kwargs(local)
    load_kwargs = dict(kwargs, dtype=tdtype)
    if attn is not None:
        load_kwargs["attn_implementation"] = attn
    if device_map == "auto":
        load_kwargs["device_map"] = "auto"
    elif device != "cpu":
        load_kwargs["device_map"] = {"": device}  # straight onto the device, not through host memory
    try:
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(local.directory, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(local.directory, **load_kwargs)
    except RepcheckError:
        raise
    except Exception as err:
        if target.source == "hub":
            raise hub_error(target, err) from None
        if target.is_gguf:
            raise RepcheckError(
                f"the converted copy of {target.spec} cannot be loaded ({one_line(err)}); "
                + (
                    f"run `repcheck models pull --force {target.spec}`"
                    if target.source == "builtin"
                    else "delete it from the cache to convert it again"
                )
            ) from None
        raise RepcheckError(f"could not load the model in {target.spec}: {one_line(err)}") from None
    return model, tokenizer


__all__ = ["ATTN_IMPLEMENTATIONS", "DEFAULT_MODEL", "HFBackend", "LoadedModel", "load_hf"]
