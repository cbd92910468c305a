"""The legitimate-repetition suite without a model: the check semantics exactly as documented,
the shipped suite's coverage, and every malformed case refused in one line naming the file,
the line and the field, before any model loads."""

import json
from collections import Counter

import pytest
from cli_helpers import assert_usage_error, run

from repcheck.errors import RepcheckError
from repcheck.legit import Check, load_legit_suite, passes
from repcheck.legit.checks import first_json_value, json_equal

NO_MODEL = "/no/such/model/dir"  # reaching the model would give a different message


# ---- checks ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "check, text, expected",
    [
        (Check("contains", "a  b\tc"), "x a b\n c y", True),  # runs of white space are one space
        (Check("contains", "A b"), "a b", False),  # case-sensitive
        (Check("startswith", "7, 8"), "  7,\n 8, 9", True),  # stripped first
        (Check("startswith", "7, 8"), "x 7, 8", False),
        (Check("exact", "Paris."), "  Paris. \n", True),
        (Check("exact", "Paris."), "Paris. Yes.", False),
        (Check("regex", r"^ ?\d+ \|"), " 42 | x", True),  # re.search on the raw text: the space is there
        (Check("regex", r"^\d"), " 42", False),
        (Check("regex", r"(?i)(gracias\W+){2}gracias"), "Gracias, gracias, GRACIAS!", True),
        (Check("json", {"a": 1}), 'Here: {"a": 1} and [2]', True),  # the first value from the first { or [
        (Check("json", [2]), 'Here: {"a": 1} and [2]', False),
        (Check("json", {"ok": True}), '{"ok": 1}', False),  # true is not 1
        (Check("json", {"a": 1}), "no json at all", False),
        (Check("json", {"a": 1}), '{"a": 1', False),  # cut off: does not decode
        (Check("json", [{"a": 1}]), '\n[{"a": 1}]\n```', True),
    ],
)
def test_check_semantics(check, text, expected):
    assert passes(check, text) is expected


def test_json_helpers():
    assert first_json_value('x [1, {"b": [true]}] y') == [1, {"b": [True]}]
    assert json_equal({"a": [1, 2.0]}, {"a": [1, 2]}) and not json_equal({"a": False}, {"a": 0})
    with pytest.raises(ValueError):
        first_json_value("nothing")


# ---- the shipped suite -----------------------------------------------------------------------------------
def test_the_shipped_suite_covers_what_users_repeat_legitimately():
    suite = load_legit_suite()
    assert suite.name == "legit" and len(suite) >= 150
    categories = Counter(c.category for c in suite.cases)
    assert set(categories) >= {"copy", "quote", "list", "code", "table", "json", "refrain", "translate", "again"}
    assert min(categories.values()) >= 12
    langs = Counter(c.lang for c in suite.cases)
    assert langs["en"] >= 100 and langs["zh"] >= 20
    chat = [c for c in suite.cases if c.prompt.is_chat]
    assert 40 <= len(chat) < len(suite)  # both kinds of case
    assert any(len(c.prompt.messages) > 1 for c in chat)  # multi-turn "say it again"
    assert {c.check.type for c in suite.cases} == {"contains", "startswith", "regex", "json"}


def test_the_suite_is_installed_as_package_data():
    from importlib import resources

    assert (resources.files("repcheck") / "sample_prompts" / "legit.jsonl").is_file()


# ---- bad suite files ------------------------------------------------------------------------------------
GOOD = {"id": "a-1", "category": "copy", "prompt": "Say: x", "check": {"type": "contains", "value": "x"}}


def _line(**changes):
    case = {**GOOD, **changes}
    return json.dumps({k: v for k, v in case.items() if v is not None}, ensure_ascii=False)


@pytest.mark.parametrize(
    "line, needle",
    [
        (_line(check=None), ":2: field 'check' is missing"),
        (_line(check={"type": "fuzzy", "value": "x"}), ":2: field 'check.type' 'fuzzy' is not one of"),
        (_line(check={"type": "regex", "value": "(unclosed"}), ":2: field 'check.value' is not a regular expression"),
        (_line(check={"type": "json", "value": "{not json"}), ":2: field 'check.value' of a json check is not JSON"),
        (_line(check={"type": "contains"}), ":2: field 'check' must be an object with exactly type and value"),
        (
            _line(messages=[{"role": "user", "content": "x"}]),
            ":2: give exactly one of the fields 'messages' and 'prompt'",
        ),
        (_line(prompt=None), ":2: give exactly one of the fields 'messages' and 'prompt'"),
        (_line(prompt=None, messages="hi"), ":2: field 'messages': messages must be a non-empty list"),
        (_line(prompt=None, messages=[]), ":2: field 'messages': messages must be a non-empty list"),
        (_line(prompt=None, messages=[{"role": "robot", "content": "x"}]), "messages[0].role 'robot' is not one of"),
        (
            _line(prompt=None, messages=[{"role": "user"}]),
            "messages[0] must be an object with exactly role and content",
        ),
        (
            _line(prompt=None, messages=[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]),
            "the last message must be a user turn",
        ),  # fmt: skip
        (_line(max_new_tokens=0), ":2: field 'max_new_tokens' must be an integer in 1..4096"),
        (_line(max_new_token=8), ":2: unknown field 'max_new_token'"),
        (_line(id=""), ":2: field 'id' must be a non-empty string"),
        (_line(id="a-0"), ":2: id 'a-0' is used already on line 1"),
        ("{not json", ":2: not valid JSON"),
        ("[1, 2]", ":2: expected a JSON object"),
    ],
)
def test_bad_cases_are_one_line_naming_file_line_and_field(tmp_path, line, needle):
    path = tmp_path / "mine.jsonl"
    path.write_text(_line(id="a-0") + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(RepcheckError, match="mine.jsonl"):
        load_legit_suite(path)
    res = run("compare", "--legit", path, "--model", NO_MODEL, "--out", tmp_path / "out")
    assert_usage_error(res, "mine.jsonl", needle)
    assert not (tmp_path / "out").exists()


def test_an_empty_or_missing_suite_is_refused(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n\n")
    assert_usage_error(run("compare", "--legit", tmp_path / "empty.jsonl", "--model", NO_MODEL), "holds no cases")
    assert_usage_error(run("compare", "--legit", tmp_path / "none.jsonl", "--model", NO_MODEL), "cannot read")


def test_legit_alone_is_the_shipped_suite_and_a_prompt_after_it_stays_a_prompt():
    from repcheck.cli.app import fill_optional_values

    assert fill_optional_values(["compare", "--legit"]) == ["compare", "--legit", "legit"]
    assert fill_optional_values(["compare", "--legit", "-s", "greedy"]) == [
        "compare",
        "--legit",
        "legit",
        "-s",
        "greedy",
    ]
    assert fill_optional_values(["compare", "--legit", "mine.jsonl"]) == ["compare", "--legit", "mine.jsonl"]
    assert fill_optional_values(["compare", "--legit", "Once upon a time"]) == [
        "compare", "--legit", "legit", "Once upon a time",
    ]  # fmt: skip


def test_cases_round_trip_through_their_json():
    """A baseline stores cases as JSON objects; read back, they are the same cases."""
    from repcheck.legit.suite import suite_from_dicts

    suite = load_legit_suite()
    again = suite_from_dicts("stored", [c.to_dict() for c in suite.cases])
    assert [c.to_dict() for c in again.cases] == [c.to_dict() for c in suite.cases]
