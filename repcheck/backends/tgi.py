"""Hugging Face Text Generation Inference as a backend (``--backend tgi``): its native
``POST /generate`` beside ``/v1``.

Written from TGI's documented API (its OpenAPI schema: ``GenerateRequest``,
``GenerateParameters``, ``Details``, ``PrefillToken``; ``/info``, ``/tokenize``) and tested
against responses built to that format; no TGI server ran here (it needs a GPU).

* TGI takes text, not token ids: every prompt is sent as the text the server tokenizes back
  into exactly its ids (checked through ``/tokenize``; a sequence no text gives back is
  refused).
* The probe: ``decoder_input_details`` gives each prompt token's logprob (p) but no
  alternatives. pmax and the argmax come from one more request per scored position, the
  greedy next token after that prefix with its logprob (``details.tokens[0]``, the prefix
  checked in ``details.prefill``): exact, and O(n) requests per sequence.
* Generation: ``do_sample``, ``seed`` per continuation, ``repetition_penalty`` always sent (1
  where the setting has none). TGI refuses the neutral values of ``top_p`` (1) and ``top_k``
  (<= 0) and ``temperature`` 0, so those are sent only when the setting sets them; unsent,
  TGI applies no warping. Its frequency penalty counts prompt tokens too (repcheck's counts
  generated tokens), so a setting with ``frequency_penalty`` is refused here.
* ``details.tokens`` gives the generated ids, the stop token removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..progress import ProgressCallback
from .base import GenerationRequest, RawGeneration, Scored, ScoreRequest
from .http_backend import HTTPBackend, Identity, Unsendable, served_loader
from .http_client import Answer  # noqa: F401 - the type of every server answer


@dataclass(eq=False)
class TGIBackend(HTTPBackend):
    """A model behind TGI's ``/generate``."""

    next_tokens: dict[tuple[int, ...], tuple[float, int]] = field(default_factory=dict)  # prefix -> (log pmax, argmax)

    kind: ClassVar[str] = "tgi"

    def sent_params(self, setting) -> dict[str, Any]:
        """What every request carries: sampling or not, the repetition penalty (1 where the
        setting has none), and the setting's own warpers."""
        params: dict[str, Any] = {"do_sample": bool(setting.do_sample)}
        params["repetition_penalty"] = float(setting.params.get("repetition_penalty", 1.0))
        for key in ("temperature", "top_k", "top_p"):
            if key in setting.params and setting.do_sample:
                params[key] = int(setting.params[key]) if key == "top_k" else float(setting.params[key])
        return params

    def server_tokens(self, text: str) -> list[int]:
        answer = self.client.post_root("/tokenize", {"inputs": text}, array=True)  # [{id, text, start, stop}]
        return [answer.get(f"{i}.id", int) for i in range(len(answer.doc))]

    def _generate_one(self, ids: list[int], parameters: dict[str, Any]) -> Answer:
        """One ``/generate`` request for the prompt ``ids``, its tokenization checked in the
        answer's prefill."""
        body = {"inputs": self.text_for(ids), "parameters": {**parameters, "details": True,
                "decoder_input_details": True, "return_full_text": False}}  # fmt: skip
        answer = self.client.post_root("/generate", body)
        prefill = answer.get("details.prefill", list)
        theirs = [answer.get(f"details.prefill.{i}.id", int) for i in range(len(prefill))]
        if theirs != list(ids):
            raise answer.error("details.prefill", f"names {len(theirs)} prompt tokens that are not the {len(ids)} sent")
        return answer

    # ---- the probe -------------------------------------------------------------------------------
    def _score(self, request: ScoreRequest, progress: ProgressCallback | None) -> list[Scored | None]:
        """p from each sequence's prefill; pmax and the argmax from the greedy next token after
        every scored prefix (unless ``request.logp_only``). A prefix shared by sequences is
        asked once."""
        jobs: list[tuple[str, tuple[int, ...]]] = []
        for ids, start in zip(request.sequences, request.starts, strict=True):
            jobs.append(("p", tuple(ids)))
            if not request.logp_only:
                jobs += [("max", tuple(ids[:t])) for t in range(start, len(ids))]
        jobs = list(dict.fromkeys(jobs))
        greedy = {"do_sample": False, "max_new_tokens": 1, "repetition_penalty": 1.0}

        def one(job):
            what, ids = job
            try:
                answer = self._generate_one(list(ids), greedy)
            except Unsendable:
                if request.logp_only:
                    return None  # this continuation goes unscored
                raise
            if what == "p":
                return [None] + [answer.number(f"details.prefill.{t}.logprob") for t in range(1, len(ids))]
            return answer.number("details.tokens.0.logprob"), answer.get("details.tokens.0.id", int)

        answers = dict(zip(jobs, self.run_all(one, jobs, progress, "scoring"), strict=True))
        out: list[Scored | None] = []
        for ids, start in zip(request.sequences, request.starts, strict=True):
            p = answers[("p", tuple(ids))]
            if p is None:
                out.append(None)
                continue
            logp = np.array([p[t] for t in range(start, len(ids))])
            if request.logp_only:
                out.append(Scored.from_logprobs(logp, np.full_like(logp, np.nan), np.full(len(logp), -1)))
                continue
            best = [answers[("max", tuple(ids[:t]))] for t in range(start, len(ids))]
            lmax = np.maximum(np.array([b[0] for b in best]), logp)
            arg = [b[1] if b[0] >= lp else ids[t] for b, lp, t in zip(best, logp, range(start, len(ids)))]
            out.append(Scored.from_logprobs(logp, lmax, arg))
        return out

    # ---- generation ------------------------------------------------------------------------------
    def _generate(self, request: GenerationRequest, progress: ProgressCallback | None) -> list[RawGeneration]:
        """One request per continuation, seeded by seed + prompt index + sample."""
        params = self.sent_params(request.setting)

        def one(row):
            index, sample = row
            parameters = {**params, "max_new_tokens": request.budget(index)}
            if request.setting.do_sample:
                parameters["seed"] = request.seed + index + sample * 100_003
            answer = self._generate_one(list(request.prompts[index]), parameters)
            n = len(answer.get("details.tokens", list))
            tokens = [answer.get(f"details.tokens.{i}.id", int) for i in range(n)]
            finish = answer.get("details.finish_reason", str)
            if finish not in ("length", "eos_token", "stop_sequence"):
                raise answer.error("details.finish_reason", f"is {finish!r}, not length, eos_token or stop_sequence")
            stopped = finish != "length"
            return RawGeneration(index, sample, self.strip_stop(tokens, stopped), "eos" if stopped else "length")

        return self.run_all(one, request.rows(), progress, f"generating: {request.setting.name}")


def _identify(spec: str):
    def identify(client) -> Identity:
        info = client.get_root("/info")
        version = info.get("version", str, optional=True)
        return Identity(
            names=[info.get("model_id", str)],
            max_tokens=info.get("max_total_tokens", int, optional=True),
            versions={"server_version": version} if version else {},
        )

    return identify


load_tgi = served_loader(
    TGIBackend,
    "tgi",
    _identify,
    """Connect to a TGI server (``base_url`` e.g. ``http://127.0.0.1:8080/v1``; its native API
    lives beside ``/v1``) serving ``spec`` (its ``model_id``).""",
)


__all__ = ["TGIBackend", "load_tgi"]
