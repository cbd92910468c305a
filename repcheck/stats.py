"""The statistics behind every interval and tolerance repcheck reports.

* ``mean_ci95``: mean over sentences (or prompts) with a 95% Student-t interval;
* ``bootstrap_stderr``: the standard error of a mean from seeded bootstrap resamples (the
  gate's noise-aware tolerances);
* ``spearman``: rank correlation (ties get their average rank).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Two-sided 95% critical values of Student's t for 1..30 degrees of freedom (published table
# values, three decimals; tests check them against scipy).
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip

#: Below this many sentences an interval is shown with a warning: it says little.
SMALL_N = 5


def t_critical_95(df: int) -> float:
    if df < 1:
        return math.nan
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964  # Cornish-Fisher expansion around the normal quantile, within 1e-3 beyond 30 df
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def finite(values) -> np.ndarray:
    """The finite values as float64 (None and NaN dropped)."""
    x = np.asarray([math.nan if v is None else v for v in values], dtype=np.float64)
    return x[np.isfinite(x)]


def mean_ci95(values) -> tuple[float, float, float]:
    """(mean, low, high) over the finite values; the interval is NaN with fewer than two."""
    x = finite(values)
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if len(x) < 2:
        return mean, math.nan, math.nan
    half = t_critical_95(len(x) - 1) * float(x.std(ddof=1)) / math.sqrt(len(x))
    return mean, mean - half, mean + half


@dataclass
class Estimate:
    value: float  # mean of the finite values (NaN if none)
    stderr: float  # bootstrap standard error of that mean (NaN with fewer than two values)
    n: int  # how many finite values


def bootstrap_stderr(values, resamples: int, seed: int) -> Estimate:
    """Mean of the finite values and the standard deviation of ``resamples`` bootstrap means."""
    x = finite(values)
    if len(x) == 0:
        return Estimate(math.nan, math.nan, 0)
    if len(x) == 1:
        return Estimate(float(x[0]), math.nan, 1)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(resamples, len(x)))].mean(axis=1)
    return Estimate(float(x.mean()), float(means.std(ddof=1)), len(x))


def ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank."""
    order = np.argsort(x, kind="mergesort")
    r = np.empty(len(x), dtype=np.float64)
    r[order] = np.arange(1, len(x) + 1)
    for value in np.unique(x):
        tied = x == value
        if tied.sum() > 1:
            r[tied] = r[tied].mean()
    return r


def spearman(a, b) -> float:
    """Spearman's rank correlation over the pairs where both values are finite (NaN if < 3
    pairs or a side is constant)."""
    a = np.asarray([math.nan if v is None else v for v in a], dtype=np.float64)
    b = np.asarray([math.nan if v is None else v for v in b], dtype=np.float64)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if len(a) < 3:
        return math.nan
    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return math.nan
    return float(np.corrcoef(ra, rb)[0, 1])


def wilson_ci95(successes: int, n: int) -> tuple[float, float]:
    """Wilson's 95% score interval for a proportion (sound at 0 and n successes, where the
    normal approximation collapses to a point); NaN for n = 0."""
    if n == 0:
        return math.nan, math.nan
    z = 1.959964
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)
