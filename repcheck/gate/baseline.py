"""Measure a suite on a model, write it as a baseline, and read a baseline back.

Every metric is a mean over sentences (or prompts) with a bootstrap standard error; its
default tolerance is ``max(k * baseline stderr, floor)``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..backends.base import Backend
from ..errors import RepcheckError
from ..metric_info import GATE_COMPARE_METRICS, GATE_PROBE_METRICS
from ..progress import ProgressCallback
from ..provenance import SCHEMA_VERSION, envelope, json_safe
from ..stats import Estimate, bootstrap_stderr
from .suite import Suite

#: Baselines written by repcheck 0.1 (schema 1) have the same blocks and are still read.
READABLE_SCHEMAS = (1, SCHEMA_VERSION)


def suite_inputs(suite: Suite) -> dict[str, list]:
    """The sentences, prompts and legit cases the suite's files name, read now."""
    inputs: dict[str, list] = {"sentences": suite.sentences(), "prompts": suite.prompts() if suite.compare else []}
    if suite.legit:
        inputs["legit"] = suite.legit_cases()
    return inputs


def measure(
    model: Backend, suite: Suite, inputs: dict[str, list], progress: ProgressCallback | None = None
) -> dict[str, Estimate]:
    """Run the suite on ``model`` with these sentences and prompts: every metric of
    ``suite.metric_names()``."""
    from ..compare import run_compare
    from ..decoding import parse_setting
    from ..probing import probe

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
    out: dict[str, Estimate] = {}
    for i, m in enumerate(GATE_PROBE_METRICS):
        if m == "lock_in_rate":
            values = [float(s.summary.lock_in_copy is not None) for s in result.sentences]
        else:
            values = [getattr(s.summary, m) for s in result.sentences]
        out[f"probe.{m}"] = bootstrap_stderr(values, boot, suite.seed + i)
    if suite.compare:
        from ..guard import DEFAULT_GUARD
        from ..prompts import Prompt, check_messages

        c = suite.compare
        settings = [parse_setting(s) for s in c.settings]
        given = [
            Prompt(messages=check_messages(p["messages"], "the suite's prompts")) if isinstance(p, dict) else p
            for p in prompts
        ]
        cmp = run_compare(
            model,
            settings,
            given,
            max_new_tokens=c.max_new_tokens,
            samples=c.samples,
            seed=suite.seed,
            batch_size=suite.probe.batch_size,
            stop_on_loop=DEFAULT_GUARD if c.stop_on_loop else None,
            progress=progress,
        )
        for s in settings:
            for i, m in enumerate(GATE_COMPARE_METRICS):
                key = "loop" if m == "loop_rate" else m
                out[f"compare.{s.name}.{m}"] = bootstrap_stderr(cmp.per_prompt(s.name, key), boot, suite.seed + 100 + i)
    if suite.legit:
        from ..legit import run_legit
        from ..legit.suite import suite_from_dicts

        cases = suite_from_dicts(f"legit suite {suite.legit.suite}", inputs["legit"])
        for i, text in enumerate(suite.legit.settings):
            s = parse_setting(text)
            result = run_legit(model, cases, s, seed=suite.seed, batch_size=suite.probe.batch_size, progress=progress)
            passed = [float(c.passed) for c in result.cases]
            out[f"legit.{s.name}.pass_rate"] = bootstrap_stderr(passed, boot, suite.seed + 200 + i)
    return out


def environment(model: Backend) -> dict[str, Any]:
    """What must match for two measurements to be comparable (the versions are in the envelope)."""
    return {"device": model.device, "dtype": model.dtype, "backend": model.kind}


def tolerance(explicit: float | None, stderr: float, suite: Suite) -> tuple[float, str]:
    """The tolerance of a metric and where it came from."""
    if explicit is not None:
        return float(explicit), "suite"
    noise = suite.gate.k * stderr if stderr is not None and math.isfinite(stderr) else 0.0
    return (noise, f"{suite.gate.k:g} x stderr") if noise > suite.gate.floor else (suite.gate.floor, "floor")


