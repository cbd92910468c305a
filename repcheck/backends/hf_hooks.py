"""Where a transformers model's heads and neurons are, and forward hooks that read or replace them:
the hf backend's side of ``HookableBackend``.

A head's output is its slice of the input of the attention output projection (``o_proj`` in
the Llama family, ``attn.c_proj`` in GPT-2): [B, T, heads * head_dim], head h at columns
h*head_dim .. (h+1)*head_dim - 1. A neuron is one column of the input of the MLP's down
projection (``mlp.down_proj`` / ``mlp.c_proj``): the activation after the nonlinearity (and,
for gated MLPs, after the gate). Pre-hooks on those two inputs read or replace heads and
neurons without touching the weights; every hook is removed when its ``with`` block ends,
also after an exception.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import RepcheckError
from .base import Units

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: Families whose layout is known (model_type of the text config).
LLAMA_FAMILY = (
    "llama",
    "mistral",
    "mixtral",
    "qwen2",
    "qwen3",
    "gemma",
    "gemma2",
    "gemma3_text",
    "gemma3",
    "phi3",
    "olmo",
    "olmo2",
    "granite",
)
GPT2_FAMILY = ("gpt2",)
SUPPORTED = "the Llama family (Llama, Mistral, Qwen2, SmolLM, Gemma) and GPT-2"


@dataclass
class Layout:
    """The modules a layer's heads and neurons live in."""

    out_proj: list  # per layer: the attention output projection
    down_proj: list  # per layer: the MLP down projection
    heads: int
    head_dim: int
    neurons: int  # per layer

    @property
    def layers(self) -> int:
        return len(self.out_proj)

    def units(self) -> Units:
        return Units(self.layers, self.heads, self.head_dim, self.neurons)


def _in_features(module) -> int:
    if hasattr(module, "in_features"):
        return module.in_features
    return module.weight.shape[0]  # GPT-2's Conv1D: weight [in, out]


def layout(model) -> Layout:
    """The layout of a transformers causal LM, or a RepcheckError naming what is supported."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    model_type = getattr(config, "model_type", None)
    try:
        if model_type in GPT2_FAMILY:
            blocks = model.transformer.h
            out_proj = [b.attn.c_proj for b in blocks]
            down_proj = [b.mlp.c_proj for b in blocks]
            heads = config.n_head
        elif model_type in LLAMA_FAMILY:
            decoder = model.get_decoder()
            blocks = getattr(decoder, "layers", None) or decoder.language_model.layers
            out_proj = [b.self_attn.o_proj for b in blocks]
            down_proj = [b.mlp.down_proj for b in blocks]
            heads = config.num_attention_heads
        else:
            raise AttributeError(model_type)
    except AttributeError:
        raise RepcheckError(
            f"repcheck cannot find the heads and neurons of {type(model).__name__} (model type {model_type!r}); "
            f"it explains {SUPPORTED}"
        ) from None
    width = _in_features(out_proj[0])
    if width % heads:
        raise RepcheckError(f"{type(model).__name__}: {width} attention outputs do not split into {heads} heads")
    return Layout(out_proj, down_proj, heads, width // heads, _in_features(down_proj[0]))


def _head_columns(lay: Layout, heads: Sequence[int]) -> torch.Tensor:
    import torch

    return torch.cat([torch.arange(h * lay.head_dim, (h + 1) * lay.head_dim) for h in heads])


def check_units(lay: Layout, heads: Sequence[tuple[int, int]], neurons: Sequence[tuple[int, int]]) -> None:
    """Every (layer, head) and (layer, neuron) must exist."""
    for what, units, per_layer, param in (
        ("head", heads, lay.heads, "ablate_heads"),
        ("neuron", neurons, lay.neurons, "neurons"),
    ):
        for layer, index in units:
            if not (0 <= layer < lay.layers and 0 <= index < per_layer):
                raise RepcheckError(
                    f"{what} {layer}.{index} does not exist: the model has layers 0-{lay.layers - 1} "
                    f"and {what}s 0-{per_layer - 1}",
                    param=param,
                )


@contextlib.contextmanager
def ablated(
    model,
    heads: Sequence[tuple[int, int]] = (),
    neurons: Sequence[tuple[int, int]] = (),
    head_means: dict[int, torch.Tensor] | None = None,
    neuron_means: dict[int, torch.Tensor] | None = None,
) -> Iterator[None]:
    """Inside the block, each listed head's output (layer, head) and neuron's activation
    (layer, index) is replaced by 0, or by its mean when ``head_means`` / ``neuron_means``
    give one per layer ([heads * head_dim] / [neurons] vectors)."""
    import torch

    lay = layout(model)
    check_units(lay, heads, neurons)
    plan: list[tuple[torch.nn.Module, torch.Tensor, torch.Tensor | None]] = []
    by_layer: dict[int, list[int]] = defaultdict(list)
    for layer, head in heads:
        by_layer[layer].append(head)
    for layer, hs in by_layer.items():
        cols = _head_columns(lay, sorted(set(hs)))
        plan.append((lay.out_proj[layer], cols, head_means[layer][cols] if head_means else None))
    by_layer = defaultdict(list)
    for layer, index in neurons:
        by_layer[layer].append(index)
    for layer, idx in by_layer.items():
        cols = torch.tensor(sorted(set(idx)))
        plan.append((lay.down_proj[layer], cols, neuron_means[layer][cols] if neuron_means else None))

    handles = []
    try:
        for module, cols, values in plan:
            handles.append(module.register_forward_pre_hook(_replacer(cols, values)))
        yield
    finally:
        for h in handles:
            h.remove()


def _replacer(cols: torch.Tensor, values: torch.Tensor | None) -> Callable:
    def hook(module, args):
        x = args[0].clone()
        c = cols.to(x.device)
        x[..., c] = 0.0 if values is None else values.to(device=x.device, dtype=x.dtype)
        return (x, *args[1:])

    return hook


@contextlib.contextmanager
def recorded(model, which: str, sink: Callable[[int, torch.Tensor], None]) -> Iterator[None]:
    """Inside the block, ``sink(layer, input)`` receives the input of every layer's attention
    output projection (``which="heads"``) or MLP down projection (``which="neurons"``)."""
    lay = layout(model)
    modules = lay.out_proj if which == "heads" else lay.down_proj
    handles = []
    try:
        for layer, module in enumerate(modules):
            handles.append(module.register_forward_pre_hook(lambda m, args, layer=layer: sink(layer, args[0].detach())))
        yield
    finally:
        for h in handles:
            h.remove()
