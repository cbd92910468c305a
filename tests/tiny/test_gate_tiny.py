"""The regression gate on tiny checkpoints: A passes against itself, B (fine-tuned on repeated text) regresses."""

import json
import xml.etree.ElementTree as ET

import pytest
from tiny_models import CORPUS
from typer.testing import CliRunner

from repcheck.cli.app import app

runner = CliRunner()
SUITE = """
dtype = "float32"
seed = 0

[probe]
sentences = "sentences.txt"
repeats = 4
batch_size = 4

[gate]
k = 3.0
floor = 0.01
bootstrap = 200
"""
COMPARE_BLOCK = """
[compare]
prompts = "sentences.txt"
limit = 2
settings = ["greedy", "repetition_penalty=1.3"]
max_new_tokens = 6
"""


def cli(*args):
    return runner.invoke(app, [str(a) for a in args])


def write_suite(directory, text=SUITE):
    (directory / "sentences.txt").write_text("\n".join(CORPUS[:5]) + "\n", encoding="utf-8")
    path = directory / "suite.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="session")
def suite(tmp_path_factory):
    """Read-only: tests that edit a suite or its files make their own with write_suite."""
    return write_suite(tmp_path_factory.mktemp("suite"))


@pytest.fixture(scope="session")
def baseline_a(tiny_llama, suite):
    out = suite.parent / "baseline.json"
    r = cli("baseline", "create", "--model", tiny_llama, "--suite", suite, "-o", out, "--quiet")
    assert r.exit_code == 0, r.output
    return out


def test_baseline_document(baseline_a, tiny_llama):
    doc = json.loads(baseline_a.read_text())
    assert doc["schema_version"] == 2 and doc["kind"] == "baseline"
    assert doc["model"]["spec"] == str(tiny_llama) and len(doc["model"]["sha256"]) == 64
    assert {"repcheck_version", "torch_version", "transformers_version", "python_version"} <= set(doc["versions"])
    assert doc["environment"] == {"device": "cpu", "dtype": "float32", "backend": "hf"}
    assert doc["bootstrap"]["resamples"] == 200 and doc["suite"]["probe"]["repeats"] == 4
    m = doc["metrics"]["probe.tp_last"]
    assert m["direction"] == "lower" and m["n"] == 5 and m["stderr"] > 0
    assert m["tolerance"] == pytest.approx(max(3 * m["stderr"], 0.01))
    assert doc["metrics"]["probe.tp_first"]["direction"] is None


def test_same_command_twice_gives_identical_numbers(tiny_llama, suite, tmp_path, baseline_a):
    again = tmp_path / "again.json"
    cli("baseline", "create", "--model", tiny_llama, "--suite", suite, "-o", again, "--quiet")
    assert json.loads(again.read_text())["metrics"] == json.loads(baseline_a.read_text())["metrics"]


def test_a_against_its_own_baseline_passes(tiny_llama, baseline_a, tmp_path):
    md, junit, report = tmp_path / "r.md", tmp_path / "j.xml", tmp_path / "r.json"
    r = cli(
        "check", "--model", tiny_llama, "--baseline", baseline_a, "--markdown", md, "--junit", junit, "--report", report
    )
    assert r.exit_code == 0, r.output
    assert "PASS" in r.stdout
    doc = json.loads(report.read_text())
    assert doc["verdict"] == "pass" and doc["exit_code"] == 0 and doc["counts"]["regressed"] == 0
    assert all(m["delta"] == 0 for m in doc["metrics"] if m["delta"] is not None)
    assert md.read_text().startswith("## ✅ repcheck check: PASS")
    root = ET.parse(junit).getroot()
    assert len(list(root.iter("testcase"))) == len(doc["metrics"])
    assert not list(root.iter("failure"))


def test_fine_tuned_on_repeats_regresses(tiny_llama_repeated, baseline_a, tmp_path, monkeypatch):
    summary = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    md, junit = tmp_path / "r.md", tmp_path / "j.xml"
    r = cli(
        "check", "--model", tiny_llama_repeated, "--baseline", baseline_a, "--json", "--markdown", md, "--junit", junit
    )
    assert r.exit_code == 3, r.output
    doc = json.loads(r.stdout)
    regressed = {m["name"] for m in doc["metrics"] if m["status"] == "regressed"}
    assert {"probe.tp_last", "probe.tp_mean_repeats"} <= regressed, regressed
    assert doc["verdict"] == "regressed" and doc["exit_code"] == 3
    for name in regressed:  # every regression is reported, not only the first
        assert name in doc["headline"]
    text = md.read_text()
    assert text.startswith("## ❌ repcheck check: REGRESSED") and "### Regressed" in text and "<details>" in text
    assert summary.read_text() == text + "\n"  # appended to $GITHUB_STEP_SUMMARY
    root = ET.parse(junit).getroot()
    failed = {tc.get("name") for tc in root.iter("testcase") if tc.find("failure") is not None}
    assert failed == regressed and len(list(root.iter("testcase"))) == len(doc["metrics"])
    assert root.get("failures") == str(len(regressed))


