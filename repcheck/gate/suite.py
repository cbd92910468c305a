"""Suites: what `repcheck baseline create` measures and `repcheck check` measures again.

A suite is a small TOML file (``repcheck baseline init`` writes a commented one). It is
copied into the baseline, so a check always reruns exactly what the baseline measured.
Every field is type-checked when the suite is read, before any model is loaded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import RepcheckError
from ..metric_info import GATE_COMPARE_METRICS, GATE_PROBE_METRICS, direction

#: The built-in sample sets ship inside the package (``repcheck/sample_prompts``; the
#: checkout's top-level ``sample_prompts`` is a link to it).
SAMPLE_SETS = ("wiki_en", "zh", "open_ended")


@dataclass
class ProbeBlock:
    sentences: str = "wiki_en"  # a built-in sample set or a file path
    limit: int | None = 32
    repeats: int = 10
    prefix: str | None = None
    batch_size: int = 16


@dataclass
class CompareBlock:
    prompts: str = "open_ended"
    limit: int | None = 8
    settings: list[str] = field(default_factory=lambda: ["greedy"])
    max_new_tokens: int = 64
    samples: int = 1
    chat: bool = False  # render the prompts with the model's chat template (a line is one user turn)
    stop_on_loop: bool = False  # end each continuation when the loop guard confirms its loop


@dataclass
class LegitBlock:
    suite: str = "legit"  # the shipped legitimate-repetition suite, or a .jsonl file
    settings: list[str] = field(default_factory=lambda: ["greedy"])


@dataclass
class GateBlock:
    k: float = 3.0  # default tolerance = max(k * baseline stderr, floor)
    floor: float = 0.01
    bootstrap: int = 1000  # resamples for the standard errors


@dataclass
class MetricRule:
    direction: str | None = None  # "lower", "higher" or None (reported, never fails)
    tolerance: float | None = None  # absolute; None: max(k * stderr, floor)


@dataclass
class Suite:
    probe: ProbeBlock = field(default_factory=ProbeBlock)
    compare: CompareBlock | None = None
    legit: LegitBlock | None = None
    gate: GateBlock = field(default_factory=GateBlock)
    dtype: str = "float32"
    seed: int = 0
    metrics: dict[str, MetricRule] = field(default_factory=dict)
    base_dir: str = "."  # where relative sentence/prompt paths are resolved (not serialized)

    def metric_names(self) -> list[str]:
        names = [f"probe.{m}" for m in GATE_PROBE_METRICS]
        if self.compare:
            names += [f"compare.{s}.{m}" for s in self.compare.settings for m in GATE_COMPARE_METRICS]
        if self.legit:
            names += [f"legit.{s}.pass_rate" for s in self.legit.settings]
        return names

    def rule(self, name: str) -> MetricRule:
        given = self.metrics.get(name, MetricRule())
        return MetricRule(
            direction=given.direction if given.direction is not None else direction(name),
            tolerance=given.tolerance,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "probe": asdict(self.probe),
            "compare": asdict(self.compare) if self.compare else None,
            **({"legit": asdict(self.legit)} if self.legit else {}),
            "gate": asdict(self.gate),
            "dtype": self.dtype,
            "seed": self.seed,
            "metrics": {k: asdict(v) for k, v in self.metrics.items()},
        }

    @classmethod
    def from_dict(cls, d: Any, base_dir: str | Path = ".", where: str = "suite") -> Suite:
        if not isinstance(d, dict):
            raise RepcheckError(f"{where}: expected a table")
        known = {"probe", "compare", "legit", "gate", "dtype", "seed", "metrics"}
        unknown = set(d) - known
        if unknown:
            raise RepcheckError(
                f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}"
            )
        metrics = d.get("metrics") or {}
        if not isinstance(metrics, dict):
            raise RepcheckError(f'{where}: metrics must be tables such as [metrics."probe.tp_last"]')
        suite = cls(
            probe=_block(ProbeBlock, d.get("probe") or {}, f"{where} [probe]"),
            compare=_block(CompareBlock, d["compare"], f"{where} [compare]") if d.get("compare") else None,
            legit=_block(LegitBlock, d["legit"], f"{where} [legit]") if d.get("legit") else None,
            gate=_block(GateBlock, d.get("gate") or {}, f"{where} [gate]"),
            dtype=d.get("dtype", "float32"),
            seed=d.get("seed", 0),
            metrics={k: _block(MetricRule, v, f'{where} [metrics."{k}"]') for k, v in metrics.items()},
            base_dir=str(base_dir),
        )
        suite.validate(where)
        return suite

    def validate(self, where: str = "suite") -> None:
        from ..backends.hf_utils import DTYPES
        from ..decoding import parse_setting

        def integer(v, lo):
            return isinstance(v, int) and not isinstance(v, bool) and v >= lo

        def number(v, lo, strict=False):
            return isinstance(v, (int, float)) and not isinstance(v, bool) and (v > lo if strict else v >= lo)

        def text(v):
            return isinstance(v, str) and v.strip() != ""

        p, g = self.probe, self.gate
        checks = [
            (integer(p.repeats, 1), "probe.repeats must be an integer >= 1"),
            (integer(p.batch_size, 1), "probe.batch_size must be an integer >= 1"),
            (p.limit is None or integer(p.limit, 1), "probe.limit must be an integer >= 1"),
            (text(p.sentences), "probe.sentences must name a sample set or file"),
            (p.prefix is None or isinstance(p.prefix, str), "probe.prefix must be a string"),
            (isinstance(self.dtype, str) and self.dtype in DTYPES, f"dtype must be one of {', '.join(DTYPES)}"),
            (integer(self.seed, 0), "seed must be an integer >= 0"),
            (number(g.k, 0, strict=True), "gate.k must be a number > 0"),
            (number(g.floor, 0), "gate.floor must be a number >= 0"),
            (integer(g.bootstrap, 2), "gate.bootstrap must be an integer >= 2"),
        ]
        if self.compare:
            c = self.compare
            checks += [
                (text(c.prompts), "compare.prompts must name a sample set or file"),
                (
                    isinstance(c.settings, list) and c.settings and all(text(s) for s in c.settings),
                    "compare.settings must be a non-empty list of setting strings",
                ),
                (integer(c.max_new_tokens, 1), "compare.max_new_tokens must be an integer >= 1"),
                (integer(c.samples, 1), "compare.samples must be an integer >= 1"),
                (c.limit is None or integer(c.limit, 1), "compare.limit must be an integer >= 1"),
            ]
        if self.legit:
            lg = self.legit
            checks += [
                (text(lg.suite), "legit.suite must name the shipped suite (legit) or a .jsonl file"),
                (
                    isinstance(lg.settings, list) and lg.settings and all(text(s) for s in lg.settings),
                    "legit.settings must be a non-empty list of setting strings",
                ),
            ]
        for ok, message in checks:
            if not ok:
                raise RepcheckError(f"{where}: {message}")
        for block, settings in (("compare", self.compare), ("legit", self.legit)):
            if settings:
                names = [parse_setting(s).name for s in settings.settings]
                if len(set(names)) != len(names):
                    raise RepcheckError(f"{where}: {block}.settings names a setting twice")
        names = set(self.metric_names())
        for name, rule in self.metrics.items():
            if name not in names:
                raise RepcheckError(
                    f'{where}: [metrics."{name}"] is not a metric of this suite; metrics: {", ".join(sorted(names))}'
                )
            if rule.direction not in (None, "lower", "higher"):
                raise RepcheckError(f'{where}: metrics."{name}".direction must be "lower" or "higher"')
            if rule.tolerance is not None and not number(rule.tolerance, 0):
                raise RepcheckError(f'{where}: metrics."{name}".tolerance must be a number >= 0')

    # ---- inputs --------------------------------------------------------------------------
    def sentences(self) -> list[str]:
        return read_set(self.probe.sentences, self.probe.limit, self.base_dir)

    def prompts(self) -> list[Any]:
        """The compare block's prompts: strings, or ``{"messages": [...]}`` conversations with
        ``chat`` (JSON, as a baseline stores them)."""
        from ..prompts import read_prompts
        from ..sentences import SHIPPED_SETS

        c = self.compare
        assert c is not None
        if not c.chat:
            return read_set(c.prompts, c.limit, self.base_dir)
        path = c.prompts if c.prompts in SHIPPED_SETS else Path(self.base_dir) / c.prompts
        return [p.to_dict() for p in read_prompts(path, chat=True, limit=c.limit)]

    def legit_cases(self) -> list[dict[str, Any]]:
        """The legit suite's cases (as their JSON objects), read now."""
        from ..legit import load_legit_suite

        assert self.legit is not None
        name = self.legit.suite
        source = name if name == "legit" else Path(self.base_dir) / name
        return [c.to_dict() for c in load_legit_suite(source).cases]


