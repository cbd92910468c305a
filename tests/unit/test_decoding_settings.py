import pytest

from repcheck.decoding import PRESET_GROUPS, PRESETS, load_settings_file, parse_setting, resolve_settings
from repcheck.errors import RepcheckError


def test_presets_and_key_values():
    assert parse_setting("greedy").params == {} and not parse_setting("greedy").do_sample
    assert parse_setting("beam").num_beams == 4
    s = parse_setting("top_p=0.9,temperature=0.8")
    assert s.params == {"top_p": 0.9, "temperature": 0.8} and s.do_sample and s.name == "top_p=0.9,temperature=0.8"
    assert parse_setting("num_beams=4,no_repeat_ngram_size=3").params == {"num_beams": 4, "no_repeat_ngram_size": 3}
    d = parse_setting('dry_multiplier=0.8,dry_sequence_breakers=["\\n", ":", ","]')
    assert d.params["dry_sequence_breakers"] == ["\n", ":", ","]
    assert set(PRESET_GROUPS["standard"]) <= set(PRESETS)


@pytest.mark.parametrize(
    "text,needle",
    [
        ("nucleus", "unknown preset"),
        ("top_q=0.9", "unknown decoding key"),
        ("top_p=1.5", "out of range"),
        ("top_p=0", "out of range"),
        ("temperature=0", "out of range"),
        ("temperature=hot", "must be a number"),
        ("repetition_penalty=-1", "out of range"),
        ("presence_penalty=-0.5", "out of range"),
        ("num_beams=0", "out of range"),
        ("num_beams=2.5", "integer"),
        ("top_k=0", "out of range"),
        ("num_beams=4,top_p=0.9", "cannot be combined"),
        ("do_sample=false,temperature=0.7", "contradicts"),
        ("dry_base=2", "need dry_multiplier"),
        ("penalty_last_n=64", "needs a repetition"),
        ("top_p=", "must be a number"),
        ("=3", "malformed"),
    ],
)
def test_bad_settings(text, needle):
    with pytest.raises(RepcheckError, match=needle):
        parse_setting(text)


def test_settings_file(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text(
        '[settings.greedy]\n\n[settings.gentle]\npreset = "repetition_penalty"\npenalty_last_n = 64\n'
        "[settings.hot]\ntemperature = 1.3\ntop_k = 50\n"
    )
    got = load_settings_file(f)
    assert [s.name for s in got] == ["greedy", "gentle", "hot"]
    assert got[1].params == {"repetition_penalty": 1.2, "penalty_last_n": 64}
    bad = tmp_path / "bad.toml"
    bad.write_text("[settings.x\n")
    with pytest.raises(RepcheckError, match="not valid TOML"):
        load_settings_file(bad)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text("[settings.x]\ntop_p = 'high'\n")
    with pytest.raises(RepcheckError, match="must be a number"):
        load_settings_file(wrong)


def test_resolve_settings():
    assert [s.name for s in resolve_settings()] == ["greedy"]
    std = resolve_settings(preset="standard")
    assert [s.name for s in std] == PRESET_GROUPS["standard"]
    with pytest.raises(RepcheckError, match="more than once"):
        resolve_settings(["greedy"], preset="standard")
    with pytest.raises(RepcheckError, match="unknown --preset"):
        resolve_settings(preset="fancy")
