"""What repcheck needs from wherever a model runs: the ``Backend`` protocol and its records.

The probe, compare, diff, the gate and training's evaluation only ever call the methods of
``Backend``, so they run unchanged on any engine. Token ids are the shared currency: every
backend exposes a Hugging Face tokenizer, and sequences go in as lists of ids. What crosses
the protocol is a typed record:

* ``ScoreRequest`` in, one ``Scored`` per sequence out (p, pmax, argmax, log p per
  position), from ``score``;
* ``LogitsRow``: one sequence's full next-token logits, from ``logits`` (backends that have
  full distributions: the probe under decoding settings);
* ``GenerationRequest`` in, ``RawGeneration`` out, from ``generate``.

``HookableBackend`` is the second, smaller protocol: a backend whose heads and MLP neurons
can be read and replaced (``repcheck explain``, ``--ablate-heads``). The features use only
what it names, never the wrapped model.

``common.BaseBackend`` is the shared implementation a backend subclasses.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol, runtime_checkable

import numpy as np

from ..errors import RepcheckError

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
    """What a backend can do beyond scoring sequences (known before it loads: the registry)."""

    full_distributions: bool = False  # ``logits()``: every next-token distribution (compare --probe)
    generate: bool = False
    setting_keys: frozenset[str] = frozenset()  # decoding keys it can apply while generating


# ---- records crossing the protocol -----------------------------------------------------------
@dataclass
class Scored:
    """One sequence scored from position ``start`` on: arrays of ``count = len(ids) - start``.

    p[i] = P(ids[start + i] | ids[:start + i]); pmax[i] = max_v P(v | same context);
    argmax[i] = the (first) token reaching pmax, or -1 where the backend cannot say which token
    that is (a server naming tokens by a text several tokens share); logp[i] = log p[i] (kept
    apart so that a tiny probability does not underflow to log 0).
    """

    p: np.ndarray  # float64 [count]
    pmax: np.ndarray  # float64 [count]
    argmax: np.ndarray  # int64 [count]
    logp: np.ndarray  # float64 [count]

    @classmethod
    def from_logprobs(cls, logp, lmax, argmax) -> Scored:
        """From log p and log pmax (any array-like, float64 afterwards)."""
        logp = np.asarray(logp, dtype=np.float64)
        lmax = np.asarray(lmax, dtype=np.float64)
        return cls(np.exp(logp), np.exp(lmax), np.asarray(argmax, dtype=np.int64), logp)


#: log-probabilities this far above 0 are rounding, beyond it they are not probabilities
LOGPROB_SLACK = 1e-4


def check_scored(scored: Scored, where: str, logp_only: bool = False) -> Scored:
    """Refuse numbers that are not probabilities (NaN, or above 1) with one line naming the
    source: a result is never computed from them. ``logp_only``: pmax may be NaN (not asked
    for)."""
    bad = np.isnan(scored.logp) | (scored.logp > LOGPROB_SLACK)
    bad |= (False if logp_only else np.isnan(scored.pmax)) | (scored.pmax > math.exp(LOGPROB_SLACK))
    if bad.any():
        i = int(np.argmax(bad))
        raise RepcheckError(
            f"{where} returned numbers that are not probabilities (log p = {float(scored.logp[i]):g}, "
            f"pmax = {float(scored.pmax[i]):g} at scored position {i})"
        )
    return scored


@dataclass(frozen=True)
class ScoreRequest:
    """Score ``sequences[i][starts[i]:]`` of every sequence: one ``Scored`` each, in order.

    ``starts[i]`` >= 1 (position 0 has no context) and at most the sequence's length;
    ``batch_size``: sequences per forward pass, where the engine batches (results never depend
    on it). ``logp_only``: only log p is wanted (a continuation's log-probability), so a
    backend may leave pmax NaN and argmax -1 where they cost more, and answers None for a
    sequence it cannot be given (a text-only server, ids no text tokenizes back into) rather
    than failing the run. Checked when made, so every backend gets a valid request.
    """

    sequences: Sequence[Sequence[int]]
    starts: Sequence[int]
    batch_size: int = 8
    logp_only: bool = False

    def __post_init__(self) -> None:
        from ..errors import require_int

        require_int("batch_size", self.batch_size, 1)
        if len(self.starts) != len(self.sequences):
            raise RepcheckError(f"{len(self.starts)} starts for {len(self.sequences)} sequences")
        require_context(self.starts)
        for ids, start in zip(self.sequences, self.starts):
            if start > len(ids):
                raise RepcheckError(f"scoring start {start} lies beyond a sequence of {len(ids)} tokens")

    def __len__(self) -> int:
        return len(self.sequences)


class LogitsRow(NamedTuple):
    """One sequence's full next-token logits, padding removed (``Backend.logits``).

    ``index``: the sequence's position in the request; ``logits``: [T, V] floats, row t
    predicts token t + 1; ``input_ids``: [T] the sequence itself (torch.long).
    """

    index: int
    logits: torch.Tensor
    input_ids: torch.Tensor


#: budgets from this many new tokens on are long generations: progress counts tokens, not
#: continuations
LONG_GENERATION = 256


@dataclass(frozen=True)
class GenerationRequest:
    """Continue every prompt (token ids, already rendered) under one decoding setting.

    ``max_new_tokens``: one budget for every prompt, or one per prompt. ``samples``
    continuations per prompt when the setting samples, one otherwise; each is seeded by (seed,
    prompt index, sample), so the text does not depend on ``batch_size`` (continuations per
    engine call, where the engine batches) nor on which prompts share a batch.

    ``sources``: the prompts before rendering (``repcheck.prompts.Prompt``, one per prompt),
    for a backend that renders them itself (a chat-only API takes the messages, not ids).
    ``stop_on_loop``: a ``repcheck.guard.GuardConfig``: end a continuation as soon as a
    verbatim loop is confirmed (``finish`` "loop", the loop in ``extra["loop"]``), None: never.
    """

    prompts: Sequence[Sequence[int]]
    setting: DecodingSetting
    max_new_tokens: int | Sequence[int]
    samples: int = 1
    seed: int = 0
    batch_size: int = 16
    sources: Sequence[Any] | None = None
    stop_on_loop: Any = None

    def __post_init__(self) -> None:
        from ..errors import require_int

        if not isinstance(self.max_new_tokens, int) and len(self.max_new_tokens) != len(self.prompts):
            raise RepcheckError(f"{len(self.max_new_tokens)} budgets for {len(self.prompts)} prompts")
        for budget in [self.max_new_tokens] if isinstance(self.max_new_tokens, int) else self.max_new_tokens:
            require_int("max_new_tokens", budget, 1)
        require_int("samples", self.samples, 1)
        require_int("batch_size", self.batch_size, 1)
        if self.sources is not None and len(self.sources) != len(self.prompts):
            raise RepcheckError(f"{len(self.sources)} sources for {len(self.prompts)} prompts")
        if self.stop_on_loop is not None:
            self.stop_on_loop.check_reachable(
                max(self.budget(i) for i in range(len(self.prompts))) if self.prompts else 1
            )

    def budget(self, prompt_index: int) -> int:
        """New tokens allowed for this prompt's continuations."""
        if isinstance(self.max_new_tokens, int):
            return self.max_new_tokens
        return int(self.max_new_tokens[prompt_index])

    @property
    def longest(self) -> int:
        """The largest budget."""
        return max(self.budget(i) for i in range(len(self.prompts))) if self.prompts else 0

    @property
    def per_prompt(self) -> int:
        return self.samples if self.setting.do_sample else 1

    def rows(self) -> list[tuple[int, int]]:
        """(prompt index, sample) of every continuation, in output order."""
        return [(i, s) for i in range(len(self.prompts)) for s in range(self.per_prompt)]


Finish = Literal["eos", "length", "loop"]


@dataclass
class RawGeneration:
    """One continuation as a backend returns it: token ids without the stop token."""

    prompt_index: int
    sample: int
    token_ids: list[int]
    finish: Finish  # "eos": a stop token ended it; "length": max_new_tokens did; "loop": the loop guard did
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.finish == "eos"


# ---- the protocols ---------------------------------------------------------------------------
@runtime_checkable
class Backend(Protocol):
    """A model somewhere, seen through token ids."""

    kind: str  # the registry name: "hf", "vllm", "openai", "llamacpp"
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
        """The ``model`` block of a report (``model_block``)."""
        ...

    def versions(self) -> dict[str, str]:
        """Versions of the engine, for provenance (merged into the document's ``versions``)."""
        ...

    def score(self, request: ScoreRequest, progress: ProgressCallback | None = None) -> list[Scored | None]:
        """One ``Scored`` per sequence of the request, in order (None only where
        ``request.logp_only`` allows it)."""
        ...

    def logits(self, sequences: Sequence[Sequence[int]], *, batch_size: int = 8) -> Iterator[list[LogitsRow]]:
        """Batches of ``LogitsRow`` (``capabilities.full_distributions`` only)."""
        ...

    def generate(self, request: GenerationRequest, progress: ProgressCallback | None = None) -> list[RawGeneration]:
        """One ``RawGeneration`` per ``request.rows()``, in that order."""
        ...

    def sent_params(self, setting: DecodingSetting) -> dict[str, Any] | None:
        """The sampling values sent to the engine for ``setting`` (reported), or None."""
        ...

    def close(self) -> None:
        """Free the model's memory (the object is unusable afterwards)."""
        ...


@dataclass(frozen=True)
class Units:
    """How many heads and MLP neurons a model has (``HookableBackend.units``)."""

    layers: int
    heads: int  # per layer
    head_dim: int
    neurons: int  # per layer


class TraceBatch(NamedTuple):
    """What one eager forward pass over a padded batch shows (``HookableBackend.traced``).

    ``indices``: the sequences of the request in this batch; ``offsets[b]``: where row b's
    real tokens start (left padding); ``attentions[layer]``: [B, heads, T, T] attention
    weights; ``heads[layer]``: [B, T, heads * head_dim] the heads' outputs side by side (the
    input of the attention output projection); ``neurons[layer]``: [B, T, neurons] the MLP
    activations (the input of its down projection).
    """

    indices: list[int]
    offsets: list[int]
    attentions: Sequence[torch.Tensor]
    heads: dict[int, torch.Tensor]
    neurons: dict[int, torch.Tensor]


@runtime_checkable
class HookableBackend(Backend, Protocol):
    """A backend whose heads and neurons can be read and replaced: what ``explain`` and
    ``--ablate-heads`` use. A fifth backend that can offer these three gets both."""

    def units(self) -> Units:
        """Layers, heads per layer, head width and neurons per layer."""
        ...

    def ablated(
        self,
        heads: Sequence[tuple[int, int]] = (),
        neurons: Sequence[tuple[int, int]] = (),
        head_means: dict[int, torch.Tensor] | None = None,
        neuron_means: dict[int, torch.Tensor] | None = None,
    ) -> contextlib.AbstractContextManager[None]:
        """Inside the block, each (layer, head) output and (layer, neuron) activation is 0,
        or its mean from ``head_means`` / ``neuron_means`` (per layer: [heads * head_dim] /
        [neurons])."""
        ...

    def traced(self, sequences: Sequence[Sequence[int]], *, batch_size: int = 4) -> Iterator[TraceBatch]:
        """Eager forward passes over ``sequences`` with attention weights, head outputs and
        neuron activations recorded."""
        ...


def require_context(starts: Sequence[int]) -> None:
    """Position 0 has no context, so nothing predicts it: scoring starts at 1 or later."""
    if any(int(start) < 1 for start in starts):
        raise RepcheckError("scoring needs at least one token of context (start >= 1)", param="start")


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


#: test strings every engine with its own tokenizer must tokenize as the Hugging Face one does:
#: plain words, CJK, digits, leading and repeated spaces, punctuation, a newline
PROBE_TEXTS = (
    "The committee approved the new budget. 北京是中国的首都, 123!",
    " leading space and  two spaces, 3.14159 and 2026-11-29",
    "def f(x):\n    return {'a': [1, 2]}  # code",
    "Ünïcödé: naïve café — «quotes» and emoji 🙂",
)
PROBE_TEXT = PROBE_TEXTS[0]


def require_same_tokens(mine: Sequence[int], theirs: Sequence[int], engine: str, text: str = PROBE_TEXT) -> None:
    """Token ids are the currency: refuse an engine that tokenizes a test string differently
    from the local Hugging Face tokenizer (``mine``)."""
    if list(theirs) == list(mine):
        return
    first = next((i for i, (x, y) in enumerate(zip(mine, theirs)) if x != y), min(len(mine), len(theirs)))
    raise RepcheckError(
        f"the tokenizer differs from the {engine}'s: the test string {text[:40]!r} gives {len(mine)} ids here and "
        f"{len(theirs)} there{f' (first difference at {first})' if theirs else ''}; "
        "give the model's own tokenizer with --tokenizer",
        param="tokenizer",
    )


def finite_or_none(value: Any) -> float | None:
    """A JSON number from an engine as a finite float, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None
