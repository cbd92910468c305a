"""Running the CLI in tests, and the error contract every bad input must keep."""

import re

from typer.testing import CliRunner

from repcheck.cli.app import app

runner = CliRunner()


def run(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], env=env)


def assert_usage_error(result, *needles):
    """Exit 2, exactly one line on stderr starting with "error:", no traceback, nothing on stdout."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "Traceback" not in result.output and result.stdout == "", result.output
    for needle in needles:
        found = needle.search(lines[0]) if isinstance(needle, re.Pattern) else needle in lines[0]
        assert found, (needle, lines[0])
    return lines[0]


#: a range error in the wording of any Typer in the supported range (newer: "Input should be
#: greater than or equal to 1"; older, Click's: "0 is not in the range x>=1")
AT_LEAST_1 = re.compile(r"greater than or equal to 1|not in the range x>=1")
