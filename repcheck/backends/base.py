"""The Backend protocol: what repcheck needs from wherever a model runs.

The probe, compare, diff and the gate only ever call these methods, so they run unchanged on
any backend. Token ids are the shared currency: every backend exposes a Hugging Face
tokenizer, and sequences go in as lists of ids.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ..decoding import DecodingSetting
    from ..progress import ProgressCallback


@dataclass(frozen=True)
class ContextWindow:
    """How far back the model can see.

    ``max_tokens``: positions the model supports (None: unknown). ``sliding``: the span of a
    sliding-window attention layer, if the model has such layers; ``sliding_layers`` of its
    ``layers`` use it (Mistral: all; Gemma 2/3: some, the others attend to everything).
    """

    max_tokens: int | None
    sliding: int | None = None
    sliding_layers: int = 0
    layers: int = 0

    @property
    def all_sliding(self) -> bool:
        return self.sliding is not None and self.layers > 0 and self.sliding_layers >= self.layers

    @property
    def attended(self) -> int | None:
        """The longest input in which every position attends to every earlier one."""
        if self.all_sliding:
            return self.sliding if self.max_tokens is None else min(self.sliding, self.max_tokens)
        return self.max_tokens

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_tokens": self.max_tokens,
            "sliding_window": self.sliding,
            "sliding_layers": self.sliding_layers,
            "layers": self.layers,
        }


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do beyond scoring sequences."""

    logits: bool = False  # full next-token distributions (the probe under decoding settings)
    generate: bool = False
    setting_keys: frozenset[str] = frozenset()  # decoding keys it can apply while generating
    hooks: bool = False  # forward hooks on heads and neurons (explain, --ablate-heads)


@dataclass
class Scored:
    """One sequence scored from position ``start`` on: arrays of ``len(ids) - start``.

    p[i] = P(ids[start + i] | ids[:start + i]); pmax[i] = max_v P(v | same context);
    argmax[i] = the (first) token reaching pmax; logp[i] = log p[i] (kept apart so that a
    tiny probability does not underflow to log 0).
    """

    p: Any  # numpy float64 [count]
    pmax: Any  # numpy float64 [count]
    argmax: Any  # numpy int64 [count]
    logp: Any  # numpy float64 [count]


@dataclass
class RawGeneration:
    """One continuation as a backend returns it (token ids, without the stop token)."""

    prompt_index: int
    sample: int
    token_ids: list[int]
    finished: bool  # stopped at a stop token (else at max_new_tokens)
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    kind: str  # "hf", "vllm", "openai", "llamacpp"
    spec: str  # what the user asked for
    name: str  # readable name
    dtype: str
    device: str
    tokenizer: Any  # a Hugging Face tokenizer
    window: ContextWindow
    capabilities: Capabilities

    @property
    def context_length(self) -> int | None: ...

    def info(self) -> dict[str, Any]:
        """The ``model`` block of a report."""
        ...

    def versions(self) -> dict[str, str]:
        """Versions of the engine, for provenance (merged into the document's ``versions``)."""
        ...

    def score(
        self,
        sequences: Sequence[Sequence[int]],
        starts: Sequence[int],
        *,
        batch_size: int = 8,
        progress: ProgressCallback | None = None,
    ) -> list[Scored]: ...

    def logits(
        self, sequences: Sequence[Sequence[int]], *, batch_size: int = 8
    ) -> Iterator[list[tuple[int, torch.Tensor]]]:
        """Batches of (index, logits [len, V]) for backends with ``capabilities.logits``."""
        ...

    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        setting: DecodingSetting,
        *,
        max_new_tokens: int,
        samples: int = 1,
        seed: int = 0,
        batch_size: int = 16,
        progress: ProgressCallback | None = None,
    ) -> list[RawGeneration]: ...

    def close(self) -> None:
        """Free the model's memory (the object is unusable afterwards)."""
        ...


#: a test string every engine with its own tokenizer must tokenize as the Hugging Face one does
PROBE_TEXT = "The committee approved the new budget. 北京是中国的首都, 123!"


def require_same_tokens(mine: Sequence[int], theirs: Sequence[int], engine: str) -> None:
    """Token ids are the currency: refuse an engine that tokenizes ``PROBE_TEXT`` differently
    from the local Hugging Face tokenizer (``mine``)."""
    from ..errors import RepcheckError

    if list(theirs) == list(mine):
        return
    first = next((i for i, (x, y) in enumerate(zip(mine, theirs)) if x != y), min(len(mine), len(theirs)))
    raise RepcheckError(
        f"the tokenizer differs from the {engine}'s: a test string gives {len(mine)} ids here and "
        f"{len(theirs)} there{f' (first difference at {first})' if theirs else ''}; "
        "give the model's own tokenizer with --tokenizer",
        param="tokenizer",
    )


def model_block(backend: Any, *, source: str, sha256: str | None, cls: str | None, **extra: Any) -> dict[str, Any]:
    """The ``model`` block of a report, the same keys for every backend (docs/output.md)."""
    return {
        "spec": backend.spec,
        "name": backend.name,
        "source": source,
        "backend": backend.kind,
        "sha256": sha256,
        "context_length": backend.window.max_tokens,
        "window": backend.window.to_dict(),
        "class": cls,
        **extra,
    }


def require_context(starts: Sequence[int]) -> None:
    """Position 0 has no context, so nothing predicts it: scoring starts at 1 or later."""
    from ..errors import RepcheckError

    if any(start < 1 for start in starts):
        raise RepcheckError("scoring needs at least one token of context (start >= 1)")
