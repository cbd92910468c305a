"""Write a probe's files into an output directory: all or nothing.

Every file is first written into a temporary directory beside the target, then renamed
into place, so a failure (or Ctrl-C) never leaves a half-written report in ``--out``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .atomic import temp_dir_beside
from .errors import RepcheckError
from .results import ProbeResult

FORMATS = ("png", "svg", "pdf")


def check_writable_dir(path: str | Path) -> Path:
    """Refuse an output directory we could not create or write, before any work is done."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise RepcheckError(f"--out {path} exists and is not a directory")
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise RepcheckError(f"--out {path} cannot be created: {probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise RepcheckError(f"--out {path} is not writable (no write permission on {probe})")
    return path


def _publish(out_dir: str | Path, fmt: str, doc: dict, write) -> list[Path]:
    """Write ``summary.json`` (the source of truth) and whatever ``write(tmp_dir)`` derives
    from it into a temporary directory, then move every file into ``out_dir``."""
    import json

    if fmt not in FORMATS:
        raise RepcheckError(f"unknown figure format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out_dir = check_writable_dir(out_dir)
    try:
        tmp = temp_dir_beside(out_dir)
    except OSError as err:
        raise RepcheckError(f"cannot write to {out_dir}: {err.strerror or err}") from None
    try:
        text = json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False)
        (tmp / "summary.json").write_text(text + "\n", encoding="utf-8")
        write(tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for f in sorted(tmp.iterdir()):
            os.replace(f, out_dir / f.name)  # each rename is atomic
            written.append(out_dir / f.name)
        return written
    except OSError as err:
        raise RepcheckError(f"cannot write to {out_dir}: {err.strerror or err}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_probe_outputs(
    result: ProbeResult, out_dir: str | Path, fmt: str = "png", position: int | None = None
) -> list[Path]:
    """Write summary.json, per_copy.csv, per_sentence.csv, per_token.csv, bars.<fmt> and
    curve.<fmt> into exactly ``out_dir``. Returns the paths written."""
    from .plots import plot_bars, plot_curve

    doc = result.to_dict()

    def write(tmp: Path) -> None:
        result.mean_frame().to_csv(tmp / "per_copy.csv", index=False)
        result.to_frame().to_csv(tmp / "per_sentence.csv", index=False)
        result.token_frame().to_csv(tmp / "per_token.csv", index=False)
        plot_bars(doc, tmp / f"bars.{fmt}", position=position)
        plot_curve(doc, tmp / f"curve.{fmt}")

    return _publish(out_dir, fmt, doc, write)


def write_compare_outputs(result, out_dir: str | Path, fmt: str = "png") -> list[Path]:
    """summary.json, generations.jsonl, per_setting.csv, metrics.<fmt> and, with a probe,
    curves.<fmt>, into exactly ``out_dir``."""
    import json

    from .plots import plot_compare_curves, plot_compare_metrics

    doc = result.to_dict()

    def write(tmp: Path) -> None:
        if result.runs:
            with open(tmp / "generations.jsonl", "w", encoding="utf-8") as fh:
                for rec in result.generations_records():
                    fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            result.to_frame().to_csv(tmp / "per_setting.csv", index=False)
            plot_compare_metrics(doc, tmp / f"metrics.{fmt}")
        if result.probes:
            plot_compare_curves(doc, tmp / f"curves.{fmt}")

    return _publish(out_dir, fmt, doc, write)


def write_diff_outputs(result, out_dir: str | Path, fmt: str = "png") -> list[Path]:
    """summary.json, per_copy.csv, deltas.csv, curves.<fmt> and bars.<fmt> into exactly ``out_dir``."""
    from .plots import plot_diff_bars, plot_diff_curves

    doc = result.to_dict()

    def write(tmp: Path) -> None:
        result.to_frame().to_csv(tmp / "per_copy.csv", index=False)
        result.delta_frame().to_csv(tmp / "deltas.csv", index=False)
        plot_diff_curves(doc, tmp / f"curves.{fmt}")
        plot_diff_bars(doc, tmp / f"bars.{fmt}")

    return _publish(out_dir, fmt, doc, write)


def check_writable_file(path: str | Path, option: str) -> Path:
    """Refuse an output file we could not write, before any work is done."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise RepcheckError(f"{option} {path} is a directory, not a file")
    check_writable_dir(path.parent)
    if path.exists() and not os.access(path, os.W_OK):
        raise RepcheckError(f"{option} {path} is not writable")
    return path


def write_text_file(path: str | Path, text: str) -> None:
    """Atomically write one output file, creating its folder."""
    from .atomic import atomic_write_text

    path = Path(path).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text)
    except OSError as err:
        raise RepcheckError(f"cannot write {path}: {err.strerror or err}") from None