def test_compare_block_metrics(tiny_llama, tmp_path):
    suite = write_suite(tmp_path, SUITE + COMPARE_BLOCK)
    out = tmp_path / "b.json"
    r = cli("baseline", "create", "--model", tiny_llama, "--suite", suite, "-o", out, "--quiet")
    assert r.exit_code == 0, r.output
    metrics = json.loads(out.read_text())["metrics"]
    assert {"compare.greedy.seq_rep_4", "compare.repetition_penalty=1.3.loop_rate", "compare.greedy.distinct_2"} <= set(
        metrics
    )
    assert metrics["compare.greedy.distinct_2"]["direction"] == "higher"
    r = cli("check", "--model", tiny_llama, "--baseline", out, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["counts"]["regressed"] == 0


def test_environment_change_is_refused_unless_allowed(tiny_llama, baseline_a):
    r = cli("check", "--model", tiny_llama, "--baseline", baseline_a, "--dtype", "bfloat16")
    assert r.exit_code == 2 and "dtype differs" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = cli(
        "check", "--model", tiny_llama, "--baseline", baseline_a, "--dtype", "bfloat16", "--allow-env-change", "--json"
    )
    report = json.loads(r.stdout)
    # the check ran in bfloat16; whatever bf16 noise did, the verdict, the counts and the exit code agree
    assert report["current"]["environment"]["dtype"] == "bfloat16"
    assert r.exit_code == report["exit_code"] == (3 if report["counts"]["regressed"] else 0), r.output
    assert any("dtype differs" in w for w in report["warnings"])
    # a backend change is refused the same way, before any server is contacted
    r = cli("check", "--baseline", baseline_a, "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1", "-m", "x")
    assert r.exit_code == 2 and "backend differs: baseline hf, now openai" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_suite_mismatch(tiny_llama, baseline_a, suite, tmp_path):
    other = tmp_path / "other.toml"
    other.write_text(SUITE.replace("repeats = 4", "repeats = 5"))
    r = cli("check", "--model", tiny_llama, "--baseline", baseline_a, "--suite", other)
    assert r.exit_code == 2 and "differs from the baseline's suite" in r.stderr
    r = cli("check", "--model", tiny_llama, "--baseline", baseline_a, "--suite", suite)
    assert r.exit_code == 0, r.output


def test_unwritable_report_paths(tiny_llama, baseline_a, tmp_path):
    r = cli("check", "--model", tiny_llama, "--baseline", baseline_a, "--junit", tmp_path)
    assert r.exit_code == 2 and "is a directory" in r.stderr


def test_exit_code_3_through_the_console_entry_point(tiny_llama_repeated, baseline_a, tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "REPCHECK_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "repcheck", "check", "-m", str(tiny_llama_repeated), "--baseline", str(baseline_a)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert r.returncode == 3, r.stderr
    assert "REGRESSED" in r.stdout


def test_check_measures_the_baselines_own_texts(tiny_llama, tmp_path):
    """Editing or moving the sentence file after the baseline changes nothing but a warning."""
    suite = write_suite(tmp_path)
    baseline_a = tmp_path / "baseline.json"
    assert cli("baseline", "create", "--model", tiny_llama, "--suite", suite, "-o", baseline_a, "-q").exit_code == 0
    doc = json.loads(baseline_a.read_text())
    assert doc["inputs"]["sentences"] == CORPUS[:5] and doc["inputs"]["prompts"] == []
    (tmp_path / "sentences.txt").write_text("Something else entirely.\n")
    r = cli("check", "--model", tiny_llama, "--baseline", baseline_a, "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["counts"]["regressed"] == 0 and all(m["delta"] in (0, None) for m in report["metrics"])
    assert any("changed since the baseline" in w for w in report["warnings"])
    moved = tmp_path / "elsewhere" / "baseline.json"
    moved.parent.mkdir()
    moved.write_text(baseline_a.read_text())
    r = cli("check", "--model", tiny_llama, "--baseline", moved, "--json")
    assert r.exit_code == 0, r.output
