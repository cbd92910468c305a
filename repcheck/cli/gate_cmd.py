"""`repcheck baseline init|create` and `repcheck check`: the CI regression gate.

Exit codes of `check`: 0 pass, 3 regression, 2 bad input, 1 internal error.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from ..errors import RepcheckError
from . import options as opt
from .backend_options import ModelLoader, with_backend_options
from .console import err_console, handle_errors, info, print_json, progress_callback, stdout_console, warn

baseline_app = typer.Typer(
    help="Write a suite, or measure a model into a baseline for `repcheck check`.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
SuiteOpt = Annotated[
    Path | None,
    typer.Option("--suite", help="Suite TOML (see `repcheck baseline init`); default: the built-in default suite."),
]


@baseline_app.command("init")
@handle_errors
def init(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the suite.")] = Path(
        "repcheck-suite.toml"
    ),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented default suite."""
    from ..gate.suite import DEFAULT_SUITE_TOML
    from ..outputs import check_writable_file, write_text_file

    check_writable_file(output, "output")
    if output.exists() and not force:
        raise RepcheckError(f"{output} exists; pass --force to overwrite it")
    write_text_file(output, DEFAULT_SUITE_TOML)
    info(f"wrote {output}; edit it, then run `repcheck baseline create --suite {output} -o baseline.json`")


@baseline_app.command("create")
@handle_errors
@with_backend_options
def create(
    model: opt.ModelOpt = opt.DEFAULT,
    suite: SuiteOpt = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Baseline JSON to write.")] = Path("baseline.json"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing baseline file.")] = False,
    load: ModelLoader = ModelLoader(),
    json_: opt.JsonOpt = False,
    quiet: opt.QuietOpt = False,
) -> None:
    """Run the suite on a model and write a baseline: every metric with its bootstrap standard error."""
    from ..backends.registry import check_model_spec
    from ..gate import create_baseline, suite_inputs
    from ..gate.suite import Suite, load_suite
    from ..outputs import check_distinct, check_writable_file, write_text_file
    from ..provenance import dumps

    the_suite = load_suite(suite) if suite is not None else Suite()
    inputs = suite_inputs(the_suite)  # its sentence, prompt and legit files must be readable before a model loads
    check_distinct({"suite": suite}, {"output": output})
    check_writable_file(output, "output")
    if output.exists() and not force:
        raise RepcheckError(f"{output} exists; pass --force to replace it", param="output")
    check_model_spec(load.backend, model)
    _check_legit_models(inputs, model, load.backend)
    with progress_callback(quiet) as cb:
        lm = load.load(model, dtype=the_suite.dtype, progress=cb)
        doc = create_baseline(lm, the_suite, cb)
    text = dumps(doc)
    write_text_file(output, text + "\n", "output")
    if json_:
        print_json(text)
    elif not quiet:
        info(f"wrote {output}: {len(doc['metrics'])} metrics of {model} ({lm.dtype}, {lm.device})")


