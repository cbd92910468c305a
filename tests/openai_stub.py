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
                status, payload = answer(method, self.path, body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self):  # noqa: N802
                self._handle("GET")

            def do_POST(self):  # noqa: N802
                self._handle("POST")

            def log_message(self, *args):
                pass

        class Quiet(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a client that gave up (a timeout test) is not the server's error

        self.requests: list[tuple[str, str, Any, dict]] = []
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


def vllm_like_server(hf, *, legacy=False, tokens=None, no_logprobs=False, models=None, fail_first=0):
    """A scripted server that answers as vLLM does, computing from a local model ``hf``."""
    import torch

    tok = hf.tokenizer
    state = {"fails": fail_first}

    def script(method, path, body):
        if state["fails"]:
            state["fails"] -= 1
            return 503, {"error": {"message": "warming up"}}
        if path.endswith("/models"):
            return 200, {"data": [{"id": m, "max_model_len": 128} for m in (models or ["tiny"])]}
        if path.endswith("/version"):
            return 404, {}
        prompt = body["prompt"]
        ids = tok(prompt)["input_ids"] if isinstance(prompt, str) else prompt
        if isinstance(prompt, str):
            echo = tokens if tokens is not None else ids
            return 200, {"choices": [{"logprobs": {"tokens": [f"token_id:{t}" for t in echo + [5]]}}]}
        with torch.no_grad():
            logp = hf.model(torch.tensor([ids])).logits[0].float().log_softmax(-1)
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

    return ScriptedServer(script)
