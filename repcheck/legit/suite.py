"""A legitimate-repetition suite: one JSON object a line, every field checked when it is read.

    {"id": "copy-1", "category": "copy", "messages": [{"role": "user", "content": "Repeat exactly: ..."}],
     "check": {"type": "contains", "value": "..."}}
    {"id": "code-3", "category": "code", "prompt": "def grade(score):\\n    if ...", "max_new_tokens": 16,
     "check": {"type": "startswith", "value": "\\"D\\""}}

Fields: ``id`` (unique), ``category``, exactly one of ``messages`` (rendered with the model's
chat template, ``add_generation_prompt``) and ``prompt`` (plain text after the BOS token, as
compare's prompts are), ``check`` {``type``, ``value``} (``checks``), and optionally
``max_new_tokens`` (default 32), ``lang`` and ``note``. Anything wrong is one line naming the
file, the line and the field, before any model loads.

The shipped suite (``SHIPPED``, ``sample_prompts/legit.jsonl``, installed with the wheel) was
written for repcheck by hand: categories copy, quote, list, code, table, json, refrain,
translate and again, in English and Chinese.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RepcheckError
from ..prompts import Prompt, check_messages, read_lines
from .checks import TYPES, Check

SHIPPED = "legit"
DEFAULT_NEW_TOKENS = 32
FIELDS = {"id", "category", "messages", "prompt", "check", "max_new_tokens", "lang", "note"}


@dataclass(frozen=True)
class LegitCase:
    id: str
    category: str
    prompt: Prompt
    check: Check
    max_new_tokens: int = DEFAULT_NEW_TOKENS
    lang: str | None = None
    line: int = 0  # where it is in its file (for messages about it)

    def to_dict(self) -> dict[str, Any]:
        """The case as its line of a suite file."""
        prompt = {"prompt": self.prompt.text} if not self.prompt.is_chat else self.prompt.to_dict()
        return {
            "id": self.id,
            "category": self.category,
            **prompt,
            "check": self.check.to_dict(),
            "max_new_tokens": self.max_new_tokens,
            **({"lang": self.lang} if self.lang else {}),
        }


@dataclass(frozen=True)
class LegitSuite:
    name: str  # "legit" for the shipped suite, else the file's path
    cases: tuple[LegitCase, ...] = field(default_factory=tuple)

    @property
    def categories(self) -> list[str]:
        return list(dict.fromkeys(c.category for c in self.cases))

    @property
    def needs_chat_template(self) -> bool:
        return any(c.prompt.is_chat for c in self.cases)

    def __len__(self) -> int:
        return len(self.cases)

    def plain_only(self) -> LegitSuite:
        """The cases with a plain-text prompt (for a model without a chat template, where the
        suite is measured by default rather than asked for)."""
        return LegitSuite(f"{self.name} (plain-text cases)", tuple(c for c in self.cases if not c.prompt.is_chat))

    def require_chat_template(self, has_template: bool | None, model_name: str) -> None:
        """Refuse a suite with chat cases for a model known to have no chat template, naming
        the first such case's file, line and field."""
        first = next((c for c in self.cases if c.prompt.is_chat), None)
        if first is not None and has_template is False:
            raise RepcheckError(
                f"{self.name}:{first.line}: field 'messages': {model_name} has no chat template to render "
                "conversations with; use a chat model, or a suite of plain-text 'prompt' cases",
                param="legit",
            )


def suite_from_dicts(name: str, cases: list[dict[str, Any]]) -> LegitSuite:
    """A suite from its cases' JSON objects (as a baseline stores them), checked as a file is."""
    if not isinstance(cases, list) or not cases:
        raise RepcheckError(f"{name}: expected a non-empty list of cases", param="legit")
    return LegitSuite(
        name, tuple(parse_case(json.dumps(c), f"{name}: case {i + 1}", i + 1) for i, c in enumerate(cases))
    )


def shipped_path():
    from importlib import resources

    return resources.files("repcheck") / "sample_prompts" / f"{SHIPPED}.jsonl"


