"""A loopback HTTP server for the openai backend's tests.

``ReplayServer`` answers each request with the response a real server gave to the same
request (recorded by ``scripts/record_openai_responses.py`` against vLLM), and answers an
unrecorded request with HTTP 599 naming it, so a test that sends something new fails loudly.
``ScriptedServer`` answers with whatever a test scripts (errors, malformed JSON, slowness).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def request_key(method: str, path: str, body: Any) -> str:
    """One string per distinct request: method, path (without the /v1 base) and canonical JSON."""
    path = path[3:] if path.startswith("/v1/") else path
    return f"{method} {path} {json.dumps(body, sort_keys=True, ensure_ascii=False) if body is not None else ''}"


class _Server:
    def __init__(self, answer: Callable[[str, str, Any], tuple[int, bytes]]):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self, method):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                outer.requests.append((method, self.path, body, dict(self.headers)))
                if outer.stream is not None and body and body.get("stream") and body.get("model") != "unauthorized":
                    self._stream(method, body)
                    return
                try:
                    status, payload = answer(method, self.path.split("?")[0], body)
                except Exception as err:  # a bug in a stub: say which, as a refusal (not retried)
                    import traceback

                    status, payload = (
                        418,
                        json.dumps(
                            {
                                "error": {
                                    "message": "stub failed: "
                                    + "".join(traceback.format_exception_only(err))
                                    + traceback.format_exc()[-600:]
                                }
                            }
                        ).encode(),
                    )
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _stream(self, method, body):
                """Server-sent events, one chunk at a time; stops when the client goes away."""
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                sent = 0
                try:
                    for doc in outer.stream(self.path.split("?")[0], body):
                        self.wfile.write(f"data: {json.dumps(doc)}\n\n".encode())
                        self.wfile.flush()
                        sent += 1
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client closed the stream: generation stops here
                finally:
                    outer.streamed.append(sent)

            def do_GET(self):  # noqa: N802
                self._handle("GET")

            def do_POST(self):  # noqa: N802
                self._handle("POST")

            def log_message(self, *args):
                pass

        class Quiet(ThreadingHTTPServer):
            request_queue_size = 512  # a load test opens hundreds of connections at once
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a client that gave up (a timeout test) is not the server's error

        self.requests: list[tuple[str, str, Any, dict]] = []
        self.streamed: list[int] = []  # chunks sent per streamed request
        self.stream = getattr(self, "stream", None)
        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


class ReplayServer(_Server):
    def __init__(self, recording: Path):
        self.recorded: dict[str, Any] = json.loads(recording.read_text(encoding="utf-8"))["responses"]

        def answer(method, path, body):
            key = request_key(method, path, body)
            if key not in self.recorded:
                return 599, json.dumps({"error": {"message": f"not recorded: {key[:200]}"}}).encode()
            status, doc = self.recorded[key]
            return status, json.dumps(doc).encode()

        super().__init__(answer)


class ScriptedServer(_Server):
    """``script(method, path, body) -> (status, bytes | dict)``."""

    def __init__(self, script: Callable[[str, str, Any], tuple[int, Any]]):
        self.script = script

        def answer(method, path, body):
            status, payload = script(method, path, body)
            return status, payload if isinstance(payload, bytes) else json.dumps(payload).encode()

        super().__init__(answer)


class RecordingProxy(_Server):
    """Forwards every request to ``upstream`` (a real server's /v1 URL) and keeps the answers."""

    def __init__(self, upstream: str):
        import httpx

        self.responses: dict[str, Any] = {}
        client = httpx.Client(base_url=upstream.rstrip("/").removesuffix("/v1"), timeout=600)

        def answer(method, path, body):
            response = client.request(method, path, json=body)
            doc = response.json()
            self.responses[request_key(method, path, body)] = [response.status_code, doc]
            return response.status_code, json.dumps(doc).encode()

        super().__init__(answer)


class FakeEngine:
    """What a server computes, from a local model ``hf`` (a repcheck hf backend): teacher-forced
    log-probabilities and greedy or seeded sampled continuations that stop at ``stop_ids``
    (the stop token included, as servers return it)."""

    def __init__(self, hf, stop_ids):
        self.hf, self.tok, self.stop_ids = hf, hf.tokenizer, list(stop_ids)

    def logits(self, ids):
        """[len(ids), vocab]: row t scores token t+1."""
        import torch

        with torch.no_grad():
            return self.hf.model(torch.tensor([ids])).logits[0].float()

    def logprobs(self, ids):
        return self.logits(ids).log_softmax(-1)

    def continue_(self, ids, max_tokens, temperature=0.0, seed=0, repetition_penalty=1.0, stop_ids=()):
        import torch

        stops = set(self.stop_ids) | set(stop_ids)
        gen = torch.Generator().manual_seed(seed)
        out = []
        for _ in range(max_tokens):
            row = self.logits(list(ids) + out)[-1].clone()
            if repetition_penalty != 1.0:  # on the logits, as transformers and vLLM apply it
                seen = torch.tensor(sorted(set(list(ids) + out)))
                row[seen] = torch.where(row[seen] > 0, row[seen] / repetition_penalty, row[seen] * repetition_penalty)
            if temperature == 0:
                t = int(row.argmax())
            else:
                t = int(torch.multinomial((row / temperature).softmax(-1), 1, generator=gen))
            out.append(t)
            if t in stops:
                return out, "stop"
        return out, "length"


def vllm_like_server(hf, **kwargs):
    """``vllm_like_script`` served on loopback; a request with ``stream: true`` gets the same
    answer as server-sent events, one token per event (as vLLM streams)."""
    delay = kwargs.pop("stream_delay", 0.01)
    script = vllm_like_script(hf, **kwargs)
    server = ScriptedServer(script)
    server.stream = lambda path, body: stream_choices(script, path, body, delay)
    return server


def stream_choices(script, path, body, delay=0.0):
    """The events of a streamed answer: the whole answer computed, then one token per event,
    ``delay`` seconds apart (so a client that closes the stream is noticed, as by a server)."""
    import time

    status, doc = script("POST", path, {k: v for k, v in body.items() if k != "stream"})
    chat = path.endswith("/chat/completions")
    for choice in doc["choices"]:
        if chat:
            tokens = [e["token"] for e in choice["logprobs"]["content"]]
        else:
            tokens = choice["logprobs"]["tokens"]
        for i, token in enumerate(tokens):
            last = i == len(tokens) - 1
            item = {"index": choice["index"], "finish_reason": choice["finish_reason"] if last else None}
            if chat:
                item.update(delta={"content": "x"}, logprobs={"content": [{"token": token, "logprob": -1.0}]})
            else:
                item.update(text="x", logprobs={"tokens": [token]})
            yield {"id": "s", "choices": [item]}
            time.sleep(delay)


def vllm_like_script(hf, *, legacy=False, tokens=None, no_logprobs=False, models=None, fail_first=0, owner="vllm",
                     max_model_len=128, defaults=None):  # fmt: skip
    """A scripted server that answers as vLLM 0.32 does (``/v1/models``, ``/v1/completions`` with
    token-id prompts, prompt_logprobs or echo logprobs, ``token_id:N`` tokens, generation that
    returns the stop token, ``/v1/chat/completions``), computing from a local model ``hf``.
    ``tokens``: what it echoes for a text prompt instead of the right ids (a different
    tokenizer)."""
    from repcheck.backends.hf_utils import eos_ids_of

    tok = hf.tokenizer
    engine = FakeEngine(hf, eos_ids_of(None, tok))
    state = {"fails": fail_first}
    filled = dict(defaults or {})

    def script(method, path, body):
        if state["fails"]:
            state["fails"] -= 1
            return 503, {"error": {"message": "warming up"}}
        if path.endswith("/models"):
            return 200, {"data": [{"id": m, "owned_by": owner, "max_model_len": max_model_len}
                                  for m in (models or ["tiny"])]}  # fmt: skip
        if path.endswith("/version"):
            return 404, {}
        if path.endswith("/chat/completions"):
            text = tok.apply_chat_template(body["messages"], add_generation_prompt=True, tokenize=False)
            ids = tok(text, add_special_tokens=False)["input_ids"]
            return 200, {"choices": _generate(engine, ids, {**filled, **body}, chat=True)}
        prompt = body["prompt"]
        ids = tok(prompt)["input_ids"] if isinstance(prompt, str) else prompt
        if body.get("max_tokens", 16) > 1:
            return 200, {"choices": _generate(engine, ids, {**filled, **body}, chat=False)}
        if isinstance(prompt, str):
            echo = tokens if tokens is not None else ids
            return 200, {"choices": [{"logprobs": {"tokens": [f"token_id:{t}" for t in echo + [5]]}}]}
        logp = engine.logprobs(ids)
        choice = {"index": 0, "finish_reason": "length"}
        if no_logprobs:
            return 200, {"choices": [choice]}
        entries, tops, actual = [None], [None], [None]
        for t in range(1, len(ids)):
            row = logp[t - 1]
            best = int(row.argmax())
            entries.append({str(ids[t]): {"logprob": float(row[ids[t]]), "rank": 1 + int((row > row[ids[t]]).sum())},
                            str(best): {"logprob": float(row[best]), "rank": 1}})  # fmt: skip
            tops.append({f"token_id:{best}": float(row[best])})
            actual.append(float(row[ids[t]]))
        if legacy:
            choice["logprobs"] = {
                "tokens": [f"token_id:{i}" for i in ids],
                "token_logprobs": actual,
                "top_logprobs": tops,
            }
        else:
            choice["prompt_logprobs"] = entries
        return 200, {"choices": [choice]}

    return script


def _generate(engine, ids, body, chat):
    """vLLM's choices for a generation request: ids as token_id:N, the stop token kept."""
    choices = []
    for k in range(body.get("n", 1)):
        out, finish = engine.continue_(
            ids,
            body["max_tokens"],
            float(body.get("temperature", 1.0)),
            int(body.get("seed", 0)) * 1000 + k,
            float(body.get("repetition_penalty", 1.0)),
            body.get("stop_token_ids") or (),
        )
        text = engine.tok.decode(out, skip_special_tokens=body.get("skip_special_tokens", True) is not False)
        names = [f"token_id:{t}" if body.get("return_tokens_as_token_ids") else engine.tok.decode([t]) for t in out]
        if chat:
            content = [{"token": n, "logprob": -1.0} for n in names]
            choices.append({"index": k, "message": {"role": "assistant", "content": text},
                            "logprobs": {"content": content}, "finish_reason": finish})  # fmt: skip
        else:
            choices.append({"index": k, "text": text, "logprobs": {"tokens": names}, "finish_reason": finish})
    return choices


def llama_cpp_like_server(hf, *, model="tiny"):
    """A scripted server that answers as llama-cpp-python's (``python -m llama_cpp.server``):
    text prompts only, ``owned_by: me``, echo logprobs with tokens as text and the BOS left
    out, ``repeat_penalty``, one completion per request, ``/extras/tokenize``."""
    from repcheck.backends.hf_utils import eos_ids_of

    tok = hf.tokenizer
    engine = FakeEngine(hf, eos_ids_of(None, tok))

    def script(method, path, body):
        if path.endswith("/models"):
            return 200, {"object": "list", "data": [{"id": model, "object": "model", "owned_by": "me",
                                                     "permissions": []}]}  # fmt: skip
        if path.endswith("/extras/tokenize"):
            return 200, {"tokens": tok(body["input"])["input_ids"]}
        if not path.endswith("/completions") or path.endswith("/chat/completions"):
            return 404, {"detail": "Not Found"}
        prompt = body["prompt"]
        if not isinstance(prompt, str):
            return 422, {"detail": [{"msg": "Input should be a valid string", "loc": ["body", "prompt"]}]}
        ids = tok(prompt)["input_ids"]
        out, finish = engine.continue_(ids, body.get("max_tokens", 16), float(body.get("temperature", 0.8)),
                                       int(body.get("seed") or 0), float(body.get("repeat_penalty", 1.0)))  # fmt: skip
        if finish == "stop":
            out = out[:-1]  # llama-cpp-python leaves the stop token out
        choice = {"index": 0, "text": tok.decode(out), "finish_reason": finish}
        if body.get("logprobs") is not None:
            bos = ids[0] == tok.bos_token_id
            every = (ids[1:] if bos else ids) + out if body.get("echo") else out
            logp = engine.logprobs(ids + out)
            offset = 0 if body.get("echo") else len(ids) - 1  # as llama-cpp-python indexes its scores
            rows = [logp[offset + i] for i in range(len(every))]
            tokens, actual, tops = [], [], []
            for t, row in zip(every, rows):
                tokens.append(tok.decode([t]))
                order = row.argsort(descending=True)[: body["logprobs"]].tolist()
                top = {tok.decode([i]): float(row[i]) for i in order}  # later equal texts overwrite, as there
                top.update({tok.decode([t]): float(row[t])})
                actual.append(float(row[t])), tops.append(top)
            if body.get("echo"):
                actual[0], tops[0] = None, None
            choice["logprobs"] = {"tokens": tokens, "text_offset": [0] * len(tokens), "token_logprobs": actual,
                                  "top_logprobs": tops}  # fmt: skip
        return 200, {"id": "cmpl-1", "object": "text_completion", "model": model, "choices": [choice]}

    return ScriptedServer(script)


def _sampled(engine, ids, max_tokens, params, stop_ids, seed):
    """A continuation under the sampling ``params`` a native API sends (greedy where
    temperature is 0 or do_sample is false)."""
    greedy = params.get("do_sample") is False or float(params.get("temperature", 1.0)) == 0.0
    return engine.continue_(ids, max_tokens, 0.0 if greedy else float(params.get("temperature", 1.0)), int(seed or 0),
                            float(params.get("repetition_penalty", 1.0)), stop_ids)  # fmt: skip


def sglang_like_server(hf, *, model="tiny", defaults=None, version="0.5.5"):
    """A scripted server that answers as SGLang's native API does (``/get_model_info``,
    ``/get_server_info``, ``/v1/models``, ``POST /generate`` with ``input_token_logprobs`` as
    ``[logprob, id, text]`` and ``output_ids`` that keep the stop token), computed from ``hf``.
    ``defaults``: what it fills into a request's missing sampling keys (``--sampling-defaults
    model``)."""
    from repcheck.backends.hf_utils import eos_ids_of

    tok = hf.tokenizer
    engine = FakeEngine(hf, eos_ids_of(None, tok))

    def script(method, path, body):
        if path == "/get_model_info":
            return 200, {"model_path": model, "tokenizer_path": "/srv/models/tiny", "is_generation": True}
        if path == "/get_server_info":
            return 200, {"version": version}
        if path == "/v1/models":
            return 200, {"object": "list", "data": [{"id": model, "owned_by": "sglang", "max_model_len": 128}]}
        if path != "/generate":
            return 404, {"detail": "Not Found"}
        ids = body["input_ids"] if body.get("input_ids") is not None else tok(body["text"])["input_ids"]
        params = {**(defaults or {}), **body.get("sampling_params", {})}
        meta = {"prompt_tokens": len(ids)}
        if body.get("return_logprob"):
            logp = engine.logprobs(ids)
            meta["input_token_logprobs"] = [[None, ids[0], None]] + [
                [float(logp[t - 1, ids[t]]), ids[t], None] for t in range(1, len(ids))
            ]
            if body.get("top_logprobs_num"):
                meta["input_top_logprobs"] = [None] + [
                    [[float(logp[t - 1].max()), int(logp[t - 1].argmax()), None]] for t in range(1, len(ids))
                ]
        out, finish = _sampled(engine, ids, params.get("max_new_tokens", 128), params,
                               params.get("stop_token_ids") or (), params.get("sampling_seed"))  # fmt: skip
        meta["finish_reason"] = {"type": "stop", "matched": out[-1]} if finish == "stop" else {"type": "length",
                                                                                              "length": len(out)}  # fmt: skip
        meta["completion_tokens"] = len(out)
        return 200, {"text": tok.decode(out, skip_special_tokens=True), "output_ids": out, "meta_info": meta}

    return ScriptedServer(script)


def tgi_like_server(hf, *, model_id="tiny", version="3.3.4"):
    """A scripted server that answers as TGI does (``/info``, ``/tokenize`` answering a JSON
    array, ``POST /generate`` with ``details.prefill`` and ``details.tokens``, the stop token
    kept with ``special: true``, and TGI's validation of top_p, top_k and temperature),
    computed from ``hf``."""
    from repcheck.backends.hf_utils import eos_ids_of

    tok = hf.tokenizer
    engine = FakeEngine(hf, eos_ids_of(None, tok))

    def invalid(message):
        return 422, {"error": message, "error_type": "validation"}

    def script(method, path, body):
        if path == "/info":
            return 200, {"model_id": model_id, "model_dtype": "torch.float32", "max_input_tokens": 127,
                         "max_total_tokens": 128, "version": version}  # fmt: skip
        if path == "/tokenize":
            ids = tok(body["inputs"])["input_ids"]
            return 200, [{"id": i, "text": tok.decode([i]), "start": 0, "stop": 0} for i in ids]
        if path != "/generate":
            return 404, {"error": "Not Found"}
        params = body.get("parameters", {})
        if "top_p" in params and not 0 < params["top_p"] < 1:
            return invalid("`top_p` must be > 0.0 and < 1.0")
        if "top_k" in params and params["top_k"] <= 0:
            return invalid("`top_k` must be strictly positive")
        if "temperature" in params and params["temperature"] <= 0:
            return invalid("`temperature` must be strictly positive")
        ids = tok(body["inputs"])["input_ids"]
        out, finish = _sampled(engine, ids, params.get("max_new_tokens", 100), params, (), params.get("seed"))
        logp = engine.logprobs(ids + out)
        details = {"finish_reason": "eos_token" if finish == "stop" else "length", "generated_tokens": len(out),
                   "seed": params.get("seed")}  # fmt: skip
        if params.get("decoder_input_details"):
            details["prefill"] = [{"id": ids[0], "text": tok.decode([ids[0]]), "logprob": None}] + [
                {"id": ids[t], "text": tok.decode([ids[t]]), "logprob": float(logp[t - 1, ids[t]])}
                for t in range(1, len(ids))
            ]
        details["tokens"] = [
            {
                "id": t,
                "text": tok.decode([t]),
                "logprob": float(logp[len(ids) + k - 1, t]),
                "special": t in tok.all_special_ids,
            }  # fmt: skip
            for k, t in enumerate(out)
        ]
        return 200, {"generated_text": tok.decode(out, skip_special_tokens=True), "details": details}

    return ScriptedServer(script)


class LoopingStreamServer(_Server):
    """An upstream that streams answers one token (chunk) at a time: choice 0 falls into a
    loop ("la " forever) after a sentence, choice 1 (with n=2) writes distinct words and
    stops; ``delay`` seconds between chunks. Non-streamed requests get the whole answer."""

    def __init__(self, chunks: int = 400, delay: float = 0.0):
        import time

        self.chunks = chunks

        def pieces(index):
            if index == 0:
                return ["Hello", " there", "."] + [" la", " la", " do"] * chunks
            return [f" w{k}" for k in range(40)]

        def stream(path, body):
            chat = path.endswith("/chat/completions")
            n = body.get("n", 1)
            budget = min(body.get("max_tokens") or chunks, chunks)
            for step in range(budget):
                for index in range(n):
                    seq = pieces(index)
                    if step >= len(seq):
                        continue
                    last = step == min(budget, len(seq)) - 1
                    finish = ("stop" if len(seq) <= budget else "length") if last else None
                    choice = ({"index": index, "delta": {"content": seq[step]}, "finish_reason": finish} if chat
                              else {"index": index, "text": seq[step], "finish_reason": finish})  # fmt: skip
                    yield {"id": "cmpl-1", "object": "chat.completion.chunk" if chat else "text_completion",
                           "created": 1, "model": body.get("model"), "choices": [choice]}  # fmt: skip
                if delay:
                    time.sleep(delay)

        self.stream = stream

        def answer(method, path, body):
            if path.endswith("/models"):
                return 200, {"object": "list", "data": [{"id": "m", "owned_by": "upstream"}]}
            if body is not None and body.get("model") == "unauthorized":
                return 401, {"error": {"message": "bad key", "type": "invalid_request_error"}}
            return 200, {"choices": [{"index": 0, "text": "x", "finish_reason": "length"}]}

        super().__init__(
            lambda m, p, b: (lambda st, pl: (st, pl if isinstance(pl, bytes) else json.dumps(pl).encode()))(
                *answer(m, p, b)
            )
        )
