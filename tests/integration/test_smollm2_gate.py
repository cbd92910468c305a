"""The gate on the built-in model: a baseline passes against itself."""

import json

import pytest
from typer.testing import CliRunner

from repcheck.cli.app import app

pytestmark = pytest.mark.slow


def test_builtin_baseline_passes_against_itself(smol, tmp_path):
    suite = tmp_path / "suite.toml"
    suite.write_text(
        '[probe]\nsentences = "wiki_en"\nlimit = 16\nrepeats = 6\n\n'
        '[compare]\nprompts = "open_ended"\nlimit = 4\nsettings = ["greedy"]\nmax_new_tokens = 24\n'
    )
    baseline = tmp_path / "baseline.json"
    runner = CliRunner()
    r = runner.invoke(app, ["baseline", "create", "--suite", str(suite), "-o", str(baseline), "--quiet"])
    assert r.exit_code == 0, r.output
    doc = json.loads(baseline.read_text())
    assert doc["model"]["sha256"] == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    assert doc["metrics"]["probe.tp_last"]["value"] > doc["metrics"]["probe.tp_first"]["value"]
    r = runner.invoke(app, ["check", "--baseline", str(baseline), "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["verdict"] == "pass" and report["counts"]["regressed"] == 0 and not report["warnings"]
