"""What a cure breaks: a suite of legitimate repetition (copy this line, count on, finish the
refrain, the next elif branch, the next table row, the JSON array's next object, say it again),
run under any decoding setting on any backend that generates.

``suite`` reads and checks a suite file (JSON lines; ``legit`` is the shipped one, 150+ cases
in English and Chinese), ``checks`` says whether a continuation passes its case, ``run``
generates every case in one batched pass per setting and reports the pass rate with a 95%
interval, per category and per case.

    >>> from repcheck import load_model
    >>> from repcheck.legit import load_legit_suite, run_legit
    >>> from repcheck.decoding import parse_setting
    >>> result = run_legit(load_model(), load_legit_suite(), parse_setting("repetition_penalty=1.5"))
    >>> result.pass_rate, result.by_category()["code"]
"""

from .checks import Check, passes
from .run import LegitResult, run_legit
from .suite import SHIPPED, LegitCase, LegitSuite, load_legit_suite

__all__ = ["SHIPPED", "Check", "LegitCase", "LegitResult", "LegitSuite", "load_legit_suite", "passes", "run_legit"]
