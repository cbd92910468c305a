"""Typed probe results. The JSON document (``ProbeResult.to_dict``) is the source of truth:
tables, CSVs and plots are all derived from it, and ``ProbeResult.from_dict`` reads it back.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .metric_info import COPY_METRICS, POSITION_METRICS, SUMMARY_METRICS
from .metrics import (
    LOCK_IN_THRESHOLD,
    POSITION_GROUPS,
    CopyMetrics,
    SentenceSummary,
    per_copy_metrics,
    position_metrics,
    sentence_summary,
)
from .provenance import SCHEMA_VERSION, check_envelope, dumps, envelope, json_safe, utc_now
from .stats import mean_ci95, spearman

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["SCHEMA_VERSION", "COPY_METRICS", "SUMMARY_METRICS", "ProbeResult", "SentenceResult", "json_safe"]

#: Quantile bins of TP(0) for the initial-probability analysis (``by_initial.png``).
INITIAL_BINS = 4
#: How per-copy metrics are windowed and averaged: repcheck's definitions (repcheck.metrics)
#: or DITTO's code (metrics.ditto_per_copy).
CONVENTIONS = ("repcheck", "ditto")


def check_convention(convention: str, repeats: int) -> None:
    """A known convention; DITTO's windows reach into the next copy, so it needs K >= 2."""
    from .errors import RepcheckError, require_int

    if convention not in CONVENTIONS:
        raise RepcheckError(
            f"unknown convention {convention!r}; choose one of {', '.join(CONVENTIONS)}", param="convention"
        )
    if convention == "ditto":
        require_int("repeats", repeats, 2)


@dataclass
class SentenceResult:
    """One sentence probed with K copies. Arrays are [K, L]."""

    text: str
    token_ids: list[int]
    tokens: list[str]  # each token decoded on its own
    p: np.ndarray  # [K, L] probability of the repeated token
    pmax: np.ndarray  # [K, L] maximum next-token probability
    argmax_ids: np.ndarray  # [K, L] the token reaching pmax
    argmax_tokens: list[list[str]]  # [K][L] those tokens decoded
    per_copy: list[CopyMetrics] = field(init=False)
    summary: SentenceSummary = field(init=False)
    by_position: dict[str, dict[str, list[float]]] = field(init=False)  # {group: {metric: [K]}}

    def __post_init__(self) -> None:
        self.p = np.asarray(self.p, dtype=np.float64)
        self.pmax = np.asarray(self.pmax, dtype=np.float64)
        self.argmax_ids = np.asarray(self.argmax_ids, dtype=np.int64)
        self.per_copy = per_copy_metrics(self.p, self.pmax)
        self.summary = sentence_summary(self.per_copy)
        self.by_position = position_metrics(self.p, self.pmax)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "token_ids": list(self.token_ids),
            "tokens": list(self.tokens),
            "per_copy": [asdict(c) for c in self.per_copy],
            "by_position": self.by_position,
            "summary": asdict(self.summary),
            "p": self.p.tolist(),
            "pmax": self.pmax.tolist(),
            "argmax_ids": self.argmax_ids.tolist(),
            "argmax_tokens": self.argmax_tokens,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SentenceResult:
        return cls(
            text=d["text"],
            token_ids=d["token_ids"],
            tokens=d["tokens"],
            p=d["p"],
            pmax=d["pmax"],
            argmax_ids=d["argmax_ids"],
            argmax_tokens=d["argmax_tokens"],
        )


