"""Side-by-side probes of several checkpoints on the same sentences.

Every model is probed with the same sentences, repeats and prefix text. Models given as
specs are loaded, probed and freed one at a time, so two large checkpoints never need to
fit in memory together. Deltas against the first model are paired over sentences: the mean
of per-sentence differences with a 95% Student-t interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .backends.base import Backend
from .decoding import DecodingSetting
from .errors import RepcheckError, require_int
from .legit import LegitResult, LegitSuite
from .metric_info import SUMMARY_METRICS
from .probing import probe
from .progress import ProgressCallback
from .provenance import dumps, envelope, json_safe, utc_now
from .results import ProbeResult
from .stats import mean_ci95


@dataclass
class DiffResult:
    labels: list[str]  # one per model, unique
    runs: list[ProbeResult]  # one per model, same sentences in the same order
    created: str = field(default_factory=utc_now)
    legit: list[LegitResult] = field(default_factory=list)  # one per model, with a legit suite

    def legit_deltas(self) -> list[dict[str, Any]]:
        """For each model after the first: the legit pass rate's paired difference over cases
        against the first model (mean of per-case differences, 95% interval)."""
        if not self.legit:
            return []
        base = [float(c.passed) for c in self.legit[0].cases]
        rows = []
        for label, result in zip(self.labels[1:], self.legit[1:]):
            mean, lo, hi = mean_ci95([float(c.passed) - b for c, b in zip(result.cases, base, strict=True)])
            rows.append(
                {
                    "model": label,
                    "reference": self.labels[0],
                    "metric": "legit_pass_rate",
                    "reference_value": self.legit[0].pass_rate,
                    "value": result.pass_rate,
                    "delta": mean,
                    "ci95": [lo, hi],
                }
            )
        return rows

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

    def copy_deltas(self, metric: str = "tp") -> list[dict[str, Any]]:
        """For each model after the first: per copy n, the paired difference of ``metric``
        against the first model (mean of per-sentence differences, 95% interval)."""
        base = self.runs[0]
        out = []
        for label, run in zip(self.labels[1:], self.runs[1:]):
            rows = []
            for n in range(base.repeats):
                diffs = [
                    getattr(b.per_copy[n], metric) - getattr(a.per_copy[n], metric)
                    for a, b in zip(base.sentences, run.sentences)
                ]
                mean, lo, hi = mean_ci95(diffs)
                rows.append({"n": n, "delta": mean, "ci95": [lo, hi]})
            out.append({"model": label, "reference": self.labels[0], "metric": metric, "per_copy": rows})
        return out

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
        first = self.runs[0]
        return json_safe(
            {
                **envelope("diff", self.created),
                "repeats": first.repeats,
                "prefix": first.prefix,
                "sentences": [s.text for s in first.sentences],
                "models": [
                    {"label": label, **run.model, "dtype": run.dtype, "device": run.device}
                    for label, run in zip(self.labels, self.runs)
                ],
                "deltas": self.deltas() + self.legit_deltas(),
                "copy_deltas": self.copy_deltas(),
                "runs": [run.to_dict() for run in self.runs],
                **(
                    {"legit": [{"label": lab, **lg.to_dict()} for lab, lg in zip(self.labels, self.legit)]}
                    if self.legit
                    else {}
                ),  # fmt: skip
            }
        )

    def to_json(self) -> str:
        return dumps(self.to_dict())

    def write(self, out_dir: str | Path, fmt: str = "png", overwrite: bool = False) -> list[Path]:
        """summary.json, per_copy.csv, deltas.csv, curves.<fmt> and bars.<fmt> into exactly
        ``out_dir`` (``outputs.publish``)."""
        from .outputs import check_format, publish
        from .plots import diff_figures

        check_format(fmt)
        doc = self.to_dict()

        def write(tmp: Path) -> None:
            self.to_frame().to_csv(tmp / "per_copy.csv", index=False)
            self.delta_frame().to_csv(tmp / "deltas.csv", index=False)
            diff_figures(doc, tmp, fmt)

        return publish(out_dir, "diff", doc, write, overwrite)


def unique_labels(names: Sequence[str]) -> list[str]:
    """Model names, prefixed with A:, B:, ... so that two checkpoints named alike stay apart."""
    return [f"{chr(ord('A') + i)}: {n}" if i < 26 else f"{i}: {n}" for i, n in enumerate(names)]


def diff_models(
    models: Sequence[str | Backend],
    sentences: str | Sequence[str],
    *,
    repeats: int = 10,
    prefix: str | None = None,
    batch_size: int = 8,
    labels: Sequence[str] | None = None,
    legit: LegitSuite | None = None,
    legit_setting: DecodingSetting | None = None,
    chat: str | None = None,
    progress: ProgressCallback | None = None,
    **load_options: Any,
) -> DiffResult:
    """Probe every model on the same sentences (each model tokenizes the text itself).

    ``models``: loaded backends, or specs (``"smollm2-135m"``, a directory, a .gguf) that are
    loaded with ``load_options`` (dtype, device, backend, ...), probed and freed one at a time.
    With ``legit`` (a legitimate-repetition suite), each model also runs it under
    ``legit_setting`` (greedy by default): what a fine-tune broke, beside what it fixed.
    ``chat``: probe in chat form (the copies as the answer to this user turn, through each
    model's chat template).
    """
    from .backends import load_model
    from .backends.registry import check_model_spec
    from .decoding import parse_setting
    from .legit import run_legit

    if len(models) < 2:
        raise RepcheckError("diff needs at least two models", param="model")
    require_int("repeats", repeats, 1)
    require_int("batch_size", batch_size, 1)
    for m in models:  # every spec, before the first model loads
        if isinstance(m, str):
            check_model_spec(load_options.get("backend", "hf"), m)
    if isinstance(sentences, str):
        sentences = [sentences]
    names = [m if isinstance(m, str) else m.name for m in models]
    labels = list(labels) if labels is not None else unique_labels(names)
    if len(labels) != len(models):
        raise RepcheckError(f"{len(labels)} labels for {len(models)} models", param="labels")
    setting = legit_setting or parse_setting("greedy")
    runs, legits = [], []
    for label, m in zip(labels, models):
        if progress:
            progress(f"loading {label}", 0, 0)
        model = load_model(m, progress=progress, **load_options) if isinstance(m, str) else m
        try:
            relabel = (lambda d, done, total, lab=label: progress(f"probing {lab}", done, total)) if progress else None
            runs.append(
                probe(
                    model,
                    list(sentences),
                    repeats=repeats,
                    prefix=prefix,
                    batch_size=batch_size,
                    progress=relabel,
                    chat=chat,
                )
            )
            if legit is not None:
                legits.append(run_legit(model, legit, setting, batch_size=max(batch_size, 16), progress=progress))
        finally:
            if isinstance(m, str):
                model.close()  # loaded here: free it before the next one
    return DiffResult(labels, runs, legit=legits)