def create_baseline(model: Backend, suite: Suite, progress: ProgressCallback | None = None) -> dict[str, Any]:
    """The baseline document: environment, the suite itself, every metric with its spread."""
    started = time.perf_counter()
    inputs = suite_inputs(suite)
    values = measure(model, suite, inputs, progress)
    metrics = {}
    for name, m in values.items():
        rule = suite.rule(name)
        if rule.direction is not None and not math.isfinite(m.value):
            raise RepcheckError(
                f"the gated metric {name!r} measured {m.value} on this model: a baseline cannot gate on it "
                "(report it only, or change the suite)"
            )
        metrics[name] = {
            **asdict(m),
            "direction": rule.direction,
            "tolerance": tolerance(rule.tolerance, m.stderr, suite)[0],
        }
    from ..provenance import versions

    return json_safe(
        {
            **envelope("baseline", versions_={**versions(), **model.versions()}),
            "model": model.info(),
            "environment": environment(model),
            "seed": suite.seed,
            "bootstrap": {
                "resamples": suite.gate.bootstrap,
                "seed": suite.seed,
                "over": "sentences (probe) / prompts (compare) / cases (legit)",
            },
            "suite": suite.to_dict(),
            # The texts themselves, so a check measures exactly these even if the files change.
            "inputs": inputs,
            "metrics": metrics,
            "elapsed_s": round(time.perf_counter() - started, 2),
        }
    )


def load_baseline(path: str | Path) -> tuple[dict[str, Any], Suite]:
    """Read and validate a baseline, before any model is loaded; every problem is a
    one-line RepcheckError."""
    from ..docfiles import read_json

    path = Path(path)
    doc = read_json(path, "baseline")
    if not isinstance(doc, dict) or doc.get("kind") != "baseline":
        raise RepcheckError(f"{path} is not a repcheck baseline (create one with `repcheck baseline create`)")
    if doc.get("schema_version") not in READABLE_SCHEMAS:
        raise RepcheckError(
            f"baseline {path} has schema_version {doc.get('schema_version')!r}; this repcheck reads "
            f"version {SCHEMA_VERSION}: recreate the baseline"
        )
    for key in ("suite", "metrics", "environment", "model"):
        if not isinstance(doc.get(key), dict):
            raise RepcheckError(f"baseline {path} is missing its {key!r} block")
    suite = Suite.from_dict(doc["suite"], base_dir=path.resolve().parent, where=f"baseline {path} suite")
    inputs = doc.get("inputs")

    def usable(t: Any, chat: bool) -> bool:  # a text, or with chat a {"messages": [...]} conversation
        return (isinstance(t, str) and bool(t.strip())) or (chat and isinstance(t, dict) and set(t) == {"messages"})

    chat = bool(suite.compare and suite.compare.chat)
    if inputs is not None and not (
        isinstance(inputs, dict)
        and all(isinstance(inputs.get(k), list) for k in ("sentences", "prompts"))
        and all(usable(t, False) for t in inputs["sentences"])
        and all(usable(t, chat) for t in inputs["prompts"])
        and inputs["sentences"]
        and (bool(inputs["prompts"]) == (suite.compare is not None))
        and (("legit" in inputs) == (suite.legit is not None))
    ):
        raise RepcheckError(f"baseline {path}: its 'inputs' block is malformed")
    if inputs is not None and suite.legit is not None:
        from ..legit.suite import suite_from_dicts

        suite_from_dicts(f"baseline {path}: inputs.legit", inputs["legit"])  # every stored case still valid
    for name in suite.metric_names():
        m = doc["metrics"].get(name)
        if m is None:
            raise RepcheckError(f"baseline {path} has no metric {name!r}: recreate it with this repcheck version")
        if not isinstance(m, dict) or "value" not in m:
            raise RepcheckError(f"baseline {path}: metric {name!r} has no value")
        for field_name in ("value", "stderr", "tolerance"):
            v = m.get(field_name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise RepcheckError(f"baseline {path}: metric {name!r} has a non-numeric {field_name} ({v!r})")
            if field_name == "tolerance" and v is not None and v < 0:
                raise RepcheckError(f"baseline {path}: metric {name!r} has a negative tolerance")
        if m.get("direction") not in (None, "lower", "higher"):
            raise RepcheckError(f"baseline {path}: metric {name!r} has an unknown direction {m.get('direction')!r}")
        if m.get("direction") is not None:  # a gated metric: a regression is judged against these numbers
            for field_name in ("value", "stderr", "tolerance"):
                v = m.get(field_name)
                if (v is None and field_name == "value") or (v is not None and not math.isfinite(v)):
                    raise RepcheckError(
                        f"baseline {path}: gated metric {name!r} has {field_name} {v!r}, not a finite number; "
                        "nothing can be checked against it (recreate the baseline)"
                    )
    env = doc["environment"]
    if not isinstance(env.get("dtype"), str):
        raise RepcheckError(f"baseline {path}: its environment block has no dtype")
    for block in ("environment", "versions"):
        value = doc.get(block, {})
        if not isinstance(value, dict) or not all(isinstance(v, (str, type(None))) for v in value.values()):
            raise RepcheckError(f"baseline {path}: its {block!r} block must map names to strings")
    return doc, suite
