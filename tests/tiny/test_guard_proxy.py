"""`repcheck guard serve` in front of a scripted upstream that streams a loop, driven with the
official openai client: a looping choice ends with finish_reason "repetition" (streamed or
not), the upstream stops generating, other choices go on, credentials pass through, failures
keep their status, and hundreds of concurrent streams lose nothing."""

import asyncio
import json
import socket
import threading
import time

import pytest
from server_stubs import LoopingStreamServer

from repcheck.guard import GuardConfig
from repcheck.guard.proxy import create_app

openai = pytest.importorskip("openai")
uvicorn = pytest.importorskip("uvicorn")
GUARD = GuardConfig(max_period=16, min_repeats=3, min_tokens=12)


class Proxy:
    """The proxy's ASGI app on uvicorn, in a thread, on a free loopback port."""

    def __init__(self, upstream, **kwargs):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        app = create_app(upstream, GUARD, **kwargs)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def upstream():
    with LoopingStreamServer(chunks=400, delay=0.001) as server:
        yield server


@pytest.fixture(scope="module")
def proxy(upstream):
    with Proxy(upstream.base_url) as p:
        yield p


def client(proxy, key="sk-test-123"):
    return openai.OpenAI(base_url=proxy.url, api_key=key, max_retries=0, timeout=30)


def test_a_streamed_completion_is_cut_at_its_loop_and_the_upstream_stops(proxy, upstream):
    before = len(upstream.streamed)
    chunks = list(client(proxy).completions.create(model="m", prompt="Sing", max_tokens=400, stream=True))
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["repetition"] and text.startswith("Hello there.") and text.count(" la") < 10
    time.sleep(0.3)
    assert upstream.streamed[before] < 100  # the upstream stopped long before its 1203 chunks


def test_a_non_streamed_answer_is_assembled_and_says_what_was_cut(proxy, upstream):
    raw = client(proxy).completions.with_raw_response.create(model="m", prompt="Sing", max_tokens=400)
    resp = raw.parse()
    assert resp.choices[0].finish_reason == "repetition" and resp.choices[0].text.startswith("Hello there.")
    assert raw.headers["x-repcheck-loops"].startswith("0:")
    body = json.loads(raw.text)
    assert body["usage"]["repcheck"]["cut"][0]["period"] == 3
    assert upstream.requests[-1][2]["stream"] is True  # the proxy streams from the upstream to watch


def test_chat_stream_and_other_choices(proxy):
    c = client(proxy)
    chunks = list(c.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], stream=True,
                                            max_tokens=400))  # fmt: skip
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason] == [
        "repetition"
    ]
    resp = c.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], n=2, max_tokens=400)
    by_index = {ch.index: ch for ch in resp.choices}
    assert by_index[0].finish_reason == "repetition"
    assert by_index[1].finish_reason == "stop" and by_index[1].message.content.split() == [f"w{k}" for k in range(40)]


def test_credentials_pass_through_and_failures_keep_their_status(proxy, upstream):
    client(proxy, key="sk-secret-999").completions.create(model="m", prompt="x", max_tokens=5)
    headers = {k.lower(): v for k, v in upstream.requests[-1][3].items()}
    assert headers["authorization"] == "Bearer sk-secret-999"
    with pytest.raises(openai.AuthenticationError):
        client(proxy).completions.create(model="unauthorized", prompt="x", max_tokens=5)
    assert [m.id for m in client(proxy).models.list()] == ["m"]  # other paths pass through


def test_an_unreachable_upstream_is_a_clear_502():
    with Proxy("http://127.0.0.1:9/v1") as p:
        with pytest.raises(openai.APIStatusError) as err:
            client(p).completions.create(model="m", prompt="x", max_tokens=5)
    assert err.value.status_code == 502 and "cannot be reached" in str(err.value)


def test_a_request_too_large_is_refused(upstream):
    import httpx

    with Proxy(upstream.base_url, max_body=2048) as p:
        r = httpx.post(p.url + "/completions", json={"model": "m", "prompt": "x" * 5000})
    assert r.status_code == 413 and "exceeds 2048 bytes" in r.json()["error"]["message"]


def test_hundreds_of_concurrent_streams_lose_nothing(proxy):
    import httpx

    async def one(http, k):
        finishes, text = [], []
        async with http.stream("POST", proxy.url + "/completions",
                               json={"model": "m", "prompt": str(k), "max_tokens": 400, "stream": True}) as r:  # fmt: skip
            async for line in r.aiter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    doc = json.loads(line[6:])
                    for ch in doc["choices"]:
                        text.append(ch["text"])
                        if ch["finish_reason"]:
                            finishes.append(ch["finish_reason"])
        return finishes, "".join(text)

    async def main():
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=300)) as http:
            return await asyncio.gather(*(one(http, k) for k in range(200)))

    began = time.monotonic()
    results = asyncio.run(main())
    assert time.monotonic() - began < 60
    bad = [(f, t[:40]) for f, t in results if not (f == ["repetition"] and t.startswith("Hello there."))]
    assert not bad, (len(bad), bad[:3])
