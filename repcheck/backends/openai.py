"""Any OpenAI-compatible completions server (vLLM, SGLang, TGI, llama.cpp's server) as a backend.

Token ids go in as token-id prompts, so the server scores exactly the sequence the probe
built. Scoring asks ``/v1/completions`` for ``max_tokens=1`` with ``echo`` and ``logprobs=1``
and vLLM's ``prompt_logprobs=1``: for every prompt position the logprob of the actual token
and of the top-1 token (vLLM's ``prompt_logprobs`` are keyed by token id; the legacy
``echo`` + ``logprobs`` form is read where that is all a server returns). A server that
returns neither gets a one-line error naming both parameters.

The tokenizer is always a Hugging Face tokenizer (``tokenizer=``, else the served model's
name); it is checked against the server's own tokenization of a test string before anything
runs, so that ids mean the same on both sides.

httpx with a timeout, retries with backoff on connection errors, timeouts and 5xx, and at
most ``concurrency`` requests in flight. The API key comes from ``$REPCHECK_API_KEY`` or
``$OPENAI_API_KEY``, never from the command line, and never goes into a report.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from ..errors import RepcheckError
from ..progress import ProgressCallback
from .base import (
    PROBE_TEXTS,
    ContextWindow,
    GenerationRequest,
    RawGeneration,
    Scored,
    ScoreRequest,
    model_block,
    require_same_tokens,
)
from .common import BaseBackend
from .hf_utils import load_tokenizer
from .served import parse_prompt_logprobs, sampling_params

API_KEY_VARIABLES = ("REPCHECK_API_KEY", "OPENAI_API_KEY")


def public_url(url: str) -> str:
    """The URL without credentials or query (what goes into a report)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


