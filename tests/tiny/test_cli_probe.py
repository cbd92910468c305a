"""`repcheck probe` through CliRunner: JSON on stdout, one-line errors, exit codes, files."""

import json
import os
import re
import stat

import numpy as np
import pytest
from cli_helpers import AT_LEAST_1, assert_usage_error
from typer.testing import CliRunner

from repcheck.cli.app import app

SENTENCE = "The committee approved the new budget after a long debate."
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_json_document(tiny_llama):
    r = run("probe", SENTENCE, "--model", tiny_llama, "--repeats", 4, "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)  # stdout holds the JSON document and nothing else
    assert doc["schema_version"] == 2 and doc["repeats"] == 4 and doc["dtype"] == "float32"
    assert doc["model"]["spec"] == str(tiny_llama) and len(doc["model"]["sha256"]) == 64
    assert [row["n"] for row in doc["per_copy"]] == [0, 1, 2, 3]
    assert set(doc["per_copy"][1]) >= {"n", "tp", "mp", "ip", "wr", "ar"}
    (s,) = doc["sentences"]
    assert s["text"] == SENTENCE and len(s["p"]) == 4 and len(s["p"][0]) == len(s["token_ids"])
    assert set(doc["summary"]) >= {"tp_first", "tp_last", "tp_mean_repeats", "tp_rise", "ip_last", "wr_last"}
    assert doc["prefix_ids"] and doc["device"] == "cpu"


def test_same_command_same_numbers(tiny_gpt2):
    a = json.loads(run("probe", SENTENCE, "-m", tiny_gpt2, "-k", 3, "--json").stdout)
    b = json.loads(run("probe", SENTENCE, "-m", tiny_gpt2, "-k", 3, "--json").stdout)
    assert a["per_copy"] == b["per_copy"] and a["sentences"] == b["sentences"]


def test_human_table(tiny_gpt2):
    r = run("probe", SENTENCE, "-m", tiny_gpt2, "-k", 3)
    assert r.exit_code == 0, r.output
    assert "TP" in r.stdout and "WR" in r.stdout and "tokens/s" in r.stdout


def test_out_dir_gets_exactly_the_files(tiny_llama, tmp_path):
    out = tmp_path / "runs" / "tiny"
    r = run("probe", SENTENCE, "-m", tiny_llama, "-k", 3, "--out", out, "--token", "budget", "--format", "svg")
    assert r.exit_code == 0, r.output
    assert sorted(os.listdir(out)) == [
        ".repcheck-output.json",
        "bars.svg",
        "curve.svg",
        "per_copy.csv",
        "per_sentence.csv",
        "per_token.csv",
        "summary.json",
    ]
    assert sorted(os.listdir(tmp_path / "runs")) == ["tiny"]  # no temp dirs left behind
    doc = json.loads((out / "summary.json").read_text())
    import pandas as pd

    tokens = pd.read_csv(out / "per_token.csv")
    assert len(tokens) == 3 * len(doc["sentences"][0]["token_ids"])
    assert list(pd.read_csv(out / "per_copy.csv")["n"]) == [0, 1, 2]


def test_sentence_file_set(tiny_gpt2, tmp_path):
    f = tmp_path / "set.txt"
    f.write_text("# set\nParis is the capital of France.\n\nWater boils.\nThe general led his army.\n")
    r = run("probe", "--file", f, "-m", tiny_gpt2, "-k", 3, "--json", "--batch-size", 2)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert [s["text"] for s in doc["sentences"]] == [
        "Paris is the capital of France.",
        "Water boils.",
        "The general led his army.",
    ]
    # the set's mean and 95% interval at copy 2, recomputed from the per-sentence values with scipy
    from scipy import stats

    tps = [s["per_copy"][2]["tp"] for s in doc["sentences"]]
    lo, hi = stats.t.interval(0.95, len(tps) - 1, loc=np.mean(tps), scale=stats.sem(tps))
    assert doc["per_copy"][2]["tp"] == pytest.approx(np.mean(tps))
    assert doc["per_copy"][2]["ci95"]["tp"] == pytest.approx([lo, hi], abs=1e-3)


def test_random_sentences(tiny_llama):
    r = run("probe", "--random", 3, "--length", 4, "--seed", 7, "-m", tiny_llama, "-k", 2, "--json")
    doc = json.loads(r.stdout)
    assert [len(s["token_ids"]) for s in doc["sentences"]] == [4, 4, 4]
    assert doc["settings"]["random"] == {"n": 3, "length": 4, "seed": 7, "full_vocabulary": False}


@pytest.mark.parametrize(
    "args,needle",
    [
        (["probe"], "give a SENTENCE"),
        (["probe", ""], "empty"),
        (["probe", "   "], "empty"),
        (["probe", "x", "--repeats", "0"], re.compile("--repeats' / '-k': .*(" + AT_LEAST_1.pattern + ")")),
        (["probe", "x", "--batch-size", "0"], AT_LEAST_1),
        (["probe", "x", "--file", "f.txt"], "only one of"),
        (["probe", "--file", "/nonexistent/f.txt"], "cannot read"),
        (["probe", "x", "--model", "no-such-alias"], "not a built-in alias"),
        (["probe", "x", "--model", "./no/such/dir"], "no such file"),
        (["probe", "x", "--model", "gpt2"], "hub is unreachable"),
    ],
)
def test_bad_input_without_a_model(args, needle):
    assert_usage_error(run(*args), needle)


def test_bad_input_with_a_model(tiny_gpt2, tiny_bert, tmp_path):
    assert_usage_error(run("probe", SENTENCE, "-m", tiny_gpt2, "-k", 500), "largest K that fits is")
    assert_usage_error(run("probe", SENTENCE, "-m", tiny_bert), "not a causal language model")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n# nothing\n")
    assert_usage_error(run("probe", "--file", empty, "-m", tiny_gpt2), "no sentences")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf at all")
    assert_usage_error(run("probe", SENTENCE, "-m", bad), "GGUF")


def test_bad_output_requests_leave_no_files(tiny_gpt2, tmp_path):
    out = tmp_path / "out"
    assert_usage_error(run("probe", SENTENCE, "-m", tiny_gpt2, "--out", out, "--token", "zebra"), "not a token")
    assert_usage_error(run("probe", SENTENCE, "-m", tiny_gpt2, "--out", out, "--position", 99), "outside")
    assert_usage_error(run("probe", "--file", __file__, "-m", tiny_gpt2, "--token", "x"), "single sentence")
    assert not out.exists()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert_usage_error(run("probe", SENTENCE, "-m", tiny_gpt2, "--out", blocker / "sub"), "not a directory")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_out(tiny_gpt2, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        assert_usage_error(run("probe", SENTENCE, "-m", tiny_gpt2, "--out", locked / "o"), "not writable")
    finally:
        locked.chmod(stat.S_IRWXU)


def test_internal_error_exits_1(tiny_gpt2, monkeypatch):
    import repcheck.backends.hf as hf

    def boom(*a, **k):
        raise ZeroDivisionError("bug")

    monkeypatch.setattr(hf.HFBackend, "score", boom)
    r = run("probe", SENTENCE, "-m", tiny_gpt2, "-k", 2)
    assert r.exit_code == 1 and "internal error" in r.stderr and "Traceback" not in r.output


def test_console_entry_point_exit_codes_and_output(tiny_gpt2, tmp_path):
    """`python -m repcheck` leaves through os._exit after a model run: output and codes must survive."""
    import subprocess
    import sys

    env = {**os.environ, "REPCHECK_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "repcheck", "probe", SENTENCE, "-m", str(tiny_gpt2), "-k", "2", "--json"]
    ok = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["repeats"] == 2
    too_long = subprocess.run(cmd[:-3] + ["-k", "500"], capture_output=True, text=True, env=env)
    assert too_long.returncode == 2 and too_long.stderr.startswith("error:") and too_long.stdout == ""
    early = subprocess.run([sys.executable, "-m", "repcheck", "probe"], capture_output=True, text=True, env=env)
    assert early.returncode == 2 and "give a SENTENCE" in early.stderr
