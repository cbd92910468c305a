"""Side-by-side probes of several checkpoints on the same sentences.

Every model is probed with the same sentences, repeats and prefix text. Deltas against the
first model are paired over sentences: the mean of per-sentence differences with a 95%
Student-t interval.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .builtin import ProgressCallback
from .errors import RepcheckError
from .models import LoadedModel
from .probing import probe
from .results import SCHEMA_VERSION, SUMMARY_METRICS, ProbeResult, json_safe
from .stats import mean_ci95


@dataclass
class DiffResult:
    labels: list[str]  # one per model, unique
    runs: list[ProbeResult]  # one per model, same sentences in the same order

    def deltas(self) -> list[dict[str, Any]]:
        """For each model after the first and each summary metric: the paired delta vs the first."""
        base = self.runs[0]
        rows = []
        for label, run in zip(self.labels[1:], self.runs[1:]):
            for m in SUMMARY_METRICS:
                diffs = [getattr(b.summary, m) - getattr(a.summary, m) for a, b in zip(base.sentences, run.sentences)]
                mean, lo, hi = mean_ci95(diffs)
                rows.append(
                    {
                        "model": label,
                        "reference": self.labels[0],
                        "metric": m,
                        "reference_value": base.summary()[m]["mean"],
                        "value": run.summary()[m]["mean"],
                        "delta": mean,
                        "ci95": [lo, hi],
                    }
                )
        return rows

    def to_frame(self):
        """One row per (model, copy n): TP, MP, IP, WR, AR means over sentences."""
        import pandas as pd

        frames = []
        for label, run in zip(self.labels, self.runs):
            f = run.mean_frame()
            f.insert(0, "model", label)
            frames.append(f)
        return pd.concat(frames, ignore_index=True)

    def delta_frame(self):
        import pandas as pd

        return pd.DataFrame(
            [
                {**{k: v for k, v in r.items() if k != "ci95"}, "ci_low": r["ci95"][0], "ci_high": r["ci95"][1]}
                for r in self.deltas()
            ]
        )

    def to_dict(self) -> dict[str, Any]:
        from . import __version__

        first = self.runs[0]
        return json_safe(
            {
                "schema_version": SCHEMA_VERSION,
                "kind": "diff",
                "repcheck_version": __version__,
                "repeats": first.repeats,
                "prefix": first.prefix,
                "sentences": [s.text for s in first.sentences],
                "models": [
                    {"label": label, **run.model, "dtype": run.dtype, "device": run.device}
                    for label, run in zip(self.labels, self.runs)
                ],
                "deltas": self.deltas(),
                "runs": [run.to_dict() for run in self.runs],
            }
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, allow_nan=False)


def unique_labels(names: Sequence[str]) -> list[str]:
    """Model names, prefixed with A:, B:, ... so that two checkpoints named alike stay apart."""
    return [f"{chr(ord('A') + i)}: {n}" if i < 26 else f"{i}: {n}" for i, n in enumerate(names)]


def diff_models(
    models: Sequence[LoadedModel],
    sentences: str | Sequence[str],
    *,
    repeats: int = 10,
    prefix: str | None = None,
    batch_size: int = 8,
    labels: Sequence[str] | None = None,
    progress: ProgressCallback | None = None,
) -> DiffResult:
    """Probe every model on the same sentences (each model tokenizes the text itself)."""
    if len(models) < 2:
        raise RepcheckError("diff needs at least two models")
    if isinstance(sentences, str):
        sentences = [sentences]
    labels = list(labels) if labels is not None else unique_labels([m.name for m in models])
    runs = []
    for label, model in zip(labels, models):
        if progress:
            progress(f"probing {label}", 0, 0)
        runs.append(
            probe(model, list(sentences), repeats=repeats, prefix=prefix, batch_size=batch_size, progress=progress)
        )
    return DiffResult(labels, runs)
