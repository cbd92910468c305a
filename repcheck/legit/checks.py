"""Whether a continuation passes a case: the check semantics, exactly.

The continuation is decoded without special tokens. For ``contains``, ``startswith`` and
``exact``, the continuation and the value both have every run of white space collapsed to one
space and are stripped; the comparison is case-sensitive. ``regex`` is ``re.search`` on the raw
text. ``json`` decodes the first JSON value that starts at the first ``{`` or ``[`` of the text
and compares it for equality with the value (JSON's equality: ``true`` is not ``1``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

TYPES = ("contains", "startswith", "exact", "regex", "json")


@dataclass(frozen=True)
class Check:
    type: str  # one of TYPES
    value: Any  # a string; for json any JSON value

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "value": self.value}


def normalize(text: str) -> str:
    """Runs of white space collapsed to one space, stripped."""
    return " ".join(text.split())


def first_json_value(text: str) -> Any:
    """The JSON value that starts at the first ``{`` or ``[`` (raises ValueError if none decodes)."""
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts:
        raise ValueError("no { or [ in the text")
    value, _end = json.JSONDecoder().raw_decode(text, min(starts))
    return value


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: Python's, except that true is not 1 and false is not 0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    return type(a) in (int, float) and type(b) in (int, float) and a == b or type(a) is type(b) and a == b


def passes(check: Check, text: str) -> bool:
    """Whether ``text`` (the decoded continuation) passes ``check``."""
    if check.type == "regex":
        return re.search(check.value, text) is not None
    if check.type == "json":
        try:
            return json_equal(first_json_value(text), check.value)
        except ValueError:
            return False
    got, want = normalize(text), normalize(check.value)
    if check.type == "contains":
        return want in got
    if check.type == "startswith":
        return got.startswith(want)
    if check.type == "exact":
        return got == want
    raise AssertionError(check.type)  # pragma: no cover - checked when the suite is read
