"""SGLang's native API as a backend (``--backend sglang``): ``POST /generate`` beside ``/v1``.

Written from SGLang's documented request and response formats (docs/basic_usage/
sampling_params.md, ``io_struct.GenerateReqInput``, ``SamplingParams``) and tested against
responses built to that format; no SGLang server ran here (it needs a GPU).

* The probe: one request per sequence with ``input_ids``, ``return_logprob``,
  ``logprob_start_len=0`` and ``top_logprobs_num=1``; ``meta_info.input_token_logprobs``
  holds ``[logprob, token_id, text]`` for every prompt token (None for the first) and
  ``meta_info.input_top_logprobs`` the rank-1 token at each position: p, pmax and the argmax
  exactly, by token id.
* Generation: token-id prompts, every sampling key sent (SGLang fills the rest from the
  checkpoint's generation_config, as vLLM does), ``stop_token_ids``, ``sampling_seed`` per
  continuation; ``output_ids`` are the continuation, the stop token removed.
* SGLang's repetition penalty counts generated tokens only (its ``BatchedRepetitionPenalizer``),
  not the prompt as transformers' does: a setting with ``repetition_penalty`` is refused here
  rather than reported under the same name with another meaning.
* The tokenizer check: the ids SGLang reports for the test strings' prompt tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..errors import RepcheckError
from ..progress import ProgressCallback
from .base import GenerationRequest, RawGeneration, Scored, ScoreRequest
from .http_backend import HTTPBackend, Identity, model_list, served_loader
from .http_client import Answer
from .registry import SGLANG_SETTING_KEYS
from .served import NEUTRAL


@dataclass(eq=False)
class SGLangBackend(HTTPBackend):
    """A model behind SGLang's native ``/generate``."""

    kind: ClassVar[str] = "sglang"

    def sent_params(self, setting) -> dict[str, Any]:
        """Every key SGLang has, neutral where the setting does not set it (temperature 0 is
        greedy there); the repetition penalty always 1."""
        params = {k: setting.params.get(k, NEUTRAL[k]) for k in sorted(SGLANG_SETTING_KEYS)}
        params["repetition_penalty"] = 1.0
        if not setting.do_sample:
            params["temperature"] = 0.0
        return {k: int(v) if k == "top_k" else float(v) for k, v in params.items()}

    def _post(self, body: dict[str, Any]) -> Answer:
        return self.client.post_root("/generate", body)

    def _greedy_one(self) -> dict[str, Any]:
        """Sampling parameters for a request that reads logprobs: one greedy token, every key
        neutral."""
        from ..decoding import parse_setting

        return {**self.sent_params(parse_setting("greedy")), "max_new_tokens": 1}

    def server_tokens(self, text: str) -> list[int]:
        answer = self._post(
            {
                "text": text,
                "sampling_params": self._greedy_one(),
                "return_logprob": True,
                "logprob_start_len": 0,
            }
        )
        entries = answer.get("meta_info.input_token_logprobs", list)
        return [
            self._entry(answer, f"meta_info.input_token_logprobs.{i}", first=i == 0)[1] for i in range(len(entries))
        ]

    @staticmethod
    def _entry(answer: Answer, path: str, first: bool = False) -> tuple[float | None, int]:
        """(logprob, token id) of one ``[logprob, token_id, text]`` entry; the first prompt
        token's logprob is None (nothing predicts it)."""
        entry = answer.get(path, list)
        if len(entry) < 2:
            raise answer.error(path, f"is {entry!r}, not [logprob, token_id, text]")
        token = answer.get(f"{path}.1", int)
        if first and entry[0] is None:
            return None, token
        return answer.number(f"{path}.0"), token

    # ---- the probe -------------------------------------------------------------------------------
    def _score(self, request: ScoreRequest, progress: ProgressCallback | None) -> list[Scored]:
        def one(item):
            ids, start = list(item[0]), item[1]
            answer = self._post(
                {
                    "input_ids": ids,
                    "sampling_params": self._greedy_one(),
                    "return_logprob": True,
                    "logprob_start_len": 0,
                    "top_logprobs_num": 1,
                }
            )
            entries = answer.get("meta_info.input_token_logprobs", list)
            if len(entries) != len(ids):
                raise answer.error("meta_info.input_token_logprobs", f"covers {len(entries)} tokens, not {len(ids)}")
            logp, lmax = np.empty(len(ids) - start), np.empty(len(ids) - start)
            arg = np.empty(len(ids) - start, dtype=np.int64)
            for i, t in enumerate(range(start, len(ids))):
                actual, token = self._entry(answer, f"meta_info.input_token_logprobs.{t}")
                if token != ids[t]:
                    raise answer.error(f"meta_info.input_token_logprobs.{t}", f"names token {token}, not {ids[t]}")
                best, best_id = self._entry(answer, f"meta_info.input_top_logprobs.{t}.0")
                logp[i], lmax[i] = actual, max(best, actual)
                arg[i] = best_id if best >= actual else ids[t]
            return Scored.from_logprobs(logp, lmax, arg)

        return self.run_all(one, list(zip(request.sequences, request.starts, strict=True)), progress, "scoring")

    # ---- generation ------------------------------------------------------------------------------
    def _generate(self, request: GenerationRequest, progress: ProgressCallback | None) -> list[RawGeneration]:
        """One request per continuation, seeded by seed + prompt index + sample."""
        params = {**self.sent_params(request.setting), "stop_token_ids": list(self.stop_ids),
                  "skip_special_tokens": False}  # fmt: skip

        def one(row):
            index, sample = row
            sampling = {**params, "max_new_tokens": request.budget(index)}
            if request.setting.do_sample:
                sampling["sampling_seed"] = request.seed + index + sample * 100_003
            answer = self._post({"input_ids": list(request.prompts[index]), "sampling_params": sampling})
            tokens = answer.get("output_ids", list)
            if not all(isinstance(t, int) and not isinstance(t, bool) for t in tokens):
                raise answer.error("output_ids", "holds something that is not a token id")
            stopped = answer.get("meta_info.finish_reason.type", str) == "stop"
            return RawGeneration(index, sample, self.strip_stop(tokens, stopped), "eos" if stopped else "length")

        return self.run_all(one, request.rows(), progress, f"generating: {request.setting.name}")


def _identify(spec: str):
    def identify(client) -> Identity:
        info = client.get_root("/get_model_info")
        if info.get("is_generation", bool, optional=True) is False:
            raise RepcheckError(f"{client.server.public_root('')} serves an embedding model, not a causal LM")
        listing = model_list(client)
        version = (client.peek_root("/get_server_info") or {}).get("version")  # older servers: none
        return Identity(
            names=[info.get("model_path", str), *listing],
            tokenizer_hint=info.get("tokenizer_path", str, optional=True),
            max_tokens=listing.get(spec, {}).get("max_model_len"),
            versions={"server_version": version} if isinstance(version, str) and version else {},
        )

    return identify


load_sglang = served_loader(
    SGLangBackend,
    "sglang",
    _identify,
    """Connect to an SGLang server (``base_url`` e.g. ``http://127.0.0.1:30000/v1``; its native API
    lives beside ``/v1``) serving ``spec``.""",
)


__all__ = ["SGLangBackend", "load_sglang"]
