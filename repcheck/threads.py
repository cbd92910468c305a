"""How many CPU threads torch uses, and how its OpenMP threads wait: a policy that degrades
gracefully on a busy machine.

Measured on a 2-core machine with other jobs running (``benchmarks/under_load.py``): with
torch's defaults (one thread per core, OpenMP threads that spin ~300,000 times before
sleeping) a probe ran 3-4x slower than with one thread, because the spinning threads fight
the other jobs for the cores. The policy:

* OpenMP threads spin briefly (``GOMP_SPINCOUNT=10000``, ``KMP_BLOCKTIME=1`` for Intel's
  runtime) and then sleep: as fast as the default on an idle machine, much faster under load.
  Set before torch starts (the CLI does it at start-up); a value already in the environment
  is kept.
* threads = the cores this process may use minus the cores other processes kept busy while
  this one started (measured from ``/proc/stat`` between the CLI's start and the moment torch
  is loaded, this process's own CPU time taken out), rounded, at least 1. Where that cannot be
  measured (no /proc/stat, or repcheck used as a library), every core, as torch would.
  ``--threads N`` or ``REPCHECK_THREADS=N`` overrides it. (The load average is no substitute:
  it lags by a minute and counts this process's own previous runs.)
"""

from __future__ import annotations

import os
import time

OPENMP_DEFAULTS = {"GOMP_SPINCOUNT": "10000", "KMP_BLOCKTIME": "1"}
#: Shortest start-up window that says something about the other processes (seconds).
MIN_WINDOW = 0.3
_start: tuple[float, tuple[int, int] | None, float] | None = None


def prepare_openmp_env() -> None:
    """Short OpenMP spin-waits; effective only before torch is imported."""
    for key, value in OPENMP_DEFAULTS.items():
        os.environ.setdefault(key, value)


def _cpu_jiffies() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat (None elsewhere)."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def mark_start() -> None:
    """Start measuring how busy the machine is (the CLI calls it first thing)."""
    global _start
    _start = (time.monotonic(), _cpu_jiffies(), _own_cpu_seconds())


def busy_elsewhere() -> float | None:
    """Cores kept busy by other processes since ``mark_start`` (None if not measurable)."""
    if _start is None or _start[1] is None:
        return None
    wall = time.monotonic() - _start[0]
    now = _cpu_jiffies()
    if now is None or wall < MIN_WINDOW:
        return None
    busy, total = now[0] - _start[1][0], now[1] - _start[1][1]
    if total <= 0:
        return None
    cores = os.cpu_count() or 1
    busy_cores = cores * busy / total
    own = (_own_cpu_seconds() - _start[2]) / wall
    return max(0.0, busy_cores - own)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def max_threads() -> int:
    """The most threads repcheck asks for: 4 per core (more only fails to start threads)."""
    return 4 * (os.cpu_count() or 1)


def choose_threads(requested: int | None = None) -> tuple[int, str]:
    """(threads, why): ``requested``, else $REPCHECK_THREADS, else cores minus busy cores."""
    from .errors import RepcheckError

    most = max_threads()
    if requested is not None:
        if not 1 <= requested <= most:
            raise RepcheckError(
                f"threads must be between 1 and {most} (4 per core of this machine's {os.cpu_count() or 1}), "
                f"not {requested}",
                param="threads",
            )
        return requested, "requested"
    env = os.environ.get("REPCHECK_THREADS", "").strip()
    if env:
        if not env.isdigit() or not 1 <= int(env) <= most:
            raise RepcheckError(f"REPCHECK_THREADS must be a whole number between 1 and {most}, not {env!r}")
        return int(env), "REPCHECK_THREADS"
    cores = usable_cores()
    others = busy_elsewhere()
    if others is None:
        return cores, f"{cores} cores (other processes not measured)"
    return max(1, round(cores - others)), f"{cores} cores, {others:.1f} busy with other processes"


def apply_threads(requested: int | None = None) -> int:
    """Set torch's intra-op threads by the policy; returns the number chosen. torch is
    imported first, so that its import time is part of the window that is measured."""
    import torch

    n, _ = choose_threads(requested)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


class LoadMeter:
    """How busy other processes kept the machine while a measurement ran (benchmarks print it
    beside their figures: a busy machine can make a run three times slower than an idle one)."""

    def __enter__(self) -> LoadMeter:
        self.began = (time.monotonic(), _cpu_jiffies(), _own_cpu_seconds())
        self.others: float | None = None
        return self

    def __exit__(self, *exc) -> None:
        wall = time.monotonic() - self.began[0]
        now = _cpu_jiffies()
        if now is None or self.began[1] is None or wall <= 0:
            return
        busy, total = now[0] - self.began[1][0], now[1] - self.began[1][1]
        if total > 0:
            own = (_own_cpu_seconds() - self.began[2]) / wall
            self.others = max(0.0, (os.cpu_count() or 1) * busy / total - own)

    def describe(self) -> str:
        cores = os.cpu_count() or 1
        load = f"load average {os.getloadavg()[0]:.2f} on {cores} cores" if hasattr(os, "getloadavg") else ""
        if self.others is None:
            return load or "load not measurable here"
        return f"{load}; other processes kept {self.others:.1f} cores busy during the run"