def _block(cls, d: Any, where: str):
    if not isinstance(d, dict):
        raise RepcheckError(f"{where}: expected a table")
    names = [f.name for f in fields(cls)]
    unknown = set(d) - set(names)
    if unknown:
        raise RepcheckError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(names)}")
    return cls(**d)


def sample_set_path(name: str):
    """The file of a built-in sample set, from the installed package (works from a wheel)."""
    from importlib import resources

    if name not in SAMPLE_SETS:
        raise RepcheckError(
            f"{name!r} is not a built-in sample set ({', '.join(SAMPLE_SETS)}); give a file path instead"
        )
    return resources.files("repcheck") / "sample_prompts" / f"{name}.txt"


def read_set(name: str, limit: int | None, base_dir: str | Path = ".") -> list[str]:
    """A built-in sample set (a bare name such as ``wiki_en``) or a file relative to ``base_dir``."""
    from importlib import resources

    from ..sentences import read_sentences

    if "/" not in name and "." not in name:
        with resources.as_file(sample_set_path(name)) as path:
            texts = read_sentences(path, limit=limit)
    else:
        texts = read_sentences(Path(base_dir) / name, limit=limit)
    return texts


def load_suite(path: str | Path) -> Suite:
    from ..docfiles import read_toml

    path = Path(path)
    doc = read_toml(path, "suite")
    return Suite.from_dict(doc, base_dir=path.resolve().parent, where=str(path))


