"""repcheck: measure why and how much a causal language model repeats itself.

    >>> from repcheck import load_model, probe
    >>> model = load_model()                      # the built-in SmolLM2-135M-Instruct
    >>> result = probe(model, "The committee approved the new budget.", repeats=10)
    >>> result.mean_frame()                       # TP, MP, IP, WR, AR per copy

Importing repcheck is cheap: torch and transformers load on first use.
"""

__version__ = "0.1.0"

from .compare import CompareResult, run_compare
from .decoding import DecodingSetting, parse_setting
from .diff import DiffResult, diff_models
from .errors import RepcheckError
from .gate import CheckReport, check, create_baseline, load_baseline
from .metrics import CopyMetrics, SentenceSummary
from .models import LoadedModel, load_model
from .probing import probe
from .results import SCHEMA_VERSION, ProbeResult, SentenceResult
from .sentences import EncodedSentence, random_sentences, read_sentences
from .suite import Suite, load_suite

__all__ = [
    "__version__",
    "load_model",
    "probe",
    "LoadedModel",
    "ProbeResult",
    "SentenceResult",
    "CopyMetrics",
    "SentenceSummary",
    "EncodedSentence",
    "RepcheckError",
    "SCHEMA_VERSION",
    "random_sentences",
    "read_sentences",
    "run_compare",
    "CompareResult",
    "DecodingSetting",
    "parse_setting",
    "diff_models",
    "DiffResult",
    "create_baseline",
    "check",
    "load_baseline",
    "CheckReport",
    "load_suite",
    "Suite",
]
