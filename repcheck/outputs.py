"""The one publisher of a run's files: into an output directory, all or nothing, and never mixed
with another run. Each result type writes its own files through ``publish`` (``ProbeResult.write``,
``CompareResult.write``, ``DiffResult.write``, ``ExplainResult.write``, a training report).

The rules, checked before any model is loaded (``check_output_dir``):

* the directory may be new, empty (dotfiles aside), or hold an earlier repcheck run
  (it has the manifest ``.repcheck-output.json``); a directory with other files is refused
  unless ``overwrite`` (then files of the same name are replaced, others left alone);
* when it holds an earlier run, that run's files are removed as the new ones arrive, so a
  ``curves.png`` of an older run never sits beside a newer ``summary.json``.

Publishing (``publish``): every file is written into a temporary directory *inside* the
target (same filesystem, even when the target is a mount point), then the old files are
moved aside and the new ones renamed into place; if any step fails, everything is put back.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from .atomic import atomic_write_text, remove_stale_temporaries, temp_dir_inside
from .errors import RepcheckError
from .provenance import dumps, utc_now

FORMATS = ("png", "svg", "pdf")
MANIFEST = ".repcheck-output.json"


def previous_files(path: Path) -> list[str] | None:
    """Files an earlier repcheck run wrote into ``path`` (None if it holds no run of ours)."""
    try:
        doc = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        files = doc["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(files, list) or not all(isinstance(f, str) and "/" not in f and f for f in files):
        return None
    return files


def _foreign_entries(path: Path) -> list[str]:
    previous = set(previous_files(path) or [])
    return sorted(p.name for p in path.iterdir() if not p.name.startswith(".") and p.name not in previous)


def check_output_dir(path: str | Path, overwrite: bool = False, param: str = "out") -> Path:
    """Refuse an output directory repcheck could not (or should not) publish into, before any
    work is done. Creates nothing."""
    path = Path(path).expanduser()
    _refuse_dangling(path, param)
    if path.exists():
        if not path.is_dir():
            raise RepcheckError(f"{path} exists and is not a directory", param=param)
        if not os.access(path, os.W_OK | os.X_OK):
            raise RepcheckError(f"{path} is not writable", param=param)
        foreign = [] if overwrite else _foreign_entries(path)
        if foreign:
            shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
            raise RepcheckError(
                f"{path} already holds files repcheck did not write ({shown}); choose an empty or new "
                f"directory, or allow overwriting (--overwrite) to replace files of the same name",
                param=param,
            )
        return path
    _check_creatable(path, param)
    return path


def _refuse_dangling(path: Path, param: str) -> None:
    """A link to nothing cannot be written through (and replacing it would be a surprise)."""
    if path.is_symlink() and not path.exists():
        raise RepcheckError(f"{path} is a link to {os.readlink(path)}, which does not exist", param=param)


def _check_creatable(path: Path, param: str) -> None:
    """``path`` does not exist: its nearest existing ancestor must be a writable directory."""
    ancestor = path.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise RepcheckError(f"{path} cannot be created: {ancestor} is not a directory", param=param)
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise RepcheckError(f"{path} cannot be created: no write permission on {ancestor}", param=param)


def publish(
    out_dir: str | Path,
    kind: str,
    doc: dict | None,
    write: Callable[[Path], None],
    overwrite: bool = False,
    replace_run: bool = True,
) -> list[Path]:
    """Write ``summary.json`` (the source of truth; skipped when ``doc`` is None) and whatever
    ``write(tmp_dir)`` derives from it, then move every file into ``out_dir`` together.
    ``replace_run=False`` adds to an earlier run instead of replacing it (``repcheck plot``).
    Returns the paths written."""
    out_dir = check_output_dir(out_dir, overwrite)
    created = missing_dirs(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(out_dir)
        tmp = temp_dir_inside(out_dir)
    except OSError as err:
        remove_if_empty(created)
        raise RepcheckError(f"cannot write to {out_dir}: {err.strerror or err}", param="out") from None
    published = False
    try:
        if doc is not None:
            (tmp / "summary.json").write_text(dumps(doc) + "\n", encoding="utf-8")
        write(tmp)
        names = sorted(p.name for p in tmp.iterdir())
        for name in names:
            target = out_dir / name
            if target.is_symlink() or (target.exists() and not target.is_file()):
                raise RepcheckError(f"cannot write {target}: a directory or link is in the way", param="out")
        previous = previous_files(out_dir) or []
        stale = [n for n in previous if n not in names and (out_dir / n).is_file()] if replace_run else []
        _swap(tmp, out_dir, names, stale)
        kept = [] if replace_run else [n for n in previous if n not in names and (out_dir / n).is_file()]
        manifest = {"kind": kind, "created": utc_now(), "files": sorted(names + kept)}
        atomic_write_text(out_dir / MANIFEST, json.dumps(manifest, indent=2) + "\n")
        published = True
        return [out_dir / n for n in names]
    except OSError as err:
        raise RepcheckError(f"cannot write to {out_dir}: {err.strerror or err}", param="out") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if not published:  # a failed run leaves no directory behind that it made
            remove_if_empty(created)


def missing_dirs(path: Path) -> list[Path]:
    """``path`` and those of its ancestors that do not exist yet, deepest first."""
    out = []
    while not path.exists() and not path.is_symlink() and path != path.parent:
        out.append(path)
        path = path.parent
    return out


def remove_if_empty(dirs: list[Path]) -> None:
    """Remove the directories of ``missing_dirs`` (deepest first) that are still empty."""
    for d in dirs:
        try:
            d.rmdir()
        except OSError:
            return


def _swap(tmp: Path, out_dir: Path, names: list[str], stale: list[str]) -> None:
    """Move the old files (same names, and the earlier run's leftovers) aside into ``tmp``,
    then the new ones into place; on any failure undo every move."""
    aside = tmp / ".previous"
    aside.mkdir()
    moved_aside, placed = [], []
    try:
        for name in [*names, *stale]:
            if (out_dir / name).exists():
                os.replace(out_dir / name, aside / name)
                moved_aside.append(name)
        for name in names:
            os.replace(tmp / name, out_dir / name)
            placed.append(name)
    except BaseException:
        for name in placed:
            os.replace(out_dir / name, tmp / name)
        for name in moved_aside:
            os.replace(aside / name, out_dir / name)
        raise


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise RepcheckError(f"unknown figure format {fmt!r}; choose one of {', '.join(FORMATS)}", param="fmt")
    return fmt


def check_writable_file(path: str | Path, param: str) -> Path:
    """Refuse an output file we could not write, before any work is done."""
    path = Path(path).expanduser()
    _refuse_dangling(path, param)
    if path.is_dir():
        raise RepcheckError(f"{path} is a directory, not a file", param=param)
    if path.exists():
        if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK | os.X_OK):
            raise RepcheckError(f"{path} is not writable", param=param)
    else:
        _check_creatable(path, param)
    return path


def check_distinct(inputs: dict[str, Path | None], outputs: dict[str, Path | None]) -> None:
    """Refuse an output file that is one of the command's inputs (it would be overwritten
    with the results computed from it) or another of its outputs (one would replace the
    other). Paths are compared resolved, and existing files also by identity (links)."""
    seen: list[tuple[str, Path]] = [(param, Path(p)) for param, p in inputs.items() if p is not None]
    for param, path in outputs.items():
        if path is None:
            continue
        path = Path(path)
        for other, earlier in seen:
            if _same_file(path, earlier):
                role = "an input" if other in inputs else "another output"
                raise RepcheckError(
                    f"--{param.replace('_', '-')} {path} is {role} of this run (--{other.replace('_', '-')}); give another path",
                    param=param,
                )
        seen.append((param, path))


def _same_file(a: Path, b: Path) -> bool:
    a, b = a.expanduser(), b.expanduser()
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def write_text_file(path: str | Path, text: str, param: str = "output") -> None:
    """Atomically write one output file, creating its folder."""
    path = Path(path).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text)
    except OSError as err:
        raise RepcheckError(f"cannot write {path}: {err.strerror or err}", param=param) from None


def remove_previous_run(path: Path, also: tuple[str, ...] = ()) -> None:
    """Remove the files an earlier repcheck run wrote into ``path`` (its manifest names them),
    the manifest itself, and the entries ``also`` names (a run's working files)."""
    if not path.is_dir():
        return
    for name in [*also, *(previous_files(path) or []), MANIFEST]:
        entry = path / name
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        elif entry.exists() or entry.is_symlink():
            entry.unlink()
