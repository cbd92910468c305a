"""`repcheck models list|pull`: the built-in aliases and the cache."""

from __future__ import annotations

import json
import shutil
from typing import Annotated

import typer

from ..backends.builtin import BUILTIN_MODELS, cached_bytes
from ..backends.cache import cache_dir
from ..errors import RepcheckError
from .console import handle_errors, info, print_json, progress_callback, stdout_console
from .options import JsonOpt, QuietOpt

app = typer.Typer(help="List, fetch and cache the built-in models.", no_args_is_help=True, rich_markup_mode=None)


def _size(n: int) -> str:
    from rich.filesize import decimal

    return decimal(n)


@app.command("list")
@handle_errors
def list_models(json_: JsonOpt = False) -> None:
    """Built-in aliases, whether each is cached, and its size on disk (interrupted downloads
    and conversions of processes that are gone are cleaned up first)."""
    from ..atomic import remove_stale_temporaries
    from ..backends.convert import is_converted

    rows = []
    for m in BUILTIN_MODELS.values():
        remove_stale_temporaries(m.dir)
        rows.append(
            {
                "alias": m.alias,
                "description": m.description,
                "license": m.license,
                "source": f"{m.pypi_requirement} ({m.member})",
                "gguf_bytes": m.size,
                "sha256": m.sha256,
                "downloaded": m.gguf_path.exists(),
                "converted": is_converted(m.converted_dir, m.sha256),
                "cache_bytes": cached_bytes(m),
                "path": str(m.dir),
            }
        )
    if json_:
        print_json(json.dumps({"cache_dir": str(cache_dir()), "models": rows}, indent=2))
        return
    from rich.markup import escape
    from rich.table import Table

    console = stdout_console()
    console.print(escape(f"built-in models (cache: {cache_dir()})"), soft_wrap=True)
    table = Table()
    for col in ("alias", "description", "license", "status", "on disk"):
        table.add_column(col, overflow="fold")
    for r in rows:
        status = "ready" if r["converted"] else ("downloaded" if r["downloaded"] else "not cached")
        table.add_row(r["alias"], escape(r["description"]), r["license"], status, _size(r["cache_bytes"]))
    console.print(table)


@app.command("pull")
@handle_errors
def pull(
    alias: Annotated[str, typer.Argument(help="A built-in alias, e.g. smollm2-135m.")],
    force: Annotated[bool, typer.Option("--force", help="Delete the cached copy and fetch again.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Download, verify (sha256) and convert a built-in model ahead of time (a cached copy
    whose checksum is wrong is fetched again)."""
    if alias not in BUILTIN_MODELS:
        raise RepcheckError(f"unknown alias {alias!r}; built-in aliases: {', '.join(BUILTIN_MODELS)}")
    model = BUILTIN_MODELS[alias]
    if force:
        shutil.rmtree(model.dir, ignore_errors=True)
    from ..backends.convert import ensure_converted
    from ..backends.spec import resolve

    with progress_callback(quiet) as cb:
        path = ensure_converted(resolve(alias, cb), cb)
    if not quiet:
        info(f"{alias}: ready in {path} ({_size(cached_bytes(model))}, sha256 {model.sha256[:12]}… verified)")
