"""The gate's inputs checked before any model: suites, baselines and `baseline init`."""

import pytest
from cli_helpers import run as cli


@pytest.mark.parametrize(
    "content,needle",
    [
        (None, "cannot read baseline"),
        ("{not json", "not valid JSON"),
        ('{"kind": "probe", "schema_version": 1}', "not a repcheck baseline"),
        ('{"kind": "baseline", "schema_version": 99}', "schema_version 99"),
        ('{"kind": "baseline", "schema_version": 1, "suite": {}}', "missing"),
    ],
)
def test_bad_baselines(tmp_path, content, needle):
    path = tmp_path / "baseline.json"
    if content is not None:
        path.write_text(content)
    r = cli("check", "--baseline", path)
    assert r.exit_code == 2, r.output
    assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "toml,needle",
    [
        ("[probe]\nrepeats = 0\n", "probe.repeats"),
        ("[probe]\nsentence = 'x'\n", "unknown key"),
        ("dtype = 'int8'\n", "dtype must be"),
        ("[compare]\nsettings = ['top_p=7']\n", "out of range"),
        ('[metrics."probe.nope"]\ndirection = "lower"\n', "not a metric"),
        ('[metrics."probe.tp_last"]\ndirection = "up"\n', "direction"),
        ("[probe\n", "not valid TOML"),
    ],
)
def test_bad_suites(tmp_path, toml, needle):
    path = tmp_path / "suite.toml"
    path.write_text(toml)
    out = tmp_path / "b.json"
    r = cli("baseline", "create", "--suite", path, "-o", out)
    assert r.exit_code == 2, r.output
    assert needle in r.stderr and not out.exists()


def test_baseline_init(tmp_path):
    path = tmp_path / "suite.toml"
    assert cli("baseline", "init", "-o", path).exit_code == 0
    from repcheck.gate.suite import load_suite

    s = load_suite(path)
    assert s.probe.sentences == "wiki_en" and s.gate.k == 3.0 and s.compare is None
    r = cli("baseline", "init", "-o", path)
    assert r.exit_code == 2 and "--force" in r.stderr
    assert cli("baseline", "init", "-o", path, "--force").exit_code == 0