DEFAULT_SUITE_TOML = """\
# repcheck suite: what `repcheck baseline create` measures and `repcheck check` measures again.
# The suite is copied into the baseline, so `check` always reruns exactly this.

dtype = "float32"   # float32 is exact; bfloat16 moves probabilities by up to ~0.1
seed = 0            # seeds generation and the bootstrap

[probe]
sentences = "wiki_en"   # a built-in sample set (wiki_en, zh) or a file path relative to this file
limit = 32              # the first N sentences; remove for all
repeats = 10            # K copies of each sentence
batch_size = 16
# prefix = "Some fixed text"

# Optional: also measure repetition in generated text (slower).
# [compare]
# prompts = "open_ended"
# limit = 8
# settings = ["greedy", "repetition_penalty=1.3"]
# max_new_tokens = 64
# samples = 1
# chat = false          # true: render the prompts with the chat template (a line is one user turn)
# stop_on_loop = false  # true: end each continuation when the loop guard confirms its loop

[gate]
k = 3.0          # default tolerance of a metric = max(k * baseline stderr, floor)
floor = 0.01
bootstrap = 1000 # resamples over sentences (or prompts) for each metric's standard error

# Optional: also gate legitimate repetition (the share of the legit suite's cases passed), so a
# fine-tune or a setting that breaks copying, code or lists fails the check.
# [legit]
# suite = "legit"          # the shipped suite, or a .jsonl file relative to this file
# settings = ["greedy"]

# Per-metric overrides. Directions default to "lower is better" for the repetition metrics
# (probe.tp_last, probe.tp_rise, probe.tp_mean_repeats, probe.ip_last, probe.wr_last,
# probe.lock_in_rate, compare.<setting>.seq_rep_4 / rep_sen / loop_rate) and "higher" for
# compare.<setting>.distinct_2 and legit.<setting>.pass_rate; probe.tp_first and mean_logprob
# are reported only.
# [metrics."probe.tp_last"]
# tolerance = 0.02
# [metrics."probe.tp_first"]
# direction = "lower"
"""
