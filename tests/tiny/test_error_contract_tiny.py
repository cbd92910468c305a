"""The error contract once a model runs: outputs never mixed or half-written, markup-proof text,
a closed pipe, progress on stderr, what the terminal shows (issue 11, numbered items)."""

import json
import os
import subprocess
import sys

from cli_helpers import assert_usage_error, run

SENTENCE = "The committee approved the new budget after a long debate."


# ---- 1. markup ------------------------------------------------------------------------------------
def test_a_token_that_looks_like_markup(tiny_gpt2):
    assert_usage_error(run("probe", "The cat sat.", "-m", tiny_gpt2, "--token", "[/b]"), "'[/b]' is not a token")


def test_sentences_with_brackets_print_literally(tiny_gpt2):
    r = run("probe", "[bold]Loud[/bold] and [/] odd.", "-m", tiny_gpt2, "-k", 2)
    assert r.exit_code == 0, r.output
    assert "[bold]Loud[/bold] and [/] odd." in r.stdout


# ---- 2. dry_base=5 with 50 copies: a huge finite penalty, not an overflow --------------------------
def test_dry_with_a_large_base_over_many_copies(tiny_llama):
    r = run(
        "compare",
        "--probe",
        "Water boils.",
        "-k",
        30,
        "-s",
        "dry_multiplier=0.8,dry_base=5",
        "-m",
        tiny_llama,
        "--json",
    )
    assert r.exit_code == 0, r.output
    tp = [row["tp"] for row in json.loads(r.stdout)["settings"][0]["probe"]["per_copy"]]
    assert all(t is not None and 0 <= t <= 1 for t in tp) and tp[-1] < 1e-6


# ---- 2. a closed pipe -------------------------------------------------------------------------------
def test_a_closed_pipe_exits_quietly(tiny_llama, tmp_path):
    f = tmp_path / "many.txt"
    f.write_text("\n".join(["Paris is the capital of France.", "Water boils."] * 300))  # megabytes of JSON
    # no periodic progress line however slow the machine (it would be on stderr, rightly): what is
    # checked is that the hang-up itself prints nothing
    env = {**os.environ, "REPCHECK_CACHE": str(tmp_path / "cache"), "REPCHECK_PROGRESS_INTERVAL": "1e9"}
    cmd = [sys.executable, "-m", "repcheck", "probe", "--file", str(f), "-m", str(tiny_llama), "-k", "6", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.read(100)  # like `| head -c 100`: read a little, then hang up
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait() == 141 and err == "", err


# ---- 4-6. outputs ---------------------------------------------------------------------------------
def test_the_temporary_directory_lives_inside_the_target(tiny_gpt2, tmp_path, monkeypatch):
    """On a mount point, a temporary directory beside the target is on another filesystem and
    the renames fail; inside the target they cannot."""
    import tempfile

    seen = []
    real = tempfile.mkdtemp

    def record(*a, **k):
        seen.append(k.get("dir"))
        return real(*a, **k)

    monkeypatch.setattr(tempfile, "mkdtemp", record)
    out = tmp_path / "area" / "mnt"
    out.mkdir(parents=True)
    assert run("probe", SENTENCE, "-m", tiny_gpt2, "-k", 2, "--out", out).exit_code == 0
    assert seen and all(os.path.samefile(d, out) for d in seen)
    assert sorted(os.listdir(out.parent)) == ["mnt"]


def test_nothing_is_published_unless_everything_is(tiny_gpt2, tmp_path):
    out = tmp_path / "d"
    out.mkdir()
    (out / "per_token.csv").mkdir()  # in the way of one file
    (out / ".repcheck-output.json").write_text('{"kind": "probe", "files": ["per_token.csv"]}')
    assert_usage_error(run("probe", SENTENCE, "-m", tiny_gpt2, "-k", 2, "--out", out), "per_token.csv", "in the way")
    assert sorted(os.listdir(out)) == [".repcheck-output.json", "per_token.csv"]  # nothing else landed


def test_a_rerun_replaces_the_earlier_run_and_leaves_no_stale_file(tiny_gpt2, tmp_path):
    out = tmp_path / "run"
    assert run("compare", "--probe", "Water boils.", "-k", 2, "-m", tiny_gpt2, "--out", out).exit_code == 0
    assert "curves.png" in os.listdir(out)
    assert run("probe", SENTENCE, "-m", tiny_gpt2, "-k", 2, "--out", out, "--format", "svg").exit_code == 0
    files = sorted(os.listdir(out))
    assert "curves.png" not in files and "bars.svg" in files and not [f for f in files if f.endswith(".png")]
    assert json.loads((out / "summary.json").read_text())["kind"] == "probe"
    manifest = json.loads((out / ".repcheck-output.json").read_text())
    assert sorted(manifest["files"]) == [f for f in files if not f.startswith(".")]


def test_overwrite_writes_into_a_foreign_directory_and_keeps_other_files(tiny_gpt2, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "summary.json").write_text("{}")
    assert run("probe", SENTENCE, "-m", tiny_gpt2, "-k", 2, "--out", tmp_path).exit_code == 2
    r = run("probe", SENTENCE, "-m", tiny_gpt2, "-k", 2, "--out", tmp_path, "--overwrite")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "notes.txt").read_text() == "mine" and json.loads((tmp_path / "summary.json").read_text())[
        "kind"
    ] == "probe"


