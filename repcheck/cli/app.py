"""The `repcheck` command: a thin shell over the library.

Exit codes: 0 success, 2 bad input (one line on stderr), 1 internal error, 3 regression
(check), 130 interrupted, 141 output pipe closed.
"""

from __future__ import annotations

import atexit
import os
import sys

import typer
from typer.core import TyperGroup

from .._version import __version__
from ..threads import mark_start, prepare_openmp_env
from . import models_cmd
from .compare_cmd import compare_command
from .console import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, err_console, fail, one_line
from .diff_cmd import diff_command
from .explain_cmd import explain_command
from .gate_cmd import baseline_app, check_command
from .guard_cmd import guard_app
from .plot_cmd import plot_command
from .probe_cmd import probe_command
from .train_cmd import train_command

#: options whose value may be left out, and the value they then take (Typer has no optional
#: values): ``--legit`` alone is the shipped suite, ``--legit FILE`` a suite file
OPTIONAL_VALUES = {"--legit": "legit"}


def fill_optional_values(argv: list[str]) -> list[str]:
    """``--legit`` without a value gets its default. What follows it is its value when it is a
    .jsonl path, an existing file or the shipped suite's name; anything else (another option,
    the prompt) is left alone."""

    out: list[str] = []
    for i, arg in enumerate(argv):
        out.append(arg)
        if arg in OPTIONAL_VALUES:
            nxt = argv[i + 1] if i + 1 < len(argv) else None
            takes = nxt is not None and (
                nxt == OPTIONAL_VALUES[arg]
                or nxt.endswith(".jsonl")
                or (not nxt.startswith("-") and os.path.isfile(nxt))
            )
            if not takes:
                out.append(OPTIONAL_VALUES[arg])
    return out


class OneLineErrors(TyperGroup):
    """Usage errors (``--repeats abc``, an unknown option, a missing argument) as one line
    on stderr with exit code 2, like every other bad input, instead of a boxed panel."""

    def main(self, args=None, *rest, standalone_mode: bool = True, **kwargs):
        args = fill_optional_values(list(sys.argv[1:] if args is None else args))
        return self._main(args, *rest, standalone_mode=standalone_mode, **kwargs)

    def _main(self, *args, standalone_mode: bool = True, **kwargs):
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            rv = super().main(*args, standalone_mode=False, **kwargs)
        except Exception as err:  # click's exceptions are not public in Typer: duck-typed
            if type(err).__name__ == "NoArgsIsHelpError":
                err.show()
                sys.exit(err.exit_code)
            if hasattr(err, "format_message") and hasattr(err, "exit_code"):
                ctx = getattr(err, "ctx", None)
                hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
                try:
                    raise fail(one_line(err.format_message()) + hint, err.exit_code) from None
                except typer.Exit as exit_:
                    sys.exit(exit_.exit_code)
            if type(err).__name__ == "Abort":
                err_console.print("interrupted", markup=False)
                sys.exit(EXIT_INTERRUPTED)
            raise
        sys.exit(rv if isinstance(rv, int) else 0)


app = typer.Typer(
    name="repcheck",
    cls=OneLineErrors,
    help="Measure why and how much a causal language model repeats itself.\n\n"
    "Exit codes: 0 success, 2 bad input (one line on stderr), 1 internal error, 3 regression (`check`), "
    "130 interrupted (Ctrl-C), 141 output pipe closed.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # help text is plain: a [settings.NAME] in it is not markup
)
app.command("probe", no_args_is_help=False)(probe_command)
app.command("compare")(compare_command)
app.add_typer(baseline_app, name="baseline")
app.command("check")(check_command)
app.command("diff")(diff_command)
app.command("plot")(plot_command)
app.command("train")(train_command)
app.command("explain")(explain_command)
app.add_typer(guard_app, name="guard")
app.add_typer(models_cmd.app, name="models")


def _version(value: bool) -> None:
    if value:
        print(f"repcheck {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    pass


def main() -> None:
    """Console entry point (`repcheck`, `python -m repcheck`).

    Before anything imports torch, OpenMP gets the thread policy of ``repcheck.threads``.
    Once the command has finished, run the exit handlers, flush, and leave with os._exit:
    the interpreter's own teardown of torch and transformers objects takes about a second
    and does nothing useful (every output file is already written and closed).
    """
    mark_start()
    prepare_openmp_env()
    try:
        app()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    if not isinstance(code, int):
        if code is not None:
            print(code, file=sys.stderr)
        code = 0 if code is None else 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be delivered
            code = EXIT_BROKEN_PIPE if code == 0 else code
    os._exit(code)
