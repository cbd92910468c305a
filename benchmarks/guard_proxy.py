"""The latency `repcheck guard serve` adds to a streamed answer, per chunk, on loopback.

An upstream (Starlette on uvicorn, in this process's threads) streams a completion of N chunks
of distinct words as fast as it can; the time from the request to the last chunk is measured
directly and through the proxy, S streams one after another and C at once, and the added
time per chunk printed with the CPU's kind and the load.

Usage: python benchmarks/guard_proxy.py [--chunks 500] [--streams 20] [--concurrent 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import threading
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_server(app, port: int):
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return server


def upstream_app(chunks: int):
    from starlette.applications import Starlette
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    async def completions(request):
        async def events():
            for k in range(chunks):
                doc = {"id": "b", "choices": [{"index": 0, "text": f" w{k}", "finish_reason": None}]}
                yield f"data: {json.dumps(doc)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/completions", completions, methods=["POST"])])


async def one(http, url: str) -> tuple[float, int]:
    began, n = time.perf_counter(), 0
    async with http.stream("POST", url + "/completions", json={"model": "m", "prompt": "x", "stream": True}) as r:
        async for line in r.aiter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                n += 1
    return time.perf_counter() - began, n


async def measure(url: str, streams: int, concurrent: int) -> tuple[list[float], float, int]:
    import httpx

    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=concurrent + 10)) as http:
        serial = [await one(http, url) for _ in range(streams)]
        began = time.perf_counter()
        together = await asyncio.gather(*(one(http, url) for _ in range(concurrent)))
        wall = time.perf_counter() - began
    return [t for t, _ in serial], wall, sum(n for _, n in together)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=500)
    ap.add_argument("--streams", type=int, default=20)
    ap.add_argument("--concurrent", type=int, default=50)
    args = ap.parse_args()
    from repcheck.cpu import describe_cpu
    from repcheck.guard.proxy import create_app
    from repcheck.threads import LoadMeter

    up_port, proxy_port = free_port(), free_port()
    run_server(upstream_app(args.chunks), up_port)
    run_server(create_app(f"http://127.0.0.1:{up_port}/v1"), proxy_port)
    print(f"{os.cpu_count()} cores, CPU: {describe_cpu()}; {args.chunks} chunks per stream")
    with LoadMeter() as load:
        direct, direct_wall, direct_n = asyncio.run(
            measure(f"http://127.0.0.1:{up_port}/v1", args.streams, args.concurrent)
        )
        proxied, proxied_wall, proxied_n = asyncio.run(
            measure(f"http://127.0.0.1:{proxy_port}/v1", args.streams, args.concurrent)
        )
    d, p = statistics.median(direct), statistics.median(proxied)
    print(f"one stream at a time (median of {args.streams}): direct {d * 1000:.1f} ms, through the proxy "
          f"{p * 1000:.1f} ms: +{(p - d) / args.chunks * 1e6:.0f} µs per chunk")  # fmt: skip
    print(f"{args.concurrent} streams at once: direct {direct_wall:.2f} s ({direct_n} chunks), through the proxy "
          f"{proxied_wall:.2f} s ({proxied_n} chunks; none lost: {proxied_n == direct_n})")  # fmt: skip
    print(load.describe())


if __name__ == "__main__":
    main()
