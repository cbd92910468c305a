"""Suites: what `repcheck baseline create` measures and `repcheck check` measures again.

A suite is a small TOML file (``repcheck baseline init`` writes a commented one). It is
copied into the baseline, so a check always reruns exactly what the baseline measured.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import RepcheckError

SAMPLE_SETS_DIR = Path(__file__).resolve().parent.parent / "sample_prompts"

#: Default direction of each metric (by the name after the last dot); absent: reported only.
DIRECTIONS: dict[str, str] = {
    "tp_last": "lower",
    "tp_rise": "lower",
    "tp_mean_repeats": "lower",
    "ip_last": "lower",
    "wr_last": "lower",
    "lock_in_rate": "lower",
    "seq_rep_1": "lower",
    "seq_rep_2": "lower",
    "seq_rep_3": "lower",
    "seq_rep_4": "lower",
    "rep_sen": "lower",
    "loop_rate": "lower",
    "distinct_1": "higher",
    "distinct_2": "higher",
}
PROBE_METRICS = ("tp_first", "tp_last", "tp_rise", "tp_mean_repeats", "ip_last", "wr_last", "lock_in_rate")
COMPARE_METRICS = ("seq_rep_4", "rep_sen", "loop_rate", "distinct_2", "mean_logprob")


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
    gate: GateBlock = field(default_factory=GateBlock)
    dtype: str = "float32"
    seed: int = 0
    metrics: dict[str, MetricRule] = field(default_factory=dict)
    base_dir: str = "."  # where relative sentence/prompt paths are resolved (not serialized)

    def metric_names(self) -> list[str]:
        names = [f"probe.{m}" for m in PROBE_METRICS]
        if self.compare:
            names += [f"compare.{s}.{m}" for s in self.compare.settings for m in COMPARE_METRICS]
        return names

    def rule(self, name: str) -> MetricRule:
        given = self.metrics.get(name, MetricRule())
        direction = (
            given.direction
            if name in self.metrics and given.direction is not None
            else DIRECTIONS.get(name.rsplit(".", 1)[-1])
        )
        return MetricRule(direction=direction, tolerance=given.tolerance)

    def to_dict(self) -> dict[str, Any]:
        return {
            "probe": asdict(self.probe),
            "compare": asdict(self.compare) if self.compare else None,
            "gate": asdict(self.gate),
            "dtype": self.dtype,
            "seed": self.seed,
            "metrics": {k: asdict(v) for k, v in self.metrics.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], base_dir: str | Path = ".", where: str = "suite") -> Suite:
        if not isinstance(d, dict):
            raise RepcheckError(f"{where}: expected a table")
        known = {"probe", "compare", "gate", "dtype", "seed", "metrics"}
        unknown = set(d) - known
        if unknown:
            raise RepcheckError(
                f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}"
            )
        try:
            suite = cls(
                probe=_block(ProbeBlock, d.get("probe") or {}, f"{where} [probe]"),
                compare=_block(CompareBlock, d["compare"], f"{where} [compare]") if d.get("compare") else None,
                gate=_block(GateBlock, d.get("gate") or {}, f"{where} [gate]"),
                dtype=d.get("dtype", "float32"),
                seed=d.get("seed", 0),
                metrics={
                    k: _block(MetricRule, v, f'{where} [metrics."{k}"]') for k, v in (d.get("metrics") or {}).items()
                },
                base_dir=str(base_dir),
            )
        except TypeError as err:
            raise RepcheckError(f"{where}: {err}") from None
        suite.validate(where)
        return suite

    def validate(self, where: str = "suite") -> None:
        from .decoding import parse_setting
        from .models import DTYPES

        p = self.probe
        checks = [
            (isinstance(p.repeats, int) and p.repeats >= 1, "probe.repeats must be an integer >= 1"),
            (isinstance(p.batch_size, int) and p.batch_size >= 1, "probe.batch_size must be an integer >= 1"),
            (p.limit is None or (isinstance(p.limit, int) and p.limit >= 1), "probe.limit must be an integer >= 1"),
            (
                isinstance(p.sentences, str) and p.sentences.strip() != "",
                "probe.sentences must name a sample set or file",
            ),
            (self.dtype in DTYPES, f"dtype must be one of {', '.join(DTYPES)}"),
            (isinstance(self.seed, int), "seed must be an integer"),
            (isinstance(self.gate.k, (int, float)) and self.gate.k > 0, "gate.k must be > 0"),
            (isinstance(self.gate.floor, (int, float)) and self.gate.floor >= 0, "gate.floor must be >= 0"),
            (
                isinstance(self.gate.bootstrap, int) and self.gate.bootstrap >= 2,
                "gate.bootstrap must be an integer >= 2",
            ),
        ]
        if self.compare:
            c = self.compare
            checks += [
                (isinstance(c.settings, list) and c.settings, "compare.settings must be a non-empty list"),
                (isinstance(c.max_new_tokens, int) and c.max_new_tokens >= 1, "compare.max_new_tokens must be >= 1"),
                (isinstance(c.samples, int) and c.samples >= 1, "compare.samples must be >= 1"),
                (c.limit is None or (isinstance(c.limit, int) and c.limit >= 1), "compare.limit must be >= 1"),
            ]
        for ok, message in checks:
            if not ok:
                raise RepcheckError(f"{where}: {message}")
        if self.compare:
            for s in self.compare.settings:
                parse_setting(s)
        names = set(self.metric_names())
        for name, rule in self.metrics.items():
            if name not in names:
                raise RepcheckError(
                    f'{where}: [metrics."{name}"] is not a metric of this suite; metrics: {", ".join(sorted(names))}'
                )
            if rule.direction not in (None, "lower", "higher"):
                raise RepcheckError(f'{where}: metrics."{name}".direction must be "lower" or "higher"')
            if rule.tolerance is not None and not (isinstance(rule.tolerance, (int, float)) and rule.tolerance >= 0):
                raise RepcheckError(f'{where}: metrics."{name}".tolerance must be a number >= 0')

    # ---- inputs --------------------------------------------------------------------------
    def sentences(self) -> list[str]:
        return _read_set(self.probe.sentences, self.probe.limit, self.base_dir)

    def prompts(self) -> list[str]:
        assert self.compare is not None
        return _read_set(self.compare.prompts, self.compare.limit, self.base_dir)


def _block(cls, d: Any, where: str):
    if not isinstance(d, dict):
        raise RepcheckError(f"{where}: expected a table")
    fields = cls.__dataclass_fields__
    unknown = set(d) - set(fields)
    if unknown:
        raise RepcheckError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(fields)}")
    return cls(**d)


def _read_set(name: str, limit: int | None, base_dir: str) -> list[str]:
    """A built-in sample set (a bare name such as ``wiki_en``) or a file relative to the suite."""
    from .sentences import read_sentences

    if "/" not in name and "." not in name:
        path = SAMPLE_SETS_DIR / f"{name}.txt"
        if not path.exists():
            raise RepcheckError(
                f"{name!r} is not a built-in sample set (these ship in sample_prompts/ of the "
                f"source checkout); give a file path instead"
            )
    else:
        path = Path(base_dir) / name
    texts = read_sentences(path)
    return texts[:limit] if limit else texts


def load_suite(path: str | Path) -> Suite:
    from .tomlfile import read_toml

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

[gate]
k = 3.0          # default tolerance of a metric = max(k * baseline stderr, floor)
floor = 0.01
bootstrap = 1000 # resamples over sentences (or prompts) for each metric's standard error

# Per-metric overrides. Directions default to "lower is better" for the repetition metrics
# (probe.tp_last, probe.tp_rise, probe.tp_mean_repeats, probe.ip_last, probe.wr_last,
# probe.lock_in_rate, compare.<setting>.seq_rep_4 / rep_sen / loop_rate) and "higher" for
# compare.<setting>.distinct_2; probe.tp_first and mean_logprob are reported only.
# [metrics."probe.tp_last"]
# tolerance = 0.02
# [metrics."probe.tp_first"]
# direction = "lower"
"""
