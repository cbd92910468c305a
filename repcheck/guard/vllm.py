"""The loop guard inside vLLM: a logits processor (vLLM's v1 ``LogitsProcessor`` interface)
that forces the end-of-sequence token on a request as soon as its loop is confirmed.

vLLM registers logits processors when the engine starts (``LLM(logits_processors=[...])``,
as the vllm backend does); a request opts in through its sampling parameters' ``extra_args``
(``{"repcheck_guard": {"config": GuardConfig.to_dict(), "eos": id}}``), so requests without it
cost one dictionary lookup. vLLM 0.32 has its own ``repetition_detection`` (n-gram patterns
repeated ``min_count`` times, checked in the scheduler); docs/guard.md compares the two.
"""

from __future__ import annotations

from typing import Any

from .detector import GuardConfig, LoopGuard

EXTRA_ARG = "repcheck_guard"


def extra_args(config: GuardConfig, eos: int) -> dict[str, Any]:
    """What a request's ``SamplingParams(extra_args=...)`` carries to turn the guard on."""
    return {EXTRA_ARG: {"config": config.to_dict(), "eos": int(eos)}}


def logits_processor_class():
    """The processor class (built on first use: importing vLLM is the caller's choice)."""
    import torch
    from vllm.v1.sample.logits_processor import LogitsProcessor
    from vllm.v1.sample.logits_processor.builtin import process_dict_updates

    class LoopGuardLogitsProcessor(LogitsProcessor):
        """Per request in the batch: a ``LoopGuard`` fed its output tokens; once the loop is
        confirmed, only the EOS token can be sampled, which ends the request."""

        def __init__(self, vllm_config, device: torch.device, is_pin_memory: bool):
            self.entries: dict[int, list] = {}  # batch index -> [guard, output ids (vLLM's list), eos]

        def is_argmax_invariant(self) -> bool:
            return False  # forcing EOS changes the argmax

        @staticmethod
        def _new(params, prompt_ids, output_ids):
            args = (getattr(params, "extra_args", None) or {}).get(EXTRA_ARG)
            if not args:
                return None
            return [LoopGuard(GuardConfig(**args["config"])), output_ids, int(args["eos"])]

        def update_state(self, batch_update) -> None:
            process_dict_updates(self.entries, batch_update, self._new)
            for guard, ids, _eos in self.entries.values():
                while guard.found is None and guard.seen < len(ids):
                    guard.feed(ids[guard.seen])

        def apply(self, logits: torch.Tensor) -> torch.Tensor:
            for index, (guard, _ids, eos) in self.entries.items():
                if guard.found is not None:
                    logits[index] = float("-inf")
                    logits[index, eos] = 0.0
            return logits

    return LoopGuardLogitsProcessor


__all__ = ["EXTRA_ARG", "extra_args", "logits_processor_class"]
