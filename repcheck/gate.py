"""The CI regression gate: measure a suite, write a baseline, check a model against it.

Every metric is a mean over sentences (or prompts) with a bootstrap standard error. The
default tolerance of a metric is ``max(k * baseline stderr, floor)``; a metric regresses when
it moves in its bad direction by more than its tolerance. Exit codes: 0 pass, 3 regression.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .builtin import ProgressCallback
from .errors import RepcheckError
from .models import LoadedModel
from .results import json_safe
from .suite import COMPARE_METRICS, PROBE_METRICS, Suite

BASELINE_SCHEMA_VERSION = 1
EXIT_PASS, EXIT_REGRESSION = 0, 3


@dataclass
class Measurement:
    value: float  # mean over sentences / prompts (NaN if undefined)
    stderr: float  # bootstrap standard error of that mean
    n: int  # sentences or prompts with a defined value


def bootstrap_stderr(values, resamples: int, seed: int) -> Measurement:
    """Mean of the finite values and the standard deviation of ``resamples`` bootstrap means."""
    x = np.asarray([v for v in values if v is not None], dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return Measurement(math.nan, math.nan, 0)
    if len(x) == 1:
        return Measurement(float(x[0]), math.nan, 1)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(resamples, len(x)))].mean(axis=1)
    return Measurement(float(x.mean()), float(means.std(ddof=1)), len(x))


def suite_inputs(suite: Suite) -> dict[str, list[str]]:
    """The sentences and prompts the suite's files name, read now."""
    return {"sentences": suite.sentences(), "prompts": suite.prompts() if suite.compare else []}


def measure(
    model: LoadedModel, suite: Suite, inputs: dict[str, list[str]], progress: ProgressCallback | None = None
) -> dict[str, Measurement]:
    """Run the suite on ``model`` with these sentences and prompts: every metric of
    ``suite.metric_names()``."""
    from .compare import run_compare
    from .decoding import parse_setting
    from .probing import probe

    sentences, prompts = inputs["sentences"], inputs["prompts"]
    boot = suite.gate.bootstrap
    result = probe(
        model,
        sentences,
        repeats=suite.probe.repeats,
        prefix=suite.probe.prefix,
        batch_size=suite.probe.batch_size,
        progress=progress,
    )
    out: dict[str, Measurement] = {}
    for i, m in enumerate(PROBE_METRICS):
        if m == "lock_in_rate":
            values = [float(s.summary.lock_in_copy is not None) for s in result.sentences]
        else:
            values = [getattr(s.summary, m) for s in result.sentences]
        out[f"probe.{m}"] = bootstrap_stderr(values, boot, suite.seed + i)
    if suite.compare:
        c = suite.compare
        settings = [parse_setting(s) for s in c.settings]
        cmp = run_compare(
            model,
            settings,
            prompts,
            max_new_tokens=c.max_new_tokens,
            samples=c.samples,
            seed=suite.seed,
            batch_size=suite.probe.batch_size,
            progress=progress,
        )
        for s in settings:
            for i, m in enumerate(COMPARE_METRICS):
                key = "loop" if m == "loop_rate" else m
                out[f"compare.{s.name}.{m}"] = bootstrap_stderr(cmp.per_prompt(s.name, key), boot, suite.seed + 100 + i)
    return out


def environment(model: LoadedModel) -> dict[str, Any]:
    from .provenance import versions

    return {**versions(), "device": model.device, "dtype": model.dtype}


def create_baseline(model: LoadedModel, suite: Suite, progress: ProgressCallback | None = None) -> dict[str, Any]:
    """The baseline document: environment, the suite itself, every metric with its spread."""
    started = time.perf_counter()
    inputs = suite_inputs(suite)
    values = measure(model, suite, inputs, progress)
    metrics = {}
    for name, m in values.items():
        rule = suite.rule(name)
        metrics[name] = {
            **asdict(m),
            "direction": rule.direction,
            "tolerance": tolerance(rule.tolerance, m.stderr, suite)[0],
        }
    return json_safe(
        {
            "schema_version": BASELINE_SCHEMA_VERSION,
            "kind": "baseline",
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "model": model.info(),
            "environment": environment(model),
            "seed": suite.seed,
            "bootstrap": {
                "resamples": suite.gate.bootstrap,
                "seed": suite.seed,
                "over": "sentences (probe) / prompts (compare)",
            },
            "suite": suite.to_dict(),
            # The texts themselves, so a check measures exactly these even if the files change.
            "inputs": inputs,
            "metrics": metrics,
            "elapsed_s": round(time.perf_counter() - started, 2),
        }
    )


def tolerance(explicit: float | None, stderr: float, suite: Suite) -> tuple[float, str]:
    """The tolerance of a metric and where it came from."""
    if explicit is not None:
        return float(explicit), "suite"
    noise = suite.gate.k * stderr if stderr is not None and math.isfinite(stderr) else 0.0
    return (noise, f"{suite.gate.k:g} x stderr") if noise > suite.gate.floor else (suite.gate.floor, "floor")


