"""`repcheck guard serve`: the loop-cutting proxy in front of an OpenAI-compatible server."""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import RepcheckError
from . import options as opt
from .console import handle_errors, info

guard_app = typer.Typer(
    help="Stop loops while they happen: an OpenAI-compatible proxy that cuts looping answers.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@guard_app.command("serve")
@handle_errors
def serve_command(
    upstream: Annotated[
        str, typer.Option("--upstream", help="The server to guard: its /v1 URL, e.g. http://127.0.0.1:8000/v1.")
    ],
    host: Annotated[
        str, typer.Option("--host", help="Where to listen: loopback by default; 0.0.0.0 exposes the proxy.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8100,
    loop_max_period: opt.LoopPeriodOpt = 64,
    loop_min_repeats: opt.LoopRepeatsOpt = 3,
    loop_min_tokens: opt.LoopTokensOpt = 48,
    max_request_bytes: Annotated[
        int, typer.Option("--max-request-bytes", min=1024, help="Refuse larger request bodies (413).")
    ] = 1 << 20,
    log_requests: Annotated[
        bool, typer.Option("--log-requests", help="Log one line per request (path, status, what was cut); never text.")
    ] = False,
) -> None:
    """Forward /v1/completions and /v1/chat/completions to UPSTREAM, watch every choice's tokens, and end a choice whose loop is confirmed with finish_reason "repetition" (streaming or not); everything else passes through."""
    from ..backends.http_client import ServerURL
    from ..guard import GuardConfig

    ServerURL.parse(upstream, "upstream")
    config = GuardConfig(loop_max_period, loop_min_repeats, loop_min_tokens)
    try:
        from ..guard.proxy import serve
    except ImportError as err:  # pragma: no cover - the extra is missing
        raise RepcheckError(
            f"the proxy needs starlette and uvicorn: pip install 'repcheck[guard]' [{err.name}]"
        ) from None
    info(f"guarding {upstream} on http://{host}:{port}/v1 (loops: {config.to_dict()})")
    serve(upstream, config, host=host, port=port, max_body=max_request_bytes, log_requests=log_requests)
