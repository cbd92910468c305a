"""Docs that must match the code: generated CLI reference, README commands, .ci/run."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_cli_reference_is_current():
    """Checked against the Typer that rendered it: Typer versions lay help out differently."""
    import pytest

    from repcheck.cli.docs import render, typer_version

    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    rendered_with = re.search(r"Rendered with Typer (\S+) ", text).group(1)
    if rendered_with != typer_version():
        pytest.skip(f"docs/cli.md was rendered with Typer {rendered_with}; this is Typer {typer_version()}")
    assert render() == (ROOT / "docs" / "cli.md").read_text(encoding="utf-8"), (
        "docs/cli.md is stale: regenerate it with `python -m repcheck.cli.docs docs/cli.md`"
    )


def test_readme_first_two_commands_and_ci():
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    setup_and_probe, setup_and_test = blocks[0].strip(), blocks[1].strip()
    assert "repcheck probe" in setup_and_probe and "venv" in setup_and_probe
    assert "pytest" in setup_and_test and "venv" in setup_and_test
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert setup_and_test in ci and "bash .ci/wheel_smoke.sh" in ci
    assert ci.index(setup_and_test) < ci.index("bash .ci/wheel_smoke.sh")


def test_sample_prompt_sets():
    assert (ROOT / "sample_prompts").resolve() == ROOT / "repcheck" / "sample_prompts"  # one copy, not two

    def lines(name):
        text = (ROOT / "sample_prompts" / name).read_text(encoding="utf-8")
        return [x for x in text.splitlines() if x.strip() and not x.startswith("#")]

    assert len(lines("wiki_en.txt")) >= 100
    zh = lines("zh.txt")
    assert len(zh) >= 30 and "北京是中国的首都,有很多名胜古迹,如长城,故宫,天坛等" in zh
    assert len(lines("open_ended.txt")) >= 30


def _readme_commands():
    """Every `repcheck ...` command in the README's bash blocks after the first two, joined
    over line continuations, without comments."""
    import shlex

    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)[2:]
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line.startswith("repcheck "):
                commands.append(shlex.split(line, comments=True))
    return commands


def test_readme_examples_use_real_inputs_and_parse():
    """Each README example names real sentences and files, and the CLI accepts its options
    (parsed as the command would be, without running it)."""
    from typer.main import get_command

    from repcheck.cli.app import app

    commands = _readme_commands()
    assert len(commands) >= 15
    group = get_command(app)
    for argv in commands:
        assert "..." not in argv and "…" not in " ".join(argv), argv  # no placeholder text
        for arg in argv:
            if arg.startswith(("sample_prompts/", "docs/")):
                assert (ROOT / arg).exists(), arg
        cmd, rest = group, argv[1:]
        while hasattr(cmd, "commands"):  # repcheck -> baseline -> create
            cmd, rest = cmd.commands[rest[0]], rest[1:]
        cmd.make_context(cmd.name, rest)  # raises on an unknown option or a bad value
