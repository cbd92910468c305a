"""``BaseBackend``: the part every backend shares, so that the checks every backend must make
live in one place: valid requests (``ScoreRequest`` checks itself), probabilities that are
probabilities after scoring, decoding keys before generating, and capabilities read from the
registry. ``EngineBackend`` adds what the two in-process engines (vLLM, llama.cpp) share.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import RepcheckError
from .base import ContextWindow, check_scored, model_block
from .registry import check_supported, entry

if TYPE_CHECKING:  # pragma: no cover
    from ..progress import ProgressCallback
    from .base import Capabilities, GenerationRequest, LogitsRow, RawGeneration, Scored, ScoreRequest


def import_engine(module: str, backend: str, how: str):
    """Import an engine's package, or say in one line how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise RepcheckError(f"the {backend} backend needs {how} [{err.name or err}]", param="backend") from None


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

    def sent_params(self, setting) -> dict[str, Any] | None:
        """The sampling values this backend hands its engine for ``setting``, every key
        explicit, where they are not simply the setting's (servers and vLLM fill what a request
        leaves out from the checkpoint's defaults); None where the setting is applied as is."""
        return None

    def score(self, request: ScoreRequest, progress: ProgressCallback | None = None) -> list[Scored | None]:
        """One ``Scored`` per sequence of ``request``, each checked to hold probabilities (None
        for a sequence this backend cannot be given, where ``request.logp_only`` allows it)."""
        out = self._score(request, progress)
        if not request.logp_only and any(s is None for s in out):  # pragma: no cover - a backend bug
            raise AssertionError(f"{self.kind} left sequences unscored")
        return [None if s is None else check_scored(s, self.described, request.logp_only) for s in out]

    @abc.abstractmethod
    def _score(self, request: ScoreRequest, progress: ProgressCallback | None) -> list[Scored | None]: ...

    def logits(self, sequences: Sequence[Sequence[int]], *, batch_size: int = 8) -> Iterator[list[LogitsRow]]:
        raise RepcheckError(
            f"{self.described} returns log-probabilities, not full next-token distributions: the probe under "
            "decoding settings (compare --probe) needs a backend that has them (hf, llamacpp)"
        )

    def generate(self, request: GenerationRequest, progress: ProgressCallback | None = None) -> list[RawGeneration]:
        """``_generate``, checked; with ``request.stop_on_loop``, every continuation the
        backend did not stop itself is cut where the guard confirms its loop (the same tokens
        an early stop gives; ``extra["cut"]`` counts what was generated after it)."""
        check_supported(self, request.setting)
        out = self._generate(request, progress)
        if len(out) != len(request.rows()):  # pragma: no cover - a backend bug, not the user's
            raise AssertionError(f"{self.kind} returned {len(out)} continuations for {len(request.rows())}")
        if request.stop_on_loop is not None:
            from ..guard.detector import cut_at_loop

            out = [g if g.finish == "loop" else cut_at_loop(g, request.stop_on_loop) for g in out]
        return out

    @abc.abstractmethod
    def _generate(self, request: GenerationRequest, progress: ProgressCallback | None) -> list[RawGeneration]: ...

    @abc.abstractmethod
    def info(self) -> dict[str, Any]: ...

    @abc.abstractmethod
    def close(self) -> None:
        """Free the model's memory (the object is unusable afterwards)."""


@dataclass(eq=False)
class EngineBackend(BaseBackend):
    """A model inside an engine object (vLLM's ``LLM``, llama.cpp's ``Llama``) with the
    checkpoint's Hugging Face tokenizer: what a report says of it, and its stop ids."""

    llm: Any
    tokenizer: Any
    spec: str
    name: str
    source: str
    dtype: str
    device: str
    window: ContextWindow
    stop_ids: list[int]
    sha256: str | None = None
    architecture: str | None = None
    engine_options: dict[str, Any] = field(default_factory=dict)
    engine_version: str | None = None

    engine: ClassVar[str]  # its key in a report's versions ("vllm", "llama_cpp_python")

    def info(self) -> dict[str, Any]:
        return model_block(
            self,
            source=self.source,
            sha256=self.sha256,
            cls=self.architecture,
            engine=dict(self.engine_options),
            **self.extra_info(),
        )

    def extra_info(self) -> dict[str, Any]:
        """What this engine adds to the ``model`` block."""
        return {}

    def versions(self) -> dict[str, str]:
        return {self.engine: self.engine_version} if self.engine_version else {}
