"""The error contract on a second attacker's pass (issue 19): every case here failed once.
Outputs that are inputs, a baseline that gates on NaN, empty directories left by failed runs,
a dangling link as --out, misattributed errors, a truncated resume file, shipped sets by name."""

import json
import math

from cli_helpers import assert_usage_error, run
from tiny_models import CORPUS

SUITE = """
dtype = "float32"
seed = 0

[probe]
sentences = "sentences.txt"
repeats = 3
batch_size = 4

[gate]
bootstrap = 50
"""


def _suite(tmp_path):
    (tmp_path / "sentences.txt").write_text("\n".join(CORPUS[:3]) + "\n", encoding="utf-8")
    path = tmp_path / "suite.toml"
    path.write_text(SUITE)
    return path


def _baseline(tmp_path, tiny_llama):
    suite = _suite(tmp_path)
    out = tmp_path / "baseline.json"
    res = run("baseline", "create", "--model", tiny_llama, "--suite", suite, "-o", out, "-q")
    assert res.exit_code == 0, res.output
    return suite, out


# ---- outputs that are inputs, or each other -----------------------------------------------------
def test_outputs_that_are_inputs_are_refused(tmp_path, tiny_llama):
    suite, baseline = _baseline(tmp_path, tiny_llama)
    before = baseline.read_bytes()
    res = run("check", "--model", tiny_llama, "--baseline", baseline, "--report", baseline)
    assert_usage_error(res, "--report", "is an input of this run (--baseline)")
    res = run("check", "--model", tiny_llama, "--baseline", baseline, "--markdown", tmp_path / "x", "--junit",
              tmp_path / "x")  # fmt: skip
    assert_usage_error(res, "--junit", "is another output of this run (--markdown)")
    res = run("check", "--model", tiny_llama, "--baseline", baseline, "--suite", suite, "--junit",
              tmp_path / "." / "suite.toml")  # fmt: skip
    assert_usage_error(res, "--junit", "(--suite)")
    assert_usage_error(run("baseline", "create", "--model", tiny_llama, "--suite", suite, "-o", suite), "(--suite)")
    assert baseline.read_bytes() == before and suite.read_text() == SUITE


def test_a_link_to_an_input_is_the_input(tmp_path, tiny_llama):
    suite, baseline = _baseline(tmp_path, tiny_llama)
    link = tmp_path / "link.json"
    link.symlink_to(baseline)
    assert_usage_error(run("check", "--model", tiny_llama, "--baseline", baseline, "--report", link), "(--baseline)")


def test_baseline_create_does_not_replace_a_file_without_force(tmp_path, tiny_llama):
    suite, baseline = _baseline(tmp_path, tiny_llama)
    before = baseline.read_bytes()
    res = run("baseline", "create", "--model", tiny_llama, "--suite", suite, "-o", baseline, "-q")
    assert_usage_error(res, "exists; pass --force")
    assert baseline.read_bytes() == before
    res = run("baseline", "create", "--model", tiny_llama, "--suite", suite, "-o", baseline, "-q", "--force")
    assert res.exit_code == 0, res.output


# ---- a baseline that gates on NaN ---------------------------------------------------------------
def test_a_nan_gated_value_is_a_corrupt_baseline(tmp_path, tiny_llama):
    _, baseline = _baseline(tmp_path, tiny_llama)
    doc = json.loads(baseline.read_text())
    gated = next(name for name, m in doc["metrics"].items() if m.get("direction"))
    for bad in (math.nan, None, math.inf):
        doc["metrics"][gated]["value"] = bad
        baseline.write_text(json.dumps(doc, allow_nan=True))
        res = run("check", "--model", tiny_llama, "--baseline", baseline)
        assert_usage_error(res, f"gated metric {gated!r}", "not a finite number")


# ---- no empty directories, no dangling links ----------------------------------------------------
def test_a_failed_plot_leaves_no_output_directory(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "summary.json").write_text(json.dumps({"schema_version": 2, "kind": "probe", "sentences": [{}]}))
    res = run("plot", run_dir, "-o", tmp_path / "new" / "figs")
    assert_usage_error(res, "malformed")
    assert not (tmp_path / "new").exists()


def test_a_dangling_link_as_out_is_refused_before_any_work(tmp_path, tiny_llama):
    out = tmp_path / "out"
    out.symlink_to(tmp_path / "missing" / "dir")
    assert_usage_error(run("probe", "Water boils.", "--model", tiny_llama, "--out", out), "does not exist")
    report = tmp_path / "report.json"
    report.symlink_to(tmp_path / "missing.json")
    _, baseline = _baseline(tmp_path, tiny_llama)
    assert_usage_error(run("check", "--model", tiny_llama, "--baseline", baseline, "--report", report), "link")


# ---- errors that name the right cause ----------------------------------------------------------
def test_too_many_threads_is_a_range_error_not_a_corrupt_cache(tiny_llama):
    res = run("probe", "Water boils.", "--model", tiny_llama, "--threads", "100000")
    line = assert_usage_error(res, "--threads", "100000")
    assert "cache" not in line and "download" not in line


def test_a_sentence_longer_than_the_window_is_not_blamed_on_the_prefix(tiny_llama):
    long = " ".join(["Paris is the capital of France."] * 40)  # far beyond the tiny model's 128 positions
    line = assert_usage_error(run("probe", long, "--model", tiny_llama, "-k", "2"), "shorten the sentence")
    assert "prefix" not in line
    res = run("probe", "Water boils.", "--model", tiny_llama, "-k", "2", "--prefix", long)
    assert_usage_error(res, "--prefix", "shorten the prefix")


def test_resume_from_an_unreadable_train_config_is_a_usage_error(tmp_path, tiny_llama):
    out = tmp_path / "run"
    (out / "checkpoints" / "checkpoint-2").mkdir(parents=True)
    (out / "checkpoints" / "checkpoint-2" / "trainer_state.json").write_text("{}")
    for text in ('{"method": "ditto", "model"', "[1, 2]"):
        (out / "train_config.json").write_text(text)
        res = run("train", "--model", tiny_llama, "--out", out, "--resume", "--steps", "2")
        assert_usage_error(res, "train_config.json")


def test_help_lists_every_exit_code():
    text = " ".join(run("--help").output.split())
    for code in ("0 success", "2 bad input", "1 internal error", "3 regression", "130 interrupted", "141 output pipe"):
        assert code in text, code


# ---- shipped sets by name ----------------------------------------------------------------------
def test_shipped_sets_are_named_without_a_path(tiny_llama, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no sample_prompts/ here, as for a wheel user
    res = run("probe", "--file", "wiki_en", "--limit", "2", "-k", "2", "--model", tiny_llama, "--json")
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.stdout)["sentences"]) == 2
    res = run("probe", "--file", "wiki_fr", "--model", tiny_llama)
    assert_usage_error(res, "shipped sets are named without a path: wiki_en, zh, open_ended")
