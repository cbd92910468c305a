"""``repcheck guard serve``: an OpenAI-compatible proxy that cuts a looping answer.

It sits in front of any OpenAI-compatible server (vLLM, llama.cpp's, SGLang's, TGI's Messages
API, a hosted API): ``/v1/completions`` and ``/v1/chat/completions`` are forwarded upstream as
streams whatever the client asked, every choice's tokens are fed to a ``LoopGuard`` as they
arrive (a streamed chunk carries one token on the servers above: the chunk's text is the
guard's token), and when a choice's loop is confirmed its stream ends there with
``finish_reason: "repetition"``; once every choice has ended, the upstream stream is closed,
which makes the upstream stop generating. A client that did not ask for a stream gets the
assembled answer, with the ``X-Repcheck-Loops`` header and ``usage.repcheck`` saying which
choices were cut and after how many tokens. Every other path is passed through unchanged.

Safe by default: it binds 127.0.0.1, forwards the client's ``Authorization`` header and no
other credential, logs no prompt, answer or key (``log_requests`` logs one line per request:
the path, the status and what was cut), refuses a request body above ``max_body`` bytes (413),
and answers an upstream failure with the upstream's status and body (or 502 with a clear error
where the upstream cannot be reached).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from .detector import DEFAULT_GUARD, GuardConfig, LoopGuard

log = logging.getLogger("repcheck.guard")
GUARDED = ("/v1/completions", "/v1/chat/completions")
FINISH = "repetition"


@dataclass
class ChoiceState:
    """One choice of a streamed answer: its guard, its text so far, how it ended."""

    guard: LoopGuard
    chunks: int = 0
    text: list[str] = field(default_factory=list)
    finish: str | None = None
    loop: dict[str, Any] | None = None


def _delta(choice: dict[str, Any], chat: bool) -> str | None:
    if chat:
        delta = choice.get("delta") or {}
        content = delta.get("content") if isinstance(delta, dict) else None
        return content if isinstance(content, str) else None
    text = choice.get("text")
    return text if isinstance(text, str) else None


class Watch:
    """The guard over one streamed answer: ``event(doc)`` takes one upstream chunk and returns
    the chunk to relay (None: drop it), ``done`` says whether every choice has ended."""

    def __init__(self, config: GuardConfig, chat: bool, choices: int):
        self.config, self.chat, self.expected = config, chat, max(1, choices)
        self.choices: dict[int, ChoiceState] = {}

    def state(self, index: int) -> ChoiceState:
        if index not in self.choices:
            self.choices[index] = ChoiceState(LoopGuard(self.config))
        return self.choices[index]

    def event(self, doc: dict[str, Any]) -> dict[str, Any] | None:
        choices = doc.get("choices")
        if not isinstance(choices, list) or not choices:
            return doc  # usage chunks and the like pass
        kept = []
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0) if isinstance(choice.get("index", 0), int) else 0
            st = self.state(index)
            if st.finish is not None:
                continue  # this choice already ended: later chunks of it are dropped
            piece = _delta(choice, self.chat)
            if piece:
                st.chunks += 1
                st.text.append(piece)
                found = st.guard.feed(hash(piece))
                if found is not None:
                    st.finish, st.loop = FINISH, found.to_dict()
                    choice = {**choice, "finish_reason": FINISH}
            if choice.get("finish_reason") and st.finish is None:
                st.finish = choice["finish_reason"]
            kept.append(choice)
        return {**doc, "choices": kept} if kept else None

    @property
    def done(self) -> bool:
        return len(self.choices) >= self.expected and all(c.finish is not None for c in self.choices.values())

    def report(self) -> dict[str, Any]:
        return {
            "cut": [
                {"index": i, "tokens": c.chunks, **(c.loop or {})} for i, c in sorted(self.choices.items()) if c.loop
            ],
            "guard": self.config.to_dict(),
        }


def create_app(
    upstream: str,
    config: GuardConfig = DEFAULT_GUARD,
    *,
    max_body: int = 1 << 20,
    timeout: float = 600.0,
    log_requests: bool = False,
):
    """The ASGI application (Starlette) of the proxy for ``upstream`` (its ``/v1`` URL)."""
    import httpx
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    from ..backends.http_client import DONE, ServerURL, sse_data

    server = ServerURL.parse(upstream, "upstream")
    base = server.public_root("")
    client = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=10.0), limits=httpx.Limits(max_connections=1000))

    def error(status: int, message: str, kind: str = "repcheck_guard_error") -> JSONResponse:
        return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status)

    def forward_headers(request: Request) -> dict[str, str]:
        out = {"content-type": "application/json"}
        if "authorization" in request.headers:
            out["authorization"] = request.headers["authorization"]
        return out

    def target(path: str, request: Request) -> str:
        query = request.url.query or server.query
        return base + path + (f"?{query}" if query else "")

    async def read_body(request: Request) -> bytes | Response:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_body:
            return error(413, f"the request body exceeds {max_body} bytes")
        body = b""
        async for part in request.stream():
            body += part
            if len(body) > max_body:
                return error(413, f"the request body exceeds {max_body} bytes")
        return body

    async def guarded(request: Request) -> Response:
        raw = await read_body(request)
        if isinstance(raw, Response):
            return raw
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return error(400, "the request body is not JSON")
        if not isinstance(body, dict):
            return error(400, "the request body must be a JSON object")
        chat = request.url.path.endswith("/chat/completions")
        wants_stream = bool(body.get("stream"))
        upstream_body = {**body, "stream": True}
        n = body.get("n", 1) if isinstance(body.get("n", 1), int) else 1
        watch = Watch(config, chat, n)
        try:
            req = client.build_request("POST", target(request.url.path, request), json=upstream_body,
                                       headers=forward_headers(request))  # fmt: skip
            response = await client.send(req, stream=True)
        except httpx.HTTPError as err:
            return error(502, f"the upstream {base} cannot be reached ({type(err).__name__})", "upstream_error")
        if response.status_code != 200:
            content = await response.aread()
            await response.aclose()
            return Response(content, status_code=response.status_code,
                            media_type=response.headers.get("content-type", "application/json"))  # fmt: skip

        async def events() -> AsyncIterator[dict[str, Any]]:
            try:
                async for line in response.aiter_lines():
                    try:
                        doc = sse_data(line)
                    except ValueError:
                        continue  # not JSON: not a chunk this proxy can read or relay
                    if doc is DONE:
                        return
                    if isinstance(doc, dict):
                        yield doc
            finally:
                await response.aclose()  # closing the stream ends the upstream's generation

        def note() -> None:
            if log_requests:
                log.info("%s %s: %s", request.method, request.url.path, json.dumps(watch.report()["cut"]))

        if wants_stream:

            async def relay():
                last: dict[str, Any] | None = None
                async for doc in events():
                    out = watch.event(doc)
                    if out is not None:
                        last = out
                        yield f"data: {json.dumps(out)}\n\n"
                    if watch.done:
                        break
                if watch.report()["cut"] and last is not None:
                    yield f"data: {json.dumps({**last, 'choices': [], 'usage': {'repcheck': watch.report()}})}\n\n"
                yield "data: [DONE]\n\n"
                note()

            return StreamingResponse(relay(), media_type="text/event-stream", headers={"cache-control": "no-cache"})

        first: dict[str, Any] | None = None
        usage = None
        async for doc in events():
            first = first or doc
            usage = doc.get("usage") or usage
            watch.event(doc)
            if watch.done:
                break
        note()
        if first is None:
            return error(502, f"the upstream {base} answered with an empty stream", "upstream_error")
        choices = []
        for index, st in sorted(watch.choices.items()):
            text = "".join(st.text)
            item: dict[str, Any] = {"index": index, "finish_reason": st.finish or "length", "logprobs": None}
            item.update({"message": {"role": "assistant", "content": text}} if chat else {"text": text})
            choices.append(item)
        report = watch.report()
        doc = {
            "id": first.get("id"),
            "object": "chat.completion" if chat else "text_completion",
            "created": first.get("created"),
            "model": first.get("model"),
            "choices": choices,
            "usage": {**(usage or {}), "repcheck": report},
        }
        headers = {"x-repcheck-loops": ",".join(f"{c['index']}:{c['tokens']}" for c in report["cut"]) or "none"}
        return JSONResponse(doc, headers=headers)

    async def passthrough(request: Request) -> Response:
        raw = await read_body(request)
        if isinstance(raw, Response):
            return raw
        try:
            response = await client.request(request.method, target(request.url.path, request), content=raw or None,
                                            headers=forward_headers(request))  # fmt: skip
        except httpx.HTTPError as err:
            return error(502, f"the upstream {base} cannot be reached ({type(err).__name__})", "upstream_error")
        return Response(response.content, status_code=response.status_code,
                        media_type=response.headers.get("content-type"))  # fmt: skip

    import contextlib

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        await client.aclose()

    routes = [Route(path, guarded, methods=["POST"]) for path in GUARDED]
    routes.append(Route("/{path:path}", passthrough, methods=["GET", "POST", "DELETE"]))
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.upstream = base
    return app


def serve(
    upstream: str,
    config: GuardConfig = DEFAULT_GUARD,
    *,
    host: str = "127.0.0.1",
    port: int = 8100,
    max_body: int = 1 << 20,
    log_requests: bool = False,
) -> None:
    """Run the proxy until interrupted (uvicorn)."""
    import uvicorn

    app = create_app(upstream, config, max_body=max_body, log_requests=log_requests)
    uvicorn.run(app, host=host, port=port, log_level="info" if log_requests else "warning", access_log=log_requests)


__all__ = ["FINISH", "GUARDED", "Watch", "create_app", "serve"]