def load_baseline(path: str | Path) -> tuple[dict[str, Any], Suite]:
    """Read and validate a baseline; every problem is a one-line RepcheckError."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise RepcheckError(f"cannot read baseline {path}: {err.strerror or err}") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise RepcheckError(f"baseline {path} is not valid JSON ({err})") from None
    if not isinstance(doc, dict) or doc.get("kind") != "baseline":
        raise RepcheckError(f"{path} is not a repcheck baseline (create one with `repcheck baseline create`)")
    if doc.get("schema_version") != BASELINE_SCHEMA_VERSION:
        raise RepcheckError(
            f"baseline {path} has schema_version {doc.get('schema_version')!r}; this repcheck reads "
            f"version {BASELINE_SCHEMA_VERSION}: recreate the baseline"
        )
    for key in ("suite", "metrics", "environment", "model"):
        if not isinstance(doc.get(key), dict):
            raise RepcheckError(f"baseline {path} is missing its {key!r} block")
    suite = Suite.from_dict(doc["suite"], base_dir=path.resolve().parent, where=f"baseline {path} suite")
    inputs = doc.get("inputs")
    if inputs is not None and not (
        isinstance(inputs, dict)
        and all(
            isinstance(inputs.get(k), list) and all(isinstance(t, str) for t in inputs[k])
            for k in ("sentences", "prompts")
        )
        and inputs["sentences"]
    ):
        raise RepcheckError(f"baseline {path}: its 'inputs' block is malformed")
    for name, m in doc["metrics"].items():
        if not isinstance(m, dict) or "value" not in m:
            raise RepcheckError(f"baseline {path}: metric {name!r} has no value")
    return doc, suite


@dataclass
class MetricCheck:
    name: str
    direction: str | None
    baseline: float | None
    current: float | None
    delta: float | None
    tolerance: float
    tolerance_source: str
    baseline_stderr: float | None
    current_stderr: float | None
    status: str  # pass, regressed, improved, reported


@dataclass
class CheckReport:
    verdict: str  # "pass" or "regressed"
    metrics: list[MetricCheck]
    warnings: list[str] = field(default_factory=list)
    baseline_path: str = ""
    baseline_model: dict[str, Any] = field(default_factory=dict)
    baseline_environment: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)

    @property
    def regressed(self) -> list[MetricCheck]:
        return [m for m in self.metrics if m.status == "regressed"]

    @property
    def exit_code(self) -> int:
        return EXIT_REGRESSION if self.verdict == "regressed" else EXIT_PASS

    def headline(self) -> str:
        if self.verdict == "regressed":
            names = ", ".join(m.name for m in self.regressed)
            return f"REGRESSED: {len(self.regressed)} of {len(self.metrics)} metrics ({names})"
        improved = sum(m.status == "improved" for m in self.metrics)
        return f"PASS: {len(self.metrics)} metrics within tolerance" + (f", {improved} improved" if improved else "")

    def to_dict(self) -> dict[str, Any]:
        from . import __version__

        return json_safe(
            {
                "schema_version": BASELINE_SCHEMA_VERSION,
                "kind": "check",
                "repcheck_version": __version__,
                "verdict": self.verdict,
                "exit_code": self.exit_code,
                "headline": self.headline(),
                "warnings": self.warnings,
                "baseline": {
                    "path": self.baseline_path,
                    "model": self.baseline_model,
                    "environment": self.baseline_environment,
                },
                "current": {"model": self.model, "environment": self.environment},
                "counts": {
                    s: sum(m.status == s for m in self.metrics) for s in ("pass", "regressed", "improved", "reported")
                },
                "metrics": [asdict(m) for m in self.metrics],
            }
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, allow_nan=False)

    def to_markdown(self) -> str:
        icon = "❌" if self.verdict == "regressed" else "✅"
        lines = [
            f"## {icon} repcheck check: {self.headline()}",
            "",
            f"Model `{self.model.get('spec')}` against baseline `{self.baseline_path}` "
            f"(model `{self.baseline_model.get('spec')}`).",
            "",
        ]
        for w in self.warnings:
            lines.append(f"> ⚠️ {w}")
        if self.warnings:
            lines.append("")
        header = [
            "| metric | better | baseline | current | delta | tolerance | status |",
            "|---|---|---|---|---|---|---|",
        ]

        def row(m: MetricCheck) -> str:
            return (
                f"| `{m.name}` | {m.direction or '–'} | {_fmt(m.baseline)} | {_fmt(m.current)} | "
                f"{_fmt(m.delta, signed=True)} | {_fmt(m.tolerance)} ({m.tolerance_source}) | {_STATUS[m.status]} |"
            )

        if self.regressed:
            lines += ["### Regressed", ""] + header + [row(m) for m in self.regressed] + [""]
        lines += ["<details><summary>All metrics</summary>", ""] + header + [row(m) for m in self.metrics]
        lines += ["", "</details>", ""]
        return "\n".join(lines)

    def to_junit(self) -> str:
        from xml.sax.saxutils import escape, quoteattr

        failures = len(self.regressed)
        out = [
            '<?xml version="1.0" encoding="UTF-8"?>',
            f'<testsuites name="repcheck" tests="{len(self.metrics)}" failures="{failures}">',
            f'  <testsuite name="repcheck check" tests="{len(self.metrics)}" failures="{failures}" errors="0" '
            f'skipped="0">',
        ]
        if self.warnings:
            out.append(f"    <system-err>{escape(chr(10).join(self.warnings))}</system-err>")
        for m in self.metrics:
            detail = (
                f"baseline {_fmt(m.baseline)}, current {_fmt(m.current)}, delta {_fmt(m.delta, signed=True)}, "
                f"tolerance {_fmt(m.tolerance)} ({m.tolerance_source}), {m.direction or 'no direction'}"
            )
            out.append(f'    <testcase classname="repcheck.check" name={quoteattr(m.name)}>')
            if m.status == "regressed":
                out.append(
                    f'      <failure message={quoteattr("regressed: " + detail)} type="regression">'
                    f"{escape(detail)}</failure>"
                )
            else:
                out.append(f"      <system-out>{escape(m.status + ': ' + detail)}</system-out>")
            out.append("    </testcase>")
        out += ["  </testsuite>", "</testsuites>", ""]
        return "\n".join(out)


_STATUS = {"pass": "pass", "regressed": "**regressed**", "improved": "improved", "reported": "reported"}


def environment_changes(baseline_env: dict[str, Any], current_env: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(blocking, informational) differences between two environments."""
    blocking, info = [], []
    for key in ("dtype",):
        if baseline_env.get(key) != current_env.get(key):
            blocking.append(f"{key} differs: baseline {baseline_env.get(key)}, now {current_env.get(key)}")
    for key in ("device", "repcheck_version", "torch_version", "transformers_version"):
        if baseline_env.get(key) != current_env.get(key):
            info.append(f"{key} differs: baseline {baseline_env.get(key)}, now {current_env.get(key)}")
    return blocking, info


