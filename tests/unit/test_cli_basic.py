"""CLI surface that needs no model: help, version, models list, import cost."""

import json
import subprocess
import sys

from typer.testing import CliRunner

from repcheck import __version__
from repcheck.cli.app import app

runner = CliRunner()


def test_help_lists_commands_and_exit_codes():
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0
    for word in ("probe", "models", "Exit codes"):
        assert word in r.stdout


def test_probe_help_mentions_dtype_tradeoff():
    r = runner.invoke(app, ["probe", "--help"])
    assert r.exit_code == 0 and "bfloat16" in r.stdout and "--repeats" in r.stdout


def test_version():
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and __version__ in r.stdout


def test_help_does_not_import_torch():
    code = "import sys; from repcheck.cli.app import app; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_models_list_json():
    r = runner.invoke(app, ["models", "list", "--json"])
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    (m,) = doc["models"]
    assert m["alias"] == "smollm2-135m" and m["gguf_bytes"] == 98_362_432 and m["converted"] is False


def test_models_pull_unknown_alias():
    r = runner.invoke(app, ["models", "pull", "nope"])
    assert r.exit_code == 2 and "unknown alias" in r.stderr


def test_python_dash_m():
    out = subprocess.run([sys.executable, "-m", "repcheck", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"repcheck {__version__}"


def test_help_shows_no_bool_metavars_and_every_backend_option():
    """Flags (--json, --lora, --device-map-auto) take no value: no '<bool>' metavar anywhere;
    every command that loads a model on a backend offers the same backend options."""
    from repcheck.cli.backend_options import PARAMS
    from repcheck.cli.docs import COMMANDS

    flags = {"--backend", "--base-url", "--tokenizer", "--max-model-len", "--device-map-auto", "--timeout"}
    for command in COMMANDS:
        r = runner.invoke(app, [*command, "--help"])
        assert r.exit_code == 0, (command, r.output)
        assert "<bool>" not in r.stdout, command
        if command in (["probe"], ["compare"], ["diff"], ["baseline", "create"], ["check"]):
            assert all(flag in r.stdout for flag in flags), command
    assert {"device", "threads", "backend", "base_url", "timeout", "retries", "concurrency"} <= set(PARAMS)