@dataclass
class Client:
    """POSTs JSON with retries; every failure becomes one RepcheckError line."""

    base_url: str
    timeout: float = 60.0
    retries: int = 3
    backoff: float = 0.5
    api_key: str | None = None
    _http: Any = field(default=None, repr=False)

    def __post_init__(self):
        try:
            import httpx
        except ImportError:
            raise RepcheckError(
                "the openai backend needs httpx: pip install 'repcheck[openai]'", param="backend"
            ) from None
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        self._http = httpx.Client(base_url=self.base_url.rstrip("/"), timeout=self.timeout, headers=headers)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", path, body)

    def get(self, path: str) -> dict[str, Any]:
        return self._request("GET", path, None)

    def server_root(self) -> str:
        """The server's root URL: the base URL without its trailing ``/v1``."""
        base = self.base_url.rstrip("/")
        return base[: -len("/v1")] if base.endswith("/v1") else base

    def _request(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        import httpx

        where = f"{public_url(self.base_url)}{path}"
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = self._http.request(method, path, json=body)
            except httpx.TimeoutException:
                last = f"no answer within {self.timeout:g} s"
                continue
            except httpx.HTTPError as err:
                last = f"cannot connect ({type(err).__name__})"
                continue
            if response.status_code >= 500:
                last = f"server error {response.status_code}"
                continue
            if response.status_code >= 400:
                raise RepcheckError(f"{where} refused the request: {response.status_code} {_server_message(response)}")
            try:
                doc = response.json()
            except ValueError:
                raise RepcheckError(f"{where} did not return JSON: {response.text[:80]!r}") from None
            if not isinstance(doc, dict):
                raise RepcheckError(f"{where} returned {type(doc).__name__}, not a JSON object")
            return doc
        raise RepcheckError(f"{where}: {last} after {self.retries + 1} attempts; is the server up?")

    def close(self) -> None:
        self._http.close()


def _server_message(response) -> str:
    try:
        doc = response.json()
        err = doc.get("error", doc) if isinstance(doc, dict) else doc
        msg = err.get("message", "") if isinstance(err, dict) else str(err)
    except ValueError:
        msg = response.text
    return " ".join(str(msg).split())[:200]


def _token_id(token: str) -> int:
    """vLLM's ``return_tokens_as_token_ids`` form, ``token_id:123``."""
    if isinstance(token, str) and token.startswith("token_id:"):
        return int(token.split(":", 1)[1])
    raise ValueError(f"token {token!r} is not in the token_id:N form")


def parse_prompt_scores(choice: dict[str, Any], ids: Sequence[int], start: int) -> Scored:
    """p, pmax, argmax, logp of ``ids[start:]`` from one completions choice.

    vLLM: ``choice["prompt_logprobs"]`` (``served.parse_prompt_logprobs``). Legacy echo:
    ``choice["logprobs"]["token_logprobs"]`` and ``["top_logprobs"]`` ({token: logprob},
    tokens as ``token_id:N``)."""
    n = len(ids)
    entries = choice.get("prompt_logprobs")
    if isinstance(entries, list):
        return parse_prompt_logprobs(entries, ids, start, "the server's prompt_logprobs")
    lp = choice.get("logprobs")
    if isinstance(lp, dict) and isinstance(lp.get("top_logprobs"), list) and len(lp["top_logprobs"]) >= n:
        logp, lmax = np.empty(n - start), np.empty(n - start)
        arg = np.empty(n - start, dtype=np.int64)
        for i, t in enumerate(range(start, n)):
            top = {_token_id(k): v for k, v in (lp["top_logprobs"][t] or {}).items()}
            actual = lp["token_logprobs"][t]
            best_id = max(top, key=top.get)
            logp[i], lmax[i], arg[i] = actual, max(top[best_id], actual), best_id
            if actual > top[best_id]:
                arg[i] = ids[t]
        return Scored.from_logprobs(logp, lmax, arg)
    raise RepcheckError(
        "the server returned no prompt logprobs: it needs vLLM's prompt_logprobs or echo with logprobs "
        "(and return_tokens_as_token_ids) on /v1/completions"
    )


@dataclass(eq=False)
class OpenAIBackend(BaseBackend):
    """A model served behind an OpenAI-compatible ``/v1/completions`` endpoint."""

    client: Client
    served: str  # the server's model name
    tokenizer: Any
    window: ContextWindow
    concurrency: int = 4
    spec: str = ""
    dtype: str = "server"
    device: str = "server"
    server_versions: dict[str, str] = field(default_factory=dict)

    kind: ClassVar[str] = "openai"

    @property
    def name(self) -> str:
        return self.served

    def info(self) -> dict[str, Any]:
        return model_block(self, source="server", sha256=None, cls=None, base_url=public_url(self.client.base_url))

    def versions(self) -> dict[str, str]:
        return dict(self.server_versions)

    def _map(self, fn, items: Sequence[Any], progress: ProgressCallback | None, label: str) -> list[Any]:
        out: list[Any] = [None] * len(items)
        done = 0
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
            for future in futures:  # in order; the pool keeps `concurrency` in flight
                out[futures[future]] = future.result()
                done += 1
                if progress:
                    progress(label, done, len(items))
        return out

    def _score(self, request: ScoreRequest, progress: ProgressCallback | None) -> list[Scored]:
        """One request per sequence, ``concurrency`` in flight."""

        def one(item):
            ids, start = item
            body = {
                "model": self.served,
                "prompt": list(ids),
                "max_tokens": 1,
                "temperature": 0.0,
                "echo": True,
                "logprobs": 1,
                "prompt_logprobs": 1,
                "return_tokens_as_token_ids": True,
            }
            doc = self.client.post("/completions", body)
            try:
                choice = doc["choices"][0]
            except (KeyError, IndexError, TypeError):
                raise RepcheckError("the server's completions answer has no choices") from None
            try:
                return parse_prompt_scores(choice, list(ids), start)
            except (KeyError, TypeError, ValueError) as err:
                raise RepcheckError(
                    f"the server's prompt logprobs are malformed ({type(err).__name__}: {err})"
                ) from None

        return self._map(one, list(zip(request.sequences, request.starts, strict=True)), progress, "scoring")

    def _generate(self, request: GenerationRequest, progress: ProgressCallback | None) -> list[RawGeneration]:
        n = request.per_prompt
        body_common = {
            "model": self.served,
            "n": n,
            **sampling_params(request.setting),
            "logprobs": 0,
            "return_tokens_as_token_ids": True,
            "skip_special_tokens": False,
        }

        def one(item):
            index, ids = item
            body = {
                **body_common,
                "prompt": list(ids),
                "max_tokens": request.budget(index),
                "seed": request.seed + index,
            }
            doc = self.client.post("/completions", body)
            out = []
            for sample, choice in enumerate(sorted(doc.get("choices", []), key=lambda c: c.get("index", 0))):
                try:
                    tokens = [_token_id(t) for t in choice["logprobs"]["tokens"]]
                except (KeyError, TypeError, ValueError) as err:
                    raise RepcheckError(
                        f"the server's completion has no token ids ({type(err).__name__}); it needs "
                        "return_tokens_as_token_ids with logprobs"
                    ) from None
                finished = choice.get("finish_reason") == "stop"
                out.append(RawGeneration(index, sample, tokens, "eos" if finished else "length"))
            if len(out) != n:
                raise RepcheckError(f"the server returned {len(out)} completions for a prompt, not {n}")
            return out

        runs = self._map(one, list(enumerate(request.prompts)), progress, f"generating: {request.setting.name}")
        return [g for run in runs for g in run]

    def close(self) -> None:
        self.client.close()


def api_key() -> str | None:
    for var in API_KEY_VARIABLES:
        if os.environ.get(var):
            return os.environ[var]
    return None


def load_openai(
    spec: str,
    *,
    base_url: str | None = None,
    tokenizer: str | None = None,
    concurrency: int = 4,
    timeout: float = 60.0,
    retries: int = 3,
    dtype: str = "float32",
    device: str = "auto",
    progress: ProgressCallback | None = None,
) -> OpenAIBackend:
    """Connect to ``base_url`` (e.g. ``http://127.0.0.1:8000/v1``), serving model ``spec``."""
    if dtype != "float32" or device not in ("auto", "cpu"):
        raise RepcheckError(
            "the openai backend runs the model where the server runs it: dtype and device are the server's",
            param="dtype" if dtype != "float32" else "device",
        )
    if not base_url:
        raise RepcheckError("the openai backend needs a server: --base-url http://HOST:PORT/v1", param="base_url")
    if urlsplit(base_url).scheme not in ("http", "https"):
        raise RepcheckError(f"--base-url must start with http:// or https://, not {base_url!r}", param="base_url")
    from ..errors import require_int, require_number

    require_int("concurrency", concurrency, 1, 256)
    require_number("timeout", timeout, 0, 3600, lo_open=True)
    client = Client(base_url, timeout=timeout, retries=retries, api_key=api_key())
    if progress:
        progress("connecting", 0, 0)
    listing = client.get("/models")
    served = [m.get("id") for m in listing.get("data", []) if isinstance(m, dict)]
    if spec not in served:
        client.close()
        raise RepcheckError(
            f"{public_url(base_url)} does not serve {spec!r}; it serves: {', '.join(map(str, served)) or 'nothing'}",
            param="model",
        )
    entry = next(m for m in listing["data"] if m.get("id") == spec)
    source = tokenizer or entry.get("root") or spec
    tok = load_tokenizer(source, repr(source))
    max_len = entry.get("max_model_len")
    backend = OpenAIBackend(
        client=client,
        served=spec,
        tokenizer=tok,
        window=ContextWindow(max_tokens=int(max_len) if isinstance(max_len, int) else None),
        concurrency=concurrency,
        spec=spec,
        server_versions=_server_versions(client),
    )
    check_tokenizer(backend)
    return backend


def _server_versions(client: Client) -> dict[str, str]:
    try:  # vLLM serves /version beside /v1; other servers may not: then there is no version
        response = client._http.get(client.server_root() + "/version", timeout=min(client.timeout, 10.0))
        version = response.json().get("version") if response.status_code == 200 else None
    except Exception:  # noqa: BLE001 - a missing version is not an error
        return {}
    return {"server_version": str(version)} if version else {}


def check_tokenizer(backend: OpenAIBackend) -> None:
    """The server must tokenize test strings as the local tokenizer does: ids are the currency."""
    for text in PROBE_TEXTS:
        mine = backend.tokenizer(text)["input_ids"]
        doc = backend.client.post(
            "/completions",
            {
                "model": backend.served,
                "prompt": text,
                "max_tokens": 1,
                "temperature": 0.0,
                "echo": True,
                "logprobs": 0,
                "return_tokens_as_token_ids": True,
            },
        )
        try:
            theirs = [_token_id(t) for t in doc["choices"][0]["logprobs"]["tokens"]][: len(mine)]
        except (KeyError, IndexError, TypeError, ValueError):
            raise RepcheckError(
                "the server did not echo the prompt's token ids (it needs echo, logprobs and "
                "return_tokens_as_token_ids on /v1/completions)"
            ) from None
        require_same_tokens(mine, theirs, "server", text)
