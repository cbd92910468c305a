"""Generate docs/cli.md from the commands' own --help text (a test fails when it drifts).

python -m repcheck.cli.docs docs/cli.md
"""

from __future__ import annotations

import sys
from pathlib import Path

COMMANDS = [
    [],
    ["probe"],
    ["compare"],
    ["diff"],
    ["baseline"],
    ["baseline", "init"],
    ["baseline", "create"],
    ["check"],
    ["plot"],
    ["train"],
    ["explain"],
    ["models"],
    ["models", "list"],
    ["models", "pull"],
]
WIDTH = 100


def typer_version() -> str:
    from importlib.metadata import version

    return version("typer")


def render() -> str:
    from typer.testing import CliRunner

    from .app import app

    runner = CliRunner()
    parts = [
        "# repcheck command-line reference",
        "",
        "Generated from `--help` by `python -m repcheck.cli.docs docs/cli.md`; a test fails when it drifts.",
        f"Rendered with Typer {typer_version()} (other Typer versions in the supported range lay help out",
        "slightly differently; the options are the same).",
        "",
    ]
    for command in COMMANDS:
        result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": str(WIDTH), "TERMINAL_WIDTH": str(WIDTH)})
        if result.exit_code != 0:
            raise RuntimeError(f"repcheck {' '.join(command)} --help failed: {result.output}")
        parts += [f"## repcheck {' '.join(command)}".rstrip(), "", "```", result.stdout.rstrip(), "```", ""]
    return "\n".join(parts)


def main() -> None:
    text = render()
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