def preflight(
    baseline_doc: dict[str, Any], suite: Suite, given_suite: Suite | None, allow_env_change: bool
) -> list[str]:
    """Refuse a check that would compare different measurements, before loading any model."""
    warnings = []
    if given_suite is not None and given_suite.to_dict() != suite.to_dict():
        msg = "the suite given differs from the baseline's suite; the baseline's suite is used"
        if not allow_env_change:
            raise RepcheckError(msg.split(";")[0] + "; recreate the baseline or pass --allow-env-change")
        warnings.append(msg)
    stored = baseline_doc.get("inputs")
    if stored:
        try:
            now = suite_inputs(suite)
        except RepcheckError:
            now = None  # the files are gone: the stored texts are all that is needed
        if now is not None and now != stored:
            warnings.append(
                "the suite's sentence or prompt files changed since the baseline was created; "
                "the baseline's own texts are measured"
            )
    return warnings


def check(
    model: LoadedModel,
    baseline_doc: dict[str, Any],
    suite: Suite,
    *,
    baseline_path: str = "",
    allow_env_change: bool = False,
    warnings: list[str] | None = None,
    progress: ProgressCallback | None = None,
) -> CheckReport:
    """Measure ``model`` with the baseline's suite and compare every metric."""
    env = environment(model)
    blocking, info = environment_changes(baseline_doc["environment"], env)
    if blocking and not allow_env_change:
        raise RepcheckError(
            f"{'; '.join(blocking)}: numbers would not be comparable; pass --allow-env-change to check anyway"
        )
    warnings = list(warnings or []) + blocking + info
    inputs = baseline_doc.get("inputs") or suite_inputs(suite)
    current = measure(model, suite, inputs, progress)
    rows = []
    for name in suite.metric_names():
        base = baseline_doc["metrics"].get(name)
        if base is None:
            raise RepcheckError(f"the baseline has no metric {name!r}: recreate it with this repcheck version")
        rule = suite.rule(name)
        cur = current[name]
        b_value = _num(base.get("value"))
        tol, source = tolerance(rule.tolerance, _num(base.get("stderr")), suite)
        delta = cur.value - b_value if math.isfinite(cur.value) and math.isfinite(b_value) else math.nan
        status = "reported"
        if rule.direction is not None and math.isfinite(delta):
            worse = delta if rule.direction == "lower" else -delta
            status = "regressed" if worse > tol else ("improved" if worse < -tol else "pass")
        rows.append(
            MetricCheck(
                name,
                rule.direction,
                b_value,
                cur.value,
                delta,
                tol,
                source,
                _num(base.get("stderr")),
                cur.stderr,
                status,
            )
        )
    verdict = "regressed" if any(r.status == "regressed" for r in rows) else "pass"
    return CheckReport(
        verdict,
        rows,
        warnings,
        baseline_path,
        baseline_doc.get("model", {}),
        baseline_doc["environment"],
        model.info(),
        env,
    )


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)


def _fmt(v: float | None, signed: bool = False) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:+.4f}" if signed else f"{v:.4f}"