@handle_errors
@with_backend_options
def check_command(
    model: opt.ModelOpt = opt.DEFAULT,
    baseline: Annotated[Path, typer.Option("--baseline", help="Baseline JSON from `repcheck baseline create`.")] = Path(
        "baseline.json"
    ),
    suite: Annotated[
        Path | None,
        typer.Option("--suite", help="Optional: must match the baseline's own suite (which is what runs)."),
    ] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Write the JSON report here.")] = None,
    markdown: Annotated[
        Path | None,
        typer.Option("--markdown", help="Write a Markdown report (also appended to $GITHUB_STEP_SUMMARY when set)."),
    ] = None,
    junit: Annotated[Path | None, typer.Option("--junit", help="Write JUnit XML, one testcase per metric.")] = None,
    allow_env_change: Annotated[
        bool,
        typer.Option(
            "--allow-env-change", help="Check even if the dtype, backend or suite differs from the baseline's (warns)."
        ),
    ] = False,
    dtype: Annotated[
        opt.Dtype | None,
        typer.Option("--dtype", help="Override the suite's dtype (an environment change: needs --allow-env-change)."),
    ] = None,
    load: ModelLoader = ModelLoader(),
    json_: opt.JsonOpt = False,
    quiet: opt.QuietOpt = False,
) -> None:
    """Measure a model with a baseline's suite and fail on any regression beyond tolerance.

    Exit codes: 0 pass, 3 regression (every regressed metric is reported), 2 bad input (missing or corrupt baseline, unreadable schema version, suite, dtype or backend mismatch), 1 internal error.
    """
    from ..backends.registry import check_model_spec
    from ..gate import check, load_baseline, preflight
    from ..gate.suite import load_suite
    from ..outputs import check_distinct, check_writable_file, write_text_file

    check_distinct({"baseline": baseline, "suite": suite}, {"report": report, "markdown": markdown, "junit": junit})
    doc, base_suite = load_baseline(baseline)
    given = load_suite(suite) if suite is not None else None
    run_dtype = dtype.value if dtype else base_suite.dtype
    warnings = preflight(
        doc,
        base_suite,
        given,
        allow_env_change,
        {"dtype": load.run_dtype(run_dtype), "backend": load.backend},
    )
    for path, param in ((report, "report"), (markdown, "markdown"), (junit, "junit")):
        if path is not None:
            check_writable_file(path, param)
    check_model_spec(load.backend, model)
    _check_legit_models(doc.get("inputs") or {}, model, load.backend)
    with progress_callback(quiet) as cb:
        lm = load.load(model, dtype=run_dtype, progress=cb)
        result = check(
            lm,
            doc,
            base_suite,
            baseline_path=str(baseline),
            allow_env_change=allow_env_change,
            warnings=warnings,
            progress=cb,
        )
    if report is not None:
        write_text_file(report, result.to_json() + "\n", "report")
    md = result.to_markdown()
    if markdown is not None:
        write_text_file(markdown, md, "markdown")
    if junit is not None:
        write_text_file(junit, result.to_junit(), "junit")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        try:
            with open(summary, "a", encoding="utf-8") as fh:
                fh.write(md + "\n")
        except OSError as err:
            warn(f"could not append to $GITHUB_STEP_SUMMARY: {err}")
    if json_:
        print_json(result.to_json())
    else:
        _print(result, quiet)
    raise typer.Exit(result.exit_code)


def _check_legit_models(inputs: dict, model: str, backend: str) -> None:
    """A suite's legit cases with conversations need a model with a chat template."""
    if inputs.get("legit"):
        from ..legit.suite import suite_from_dicts

        opt.check_legit_models(suite_from_dicts("the suite's legit cases", inputs["legit"]), [model], backend)


def _print(result, quiet: bool) -> None:
    from rich.markup import escape
    from rich.table import Table

    from ..gate.report import fmt

    console = stdout_console()
    for w in result.warnings:
        warn(w)
    if not quiet:
        console.print(escape(f"{result.model.get('spec')} vs baseline {result.baseline_path}"), soft_wrap=True)
        table = Table()
        for col in ("metric", "better", "baseline", "current", "delta", "tolerance", "status"):
            table.add_column(col, justify="left" if col in ("metric", "better", "status") else "right", overflow="fold")
        style = {"regressed": "bold red", "improved": "green", "pass": "", "reported": "dim"}
        for m in result.metrics:
            table.add_row(
                escape(m.name),
                m.direction or "–",
                fmt(m.baseline),
                fmt(m.current),
                fmt(m.delta, signed=True),
                f"{fmt(m.tolerance)} ({m.tolerance_source})",
                f"[{style[m.status]}]{m.status}[/]" if style[m.status] else m.status,
            )
        console.print(table)
    color = "bold red" if result.verdict == "regressed" else "bold green"
    console.print(f"[{color}]{escape(result.headline())}[/]", highlight=False, soft_wrap=True)


__all__ = ["baseline_app", "check_command", "err_console"]
