"""``BaseBackend``: the part every backend shares, so that the checks every backend must make
live in one place: context before scoring, probabilities that are probabilities after it,
decoding keys before generating, and capabilities read from the registry.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import RepcheckError, require_int
from .base import (
    Capabilities,
    ContextWindow,
    GenerationRequest,
    LogitsRow,
    RawGeneration,
    Scored,
    check_scored,
    require_context,
)
from .registry import check_supported, entry

if TYPE_CHECKING:  # pragma: no cover
    from ..progress import ProgressCallback


class BaseBackend(abc.ABC):
    """The part every backend shares. A subclass sets ``kind`` (its registry name) and
    implements ``_score`` and ``_generate`` (and ``logits`` where it has full distributions);
    the public methods add the checks every backend must make."""

    kind: ClassVar[str]
    window: ContextWindow

    @property
    def capabilities(self) -> Capabilities:
        return entry(self.kind).capabilities

    @property
    def context_length(self) -> int | None:
        return self.window.max_tokens

    def versions(self) -> dict[str, str]:
        return {}

    @property
    def described(self) -> str:
        return f"the {self.kind} backend"

    def score(
        self,
        sequences: Sequence[Sequence[int]],
        starts: Sequence[int],
        *,
        batch_size: int = 8,
        progress: ProgressCallback | None = None,
    ) -> list[Scored]:
        require_int("batch_size", batch_size, 1)
        if len(starts) != len(sequences):
            raise RepcheckError(f"{len(starts)} starts for {len(sequences)} sequences")
        require_context(starts)
        for ids, start in zip(sequences, starts):
            if start > len(ids):
                raise RepcheckError(f"scoring start {start} lies beyond a sequence of {len(ids)} tokens")
        out = self._score(sequences, starts, batch_size=batch_size, progress=progress)
        return [check_scored(s, self.described) for s in out]

    @abc.abstractmethod
    def _score(
        self,
        sequences: Sequence[Sequence[int]],
        starts: Sequence[int],
        *,
        batch_size: int,
        progress: ProgressCallback | None,
    ) -> list[Scored]: ...

    def logits(self, sequences: Sequence[Sequence[int]], *, batch_size: int = 8) -> Iterator[list[LogitsRow]]:
        raise RepcheckError(
            f"{self.described} returns log-probabilities, not full next-token distributions: the probe under "
            "decoding settings (compare --probe) needs a backend that has them (hf, llamacpp)"
        )

    def generate(self, request: GenerationRequest, progress: ProgressCallback | None = None) -> list[RawGeneration]:
        check_supported(self, request.setting)
        out = self._generate(request, progress)
        if len(out) != len(request.rows()):  # pragma: no cover - a backend bug, not the user's
            raise AssertionError(f"{self.kind} returned {len(out)} continuations for {len(request.rows())}")
        return out

    @abc.abstractmethod
    def _generate(self, request: GenerationRequest, progress: ProgressCallback | None) -> list[RawGeneration]: ...

    @abc.abstractmethod
    def info(self) -> dict[str, Any]: ...

    @abc.abstractmethod
    def close(self) -> None:
        """Free the model's memory (the object is unusable afterwards)."""
