"""Groups of options declared once and shared by several commands.

Typer has no option groups. ``option_group`` is the one place that makes them: it replaces a
command's placeholder parameter (``load``, ``outputs``) by the group's options, in the
placeholder's position, and hands the command one object built from their values instead.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from .options import FigureFormat, FormatOpt, OutOpt, OverwriteOpt

#: a group: parameter name -> (annotation, default)
Params = dict[str, tuple[Any, Any]]
#: the parameter through which Typer hands the groups the click context
CTX = "typer_ctx"


def option_group(placeholder: str, params: Params, build: Callable[[dict[str, Any], set[str]], Any]) -> Callable:
    """A decorator: the command's parameter ``placeholder`` becomes ``params``; the command
    receives ``build(values, names that came from an environment variable)`` in its place."""

    def decorate(func: Callable) -> Callable:
        signature = inspect.signature(func, eval_str=True)
        if placeholder not in signature.parameters:  # pragma: no cover - a programming error
            raise TypeError(f"{func.__name__} has no parameter {placeholder!r} for its option group")
        new = []
        for p in signature.parameters.values():
            if p.name == placeholder:
                new += [
                    inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=annot)
                    for name, (annot, default) in params.items()
                ]
            else:
                new.append(p)
        # one click context for every group of a command (Typer passes a single Context parameter)
        inner_takes_ctx = CTX in signature.parameters
        if not inner_takes_ctx:
            new.append(inspect.Parameter(CTX, inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context))

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            ctx = kwargs[CTX] if inner_takes_ctx else kwargs.pop(CTX)
            values = {name: kwargs.pop(name) for name in params}
            from_environment = {name for name in params if _source(ctx, name) == "ENVIRONMENT"}
            kwargs[placeholder] = build(values, from_environment)
            return func(*args, **kwargs)

        wrapper.__signature__ = signature.replace(parameters=new)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in new}
        return wrapper

    return decorate


def _source(ctx, name: str) -> str | None:
    """Where a parameter's value came from (click's ParameterSource name), if known."""
    try:
        source = ctx.get_parameter_source(name)
    except (AttributeError, KeyError):
        return None
    return getattr(source, "name", None)


# ---- where a run's files go -------------------------------------------------------------------
@dataclass(frozen=True)
class Outputs:
    """``--out DIR``, ``--overwrite`` and ``--format``: checked before any work, written after."""

    directory: Path | None = None
    overwrite: bool = False
    fmt: str = "png"

    def check(self) -> None:
        """Refuse a directory repcheck could not (or should not) publish into, before any model work."""
        from ..outputs import check_output_dir

        if self.directory is not None:
            check_output_dir(self.directory, self.overwrite)

    def write(self, result, **kwargs: Any) -> list[Path]:
        """The result's files (``result.write``) into the directory, if one was given."""
        if self.directory is None:
            return []
        return result.write(self.directory, self.fmt, overwrite=self.overwrite, **kwargs)


OUTPUT_PARAMS: Params = {
    "out": (OutOpt, None),
    "overwrite": (OverwriteOpt, False),
    "fmt_": (FormatOpt, FigureFormat.png),
}

with_output_options = option_group(
    "outputs", OUTPUT_PARAMS, lambda v, _env: Outputs(v["out"], v["overwrite"], v["fmt_"].value)
)