def load_legit_suite(source: str | Path = SHIPPED) -> LegitSuite:
    """The shipped suite (``"legit"``) or a suite file of the same format."""
    if str(source) == SHIPPED:
        from importlib import resources

        with resources.as_file(shipped_path()) as path:
            return LegitSuite(SHIPPED, tuple(_read(Path(path), f"the shipped suite {SHIPPED}.jsonl")))
    path = Path(source).expanduser()
    return LegitSuite(str(source), tuple(_read(path, str(path))))


def _read(path: Path, name: str) -> list[LegitCase]:
    lines = read_lines(path, f"legit suite {name}", "legit")
    cases: list[LegitCase] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{name}:{number}"
        case = parse_case(line, where, number)
        if case.id in seen:
            raise RepcheckError(f"{where}: id {case.id!r} is used already on line {seen[case.id]}", param="legit")
        seen[case.id] = number
        cases.append(case)
    if not cases:
        raise RepcheckError(f"legit suite {name} holds no cases", param="legit")
    return cases


def parse_case(line: str, where: str, number: int = 0) -> LegitCase:
    """One line of a suite file as a case, or a one-line error naming ``where`` and the field."""
    try:
        raw = json.loads(line)
    except ValueError as err:
        raise RepcheckError(f"{where}: not valid JSON ({err.msg})", param="legit") from None
    if not isinstance(raw, dict):
        raise RepcheckError(f"{where}: expected a JSON object", param="legit")
    unknown = sorted(set(raw) - FIELDS)
    if unknown:
        raise RepcheckError(
            f"{where}: unknown field {unknown[0]!r}; fields: {', '.join(sorted(FIELDS))}", param="legit"
        )
    for key in ("id", "category"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise RepcheckError(f"{where}: field {key!r} must be a non-empty string", param="legit")
    if ("messages" in raw) == ("prompt" in raw):
        raise RepcheckError(f"{where}: give exactly one of the fields 'messages' and 'prompt'", param="legit")
    if "prompt" in raw:
        if not isinstance(raw["prompt"], str) or not raw["prompt"].strip():
            raise RepcheckError(f"{where}: field 'prompt' must be a non-empty string", param="legit")
        prompt = Prompt(text=raw["prompt"])
    else:
        prompt = Prompt(messages=check_messages(raw["messages"], f"{where}: field 'messages'"))
    budget = raw.get("max_new_tokens", DEFAULT_NEW_TOKENS)
    if isinstance(budget, bool) or not isinstance(budget, int) or not 1 <= budget <= 4096:
        raise RepcheckError(f"{where}: field 'max_new_tokens' must be an integer in 1..4096", param="legit")
    lang = raw.get("lang")
    if lang is not None and not isinstance(lang, str):
        raise RepcheckError(f"{where}: field 'lang' must be a string", param="legit")
    return LegitCase(raw["id"], raw["category"], prompt, parse_check(raw.get("check"), where), budget, lang, number)


def parse_check(raw: Any, where: str) -> Check:
    if raw is None:
        raise RepcheckError(f"{where}: field 'check' is missing", param="legit")
    if not isinstance(raw, dict) or set(raw) != {"type", "value"}:
        raise RepcheckError(f"{where}: field 'check' must be an object with exactly type and value", param="legit")
    kind, value = raw["type"], raw["value"]
    if kind not in TYPES:
        raise RepcheckError(f"{where}: field 'check.type' {kind!r} is not one of {', '.join(TYPES)}", param="legit")
    if kind == "json":
        if isinstance(value, str):  # the expected value written as JSON text: it must parse
            try:
                value = json.loads(value)
            except ValueError:
                raise RepcheckError(
                    f"{where}: field 'check.value' of a json check is not JSON", param="legit"
                ) from None
        return Check(kind, value)
    if not isinstance(value, str) or not value.strip():
        raise RepcheckError(f"{where}: field 'check.value' must be a non-empty string", param="legit")
    if kind == "regex":
        try:
            re.compile(value)
        except re.error as err:
            raise RepcheckError(
                f"{where}: field 'check.value' is not a regular expression ({err})", param="legit"
            ) from None
    return Check(kind, value)


def describe(suite: LegitSuite) -> dict[str, Any]:
    """What a report says of the suite it ran."""
    return {"name": suite.name, "cases": len(suite), "categories": dict(Counter(c.category for c in suite.cases))}