@dataclass
class ProbeResult:
    """The probe of one model on one or more sentences, each repeated ``repeats`` times."""

    model: dict[str, Any]  # spec, name, source, sha256, context_length, class
    dtype: str
    device: str
    repeats: int
    prefix: str | None
    prefix_ids: list[int]
    sentences: list[SentenceResult]
    settings: dict[str, Any] = field(default_factory=dict)  # batch size, random-sentence options, ablated heads, ...
    provenance: dict[str, Any] = field(default_factory=dict)  # elapsed time, tokens, throughput
    versions: dict[str, str] = field(default_factory=dict)  # engine versions beyond the envelope's
    warnings: list[str] = field(default_factory=list)  # e.g. copies outside a sliding window
    created: str = field(default_factory=utc_now)
    convention: str = "repcheck"  # how per_copy() windows and averages (CONVENTIONS)

    def __post_init__(self) -> None:
        check_convention(self.convention, self.repeats)

    # ---- aggregates over sentences -------------------------------------------------------
    def per_copy(self) -> list[dict[str, Any]]:
        """Per copy n: the mean of each metric over sentences and its 95% interval, and the
        same means per token position group (first / middle / last token of the copy).
        Under the ditto convention: DITTO's shifted windows pooled over tokens, K-1 rows, no
        intervals (a pooled mean has none)."""
        if self.convention == "ditto":
            return self._ditto_per_copy()
        rows = []
        for n in range(self.repeats):
            row: dict[str, Any] = {"n": n}
            ci: dict[str, list[float]] = {}
            for m in COPY_METRICS:
                mean, lo, hi = mean_ci95([getattr(s.per_copy[n], m) for s in self.sentences])
                row[m], ci[m] = mean, [lo, hi]
            row["ci95"] = ci
            row["n_sentences"] = len(self.sentences)
            row["by_position"] = {
                g: {m: mean_ci95([s.by_position[g][m][n] for s in self.sentences])[0] for m in POSITION_METRICS}
                for g in POSITION_GROUPS
            }
            rows.append(row)
        return rows

    def _ditto_per_copy(self) -> list[dict[str, Any]]:
        from .metrics import ditto_per_copy

        rows = ditto_per_copy([s.p for s in self.sentences], [s.pmax for s in self.sentences])
        for row in rows:
            row["ip_sentence"] = math.nan
            row["ci95"] = {m: [None, None] for m in COPY_METRICS}
            row["n_sentences"] = len(self.sentences)
            row["by_position"] = {g: {m: None for m in POSITION_METRICS} for g in POSITION_GROUPS}
        return rows

    def initial_probability(self, bins: int = INITIAL_BINS) -> dict[str, Any]:
        """The paper's third finding: do sentences with a higher initial probability TP(0)
        reinforce more strongly? Spearman correlations of TP(0) with the rise TP(K-1) - TP(0)
        and with the lock-in copy (sentences that never lock in count as K), and the mean TP
        curve of each quantile bin of TP(0) (sentences sorted by TP(0), split into ``bins``
        groups of nearly equal size; fewer bins when there are fewer than 2 sentences a bin)."""
        first = np.array([s.summary.tp_first for s in self.sentences])
        rise = [s.summary.tp_rise for s in self.sentences]
        lock = [self.repeats if s.summary.lock_in_copy is None else s.summary.lock_in_copy for s in self.sentences]
        n_bins = max(1, min(bins, len(self.sentences) // 2))
        groups = [g for g in np.array_split(np.argsort(first, kind="mergesort"), n_bins) if len(g)]
        out_bins = []
        for g in groups:
            curve = [mean_ci95([self.sentences[i].per_copy[n].tp for i in g]) for n in range(self.repeats)]
            out_bins.append(
                {
                    "tp_first_range": [float(first[g].min()), float(first[g].max())],
                    "n": int(len(g)),
                    "tp": [c[0] for c in curve],
                    "ci95": [[c[1], c[2]] for c in curve],
                }
            )
        return {
            "spearman_tp_first_vs_rise": spearman(first, rise),
            "spearman_tp_first_vs_lock_in_copy": spearman(first, lock),
            "lock_in_never_counts_as": self.repeats,
            "bins": out_bins,
        }

    def summary(self) -> dict[str, Any]:
        """Each summary scalar's mean over sentences with its 95% interval and spread."""
        out: dict[str, Any] = {}
        for m in SUMMARY_METRICS:
            values = np.array([getattr(s.summary, m) for s in self.sentences], dtype=np.float64)
            mean, lo, hi = mean_ci95(values)
            finite = values[np.isfinite(values)]
            stderr = float(finite.std(ddof=1) / math.sqrt(len(finite))) if len(finite) > 1 else math.nan
            out[m] = {"mean": mean, "ci95": [lo, hi], "stderr": stderr, "n": int(len(finite))}
        locks = [s.summary.lock_in_copy for s in self.sentences]
        out["lock_in_rate"] = sum(x is not None for x in locks) / len(locks)
        reached = [x for x in locks if x is not None]
        out["lock_in_copy_mean"] = float(np.mean(reached)) if reached else None
        out["lock_in_threshold"] = LOCK_IN_THRESHOLD
        return out

    # ---- views ---------------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """One row per (sentence, copy n): TP, MP, IP, WR, AR."""
        import pandas as pd

        return pd.DataFrame([{"sentence": i, **asdict(c)} for i, s in enumerate(self.sentences) for c in s.per_copy])

    def mean_frame(self) -> pd.DataFrame:
        """One row per copy n: the mean over sentences with 95% interval bounds."""
        import pandas as pd

        rows = []
        for r in self.per_copy():
            row = {"n": r["n"], "n_sentences": r["n_sentences"]}
            for m in COPY_METRICS:
                row[m], row[f"{m}_ci_low"], row[f"{m}_ci_high"] = r[m], *r["ci95"][m]
            for g, values in r["by_position"].items():
                for m, v in values.items():
                    row[f"{m}_{g}_token"] = v
            rows.append(row)
        return pd.DataFrame(rows)

    def token_frame(self) -> pd.DataFrame:
        """One row per (sentence, n, l): token, p, pmax and the argmax token."""
        import pandas as pd

        rows = []
        for i, s in enumerate(self.sentences):
            K, L = s.p.shape
            for n in range(K):
                for l in range(L):
                    rows.append(
                        {
                            "sentence": i,
                            "n": n,
                            "l": l,
                            "token": s.tokens[l],
                            "token_id": s.token_ids[l],
                            "p": s.p[n, l],
                            "pmax": s.pmax[n, l],
                            "argmax_id": int(s.argmax_ids[n, l]),
                            "argmax_token": s.argmax_tokens[n][l],
                        }
                    )
        return pd.DataFrame(rows)

    # ---- JSON ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        from .provenance import versions

        doc = {
            **envelope("probe", self.created, {**versions(), **self.versions}),
            "model": self.model,
            "dtype": self.dtype,
            "device": self.device,
            "repeats": self.repeats,
            "convention": self.convention,
            "prefix": self.prefix,
            "prefix_ids": list(self.prefix_ids),
            "settings": self.settings,
            "provenance": self.provenance,
            "warnings": list(self.warnings),
            "per_copy": self.per_copy(),
            "summary": self.summary(),
            "initial_probability": self.initial_probability(),
            "sentences": [s.to_dict() for s in self.sentences],
        }
        return json_safe(doc)

    def to_json(self, indent: int | None = 2) -> str:
        return dumps(self.to_dict(), indent=indent)

    def write(
        self, out_dir: str | Path, fmt: str = "png", position: int | None = None, overwrite: bool = False
    ) -> list[Path]:
        """summary.json, per_copy.csv, per_sentence.csv, per_token.csv, bars.<fmt>, curve.<fmt>
        (and, for a set, by_initial.<fmt>) into exactly ``out_dir`` (``outputs.publish``)."""
        from .outputs import check_format, publish
        from .plots import probe_figures

        check_format(fmt)
        doc = self.to_dict()

        def write(tmp: Path) -> None:
            self.mean_frame().to_csv(tmp / "per_copy.csv", index=False)
            self.to_frame().to_csv(tmp / "per_sentence.csv", index=False)
            self.token_frame().to_csv(tmp / "per_token.csv", index=False)
            probe_figures(doc, tmp, fmt, position=position)

        return publish(out_dir, "probe", doc, write, overwrite)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProbeResult:
        """Read a probe document back (``summary.json``); ValueError if it is not one."""
        check_envelope(d, "probe", "the document")
        try:
            return cls(
                model=d["model"],
                dtype=d["dtype"],
                device=d["device"],
                repeats=d["repeats"],
                prefix=d["prefix"],
                prefix_ids=d["prefix_ids"],
                sentences=[SentenceResult.from_dict(_nan(s)) for s in d["sentences"]],
                settings=d.get("settings", {}),
                provenance=d.get("provenance", {}),
                versions=d.get("versions", {}),
                warnings=d.get("warnings", []),
                created=d.get("created") or utc_now(),
                convention=d.get("convention", "repcheck"),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"the probe document is malformed ({type(err).__name__}: {err})") from None


def _nan(obj: Any) -> Any:
    """Inverse of ``provenance.json_safe`` for p and pmax read back from JSON: null is NaN again."""
    if obj is None:
        return math.nan
    if isinstance(obj, dict):
        return {k: (_nan(v) if k in ("p", "pmax") else v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_nan(v) for v in obj]
    return obj