# ---- 8. models list shows real sizes -------------------------------------------------------------
def test_models_list_cleans_stale_temporaries(tmp_path):
    from repcheck.backends.builtin import BUILTIN_MODELS

    dead = int(
        subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout
    )
    m = BUILTIN_MODELS["smollm2-135m"]
    m.dir.mkdir(parents=True)
    (m.dir / f".{m.gguf_name}.tmp-{dead}-x").write_bytes(b"0" * 50_000)
    (m.dir / f".hf.tmp-{dead}-y").mkdir()
    (m.dir / f".hf.tmp-{dead}-y" / "model.safetensors").write_bytes(b"0" * 50_000)
    doc = json.loads(run("models", "list", "--json").stdout)
    assert doc["models"][0]["cache_bytes"] == 0 and list(m.dir.iterdir()) == []


# ---- 16. progress ----------------------------------------------------------------------------------
def test_progress_goes_to_stderr_with_json_and_is_silenced_by_quiet(tiny_gpt2, tmp_path):
    f = tmp_path / "s.txt"
    f.write_text("\n".join(["Paris is the capital of France.", "Water boils.", "The general led his army."]))
    env = {"REPCHECK_PROGRESS_INTERVAL": "0"}
    r = run("probe", "--file", f, "-m", tiny_gpt2, "-k", 2, "--json", "-b", 1, env=env)
    assert r.exit_code == 0 and json.loads(r.stdout)["repeats"] == 2  # stdout: the document only
    assert "probing: 1/3" in r.stderr and "ETA" in r.stderr
    q = run("probe", "--file", f, "-m", tiny_gpt2, "-k", 2, "--json", "-q", env=env)
    assert q.exit_code == 0 and q.stderr == ""


def test_a_long_file_reports_tokenizing_progress(tiny_gpt2_model):
    from repcheck.sentences import encode_sentences

    calls = []
    encode_sentences(
        tiny_gpt2_model.tokenizer, [f"Line {i}." for i in range(3000)], progress=lambda *a: calls.append(a)
    )
    assert calls[0] == ("tokenizing", 1024, 3000) and calls[-1] == ("tokenizing", 3000, 3000)


# ---- 20-21. the terminal ---------------------------------------------------------------------------
def test_the_table_title_is_its_own_line_and_every_column_has_a_header(tiny_gpt2):
    r = run("probe", SENTENCE, "-m", tiny_gpt2, "-k", 2, env={"COLUMNS": "100"})
    lines = r.stdout.splitlines()
    assert SENTENCE in lines[0]  # the whole title on one line, not wrapped into the table width
    assert "0 ── TP ── 1" in r.stdout and "TP first" in r.stdout


def test_piped_output_follows_columns(tiny_gpt2):
    wide = run("probe", SENTENCE, "-m", tiny_gpt2, "-k", 2, env={"COLUMNS": "200"}).stdout
    narrow = run("probe", SENTENCE, "-m", tiny_gpt2, "-k", 2, env={"COLUMNS": "70"}).stdout
    assert max(map(len, narrow.splitlines()[1:])) <= 70 < max(map(len, wide.splitlines()))


def test_compare_shows_long_setting_names_whole_and_counts_prompts_right(tiny_gpt2):
    name = "repetition_penalty=1.3,penalty_last_n=32,presence_penalty=0.5"
    r = run("compare", "Paris is", "-m", tiny_gpt2, "-s", name, "-n", 4, env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "1 prompt ×" in r.stdout and name in r.stdout


def test_intervals_are_clipped_and_say_n(tiny_gpt2, tmp_path):
    f = tmp_path / "two.txt"
    f.write_text("Paris is the capital of France.\nWater boils.\n")
    r = run("probe", "--file", f, "-m", tiny_gpt2, "-k", 3)
    assert r.exit_code == 0
    assert "mean of 2 sentences, TP with its 95% interval" in r.stdout
    assert "[-" not in r.stdout and "only 2 sentences" in r.stderr  # never below 0; warned below N=5


def test_limit_and_replot(tiny_gpt2, tmp_path):
    f = tmp_path / "s.txt"
    f.write_text("\n".join(["Paris is the capital of France.", "Water boils.", "The general led his army."]))
    out = tmp_path / "o"
    r = run("probe", "--file", f, "--limit", 2, "-m", tiny_gpt2, "-k", 2, "--out", out, "--json")
    assert r.exit_code == 0 and len(json.loads(r.stdout)["sentences"]) == 2
    r = run("plot", out, "--format", "svg")
    assert r.exit_code == 0, r.output
    assert {"bars.svg", "curve.svg", "by_initial.svg", "bars.png", "per_token.csv"} <= set(os.listdir(out))
    assert_usage_error(run("plot", tmp_path / "nope"), "no such directory")
    (tmp_path / "x.json").write_text('{"kind": "probe", "schema_version": 1}')
    assert_usage_error(run("plot", tmp_path / "x.json"), "schema_version 1")


def test_no_third_party_progress_bars_leak(tiny_llama, tmp_path):
    """transformers' own tqdm bars ("Loading weights", ...) stay silent, with TQDM and the hub's
    bars left at their defaults: --quiet means nothing at all on stderr."""
    env = {k: v for k, v in os.environ.items() if k not in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS")}
    env["REPCHECK_CACHE"] = str(tmp_path / "cache")
    cmd = [sys.executable, "-m", "repcheck", "probe", "Water boils.", "-m", str(tiny_llama), "-k", "2", "--json", "-q"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert r.returncode == 0 and r.stderr == "", r.stderr
