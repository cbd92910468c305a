"""Ablation as something the caller wraps around a measurement.

An ``Ablation`` names heads (layer, head) and neurons (layer, index) to zero, or to set to
their mean; ``applied(model)`` is a context in which a ``HookableBackend`` runs with them
ablated, and ``to_setting()`` is what a result records about it. The probe and compare know
nothing of ablations; the caller wraps them:

    >>> from repcheck import load_model, probe
    >>> from repcheck.explain.ablation import Ablation
    >>> model = load_model()
    >>> cut = Ablation.of_heads("12.3,14.1")
    >>> with cut.applied(model):
    ...     result = probe(model, "The committee approved the new budget.", settings=cut.to_setting())
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..backends.base import Backend, HookableBackend
from ..errors import RepcheckError


def parse_heads(spec: str | Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    """``"12.3,14.1"`` (layer.head, 0-based) or [(12, 3), (14, 1)], sorted and unique (whether
    they exist is the model's to say, when the ablation is applied)."""
    if isinstance(spec, str):
        heads = []
        for item in spec.replace(" ", "").split(","):
            if not item:
                continue
            layer, sep, head = item.partition(".")
            if not sep or not layer.isdigit() or not head.isdigit():
                raise RepcheckError(f"head {item!r} is not LAYER.HEAD, e.g. 12.3", param="ablate_heads")
            heads.append((int(layer), int(head)))
    else:
        heads = [(int(a), int(b)) for a, b in spec]
    if not heads:
        raise RepcheckError("no head to ablate; give LAYER.HEAD[,LAYER.HEAD...]", param="ablate_heads")
    return sorted(set(heads))


def hookable(model: Backend, what: str) -> HookableBackend:
    """``model`` as a HookableBackend, or a one-line refusal naming what needed it."""
    if not isinstance(model, HookableBackend):
        raise RepcheckError(
            f"{what} needs the model's own heads and neurons: the {model.kind} backend does not expose them "
            "(use the hf backend)",
            param="ablate_heads" if what == "ablating heads" else None,
        )
    return model


@dataclass(frozen=True)
class Ablation:
    """Heads and neurons to replace while a measurement runs (0, or their means)."""

    heads: tuple[tuple[int, int], ...] = ()
    neurons: tuple[tuple[int, int], ...] = ()
    head_means: dict[int, Any] | None = field(default=None, compare=False)
    neuron_means: dict[int, Any] | None = field(default=None, compare=False)

    @classmethod
    def of_heads(cls, spec: str | Sequence[Sequence[int]]) -> Ablation:
        """Zero these heads (``"12.3,14.1"``)."""
        return cls(heads=tuple(parse_heads(spec)))

    @contextlib.contextmanager
    def applied(self, model: Backend) -> Iterator[None]:
        """Inside the block, ``model`` runs with these units replaced (every hook removed after)."""
        with hookable(model, "ablating heads").ablated(self.heads, self.neurons, self.head_means, self.neuron_means):
            yield

    def to_setting(self) -> dict[str, Any]:
        """What a result records (``settings``) about this ablation."""
        out: dict[str, Any] = {}
        if self.heads:
            out["ablate_heads"] = [list(h) for h in self.heads]
        if self.neurons:
            out["ablate_neurons"] = [list(n) for n in self.neurons]
        return out
