"""The backends repcheck knows: one table from a name to where its loader lives and what it can do.

As lm-evaluation-harness registers its models, the table names a module and a loader
function that are imported only when that backend is asked for, so ``repcheck --help`` and
``import repcheck`` load no engine. Everything that lists backends reads this table: the
CLI's ``--backend`` choices and help, which options go with which backend, the decoding keys
a backend can apply (checked before any model loads), and the table in docs/backends.md
(``markdown_table``; a test keeps the two equal).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..decoding import KEYS as ALL_KEYS
from ..errors import RepcheckError
from .base import Capabilities
from .served import SERVED_SETTING_KEYS

if TYPE_CHECKING:  # pragma: no cover
    from ..decoding import DecodingSetting
    from .base import Backend


@dataclass(frozen=True)
class BackendEntry:
    name: str
    summary: str  # one line: what runs the model
    module: str  # imported only when the backend loads
    loader: str  # the module's load function: (spec, *, dtype, device, progress, **options) -> Backend
    capabilities: Capabilities
    options: tuple[str, ...] = ()  # load options it takes, besides dtype and device
    extra: str | None = None  # pip extra that installs what it needs
    install: str = "included"  # for the docs table
    hookable: bool = False  # a HookableBackend: explain and --ablate-heads
    reports_dtype: str | None = None  # the dtype its reports state when not the requested one
    local_specs: bool = True  # model specs name local files, aliases or hub ids (not a server's names)

    def load(self, spec: str, **kwargs: Any) -> Backend:
        return getattr(importlib.import_module(self.module), self.loader)(spec, **kwargs)

    def run_dtype(self, requested: str) -> str:
        """The dtype a run on this backend reports (a server's and a GGUF file's are their own)."""
        return self.reports_dtype or requested


#: the decoding keys SGLang applies with repcheck's meaning: not its repetition penalty, which
#: counts generated tokens only (transformers' counts the prompt too)
SGLANG_SETTING_KEYS = frozenset({"temperature", "top_k", "top_p", "min_p", "presence_penalty", "frequency_penalty"})
#: the decoding keys TGI applies with repcheck's meaning: not its frequency penalty, which
#: counts prompt tokens too (repcheck's, as vLLM's, counts generated tokens only)
TGI_SETTING_KEYS = frozenset({"temperature", "top_k", "top_p", "repetition_penalty"})
SERVED_OPTIONS = ("base_url", "tokenizer", "concurrency", "timeout", "retries")

BACKENDS: dict[str, BackendEntry] = {
    e.name: e
    for e in [
        BackendEntry(
            name="hf",
            summary="transformers, in-process (the default)",
            module="repcheck.backends.hf",
            loader="load_hf",
            capabilities=Capabilities(full_distributions=True, generate=True, setting_keys=frozenset(ALL_KEYS)),
            options=("attn_implementation", "device_map", "padding_side"),
            hookable=True,
        ),
        BackendEntry(
            name="vllm",
            summary="vLLM's offline engine, in-process",
            module="repcheck.backends.vllm_engine",
            loader="load_vllm",
            capabilities=Capabilities(generate=True, setting_keys=SERVED_SETTING_KEYS),
            options=("tensor_parallel_size", "gpu_memory_utilization", "max_model_len"),
            extra="vllm",
            install="`pip install 'repcheck[vllm]'` (GPU); on a CPU `bash scripts/vllm_cpu_env.sh`",
        ),
        BackendEntry(
            name="openai",
            summary="an OpenAI-compatible server: vLLM, llama-cpp-python's, any other (--model is the served name)",
            module="repcheck.backends.openai",
            loader="load_openai",
            capabilities=Capabilities(generate=True, setting_keys=SERVED_SETTING_KEYS),
            options=(*SERVED_OPTIONS, "api"),
            extra="openai",
            install="`pip install 'repcheck[openai]'`",
            reports_dtype="server",
            local_specs=False,
        ),
        BackendEntry(
            name="sglang",
            summary="an SGLang server's native /generate (--model is the served name)",
            module="repcheck.backends.sglang",
            loader="load_sglang",
            capabilities=Capabilities(generate=True, setting_keys=SGLANG_SETTING_KEYS),
            options=SERVED_OPTIONS,
            extra="openai",
            install="`pip install 'repcheck[openai]'`",
            reports_dtype="server",
            local_specs=False,
        ),
        BackendEntry(
            name="tgi",
            summary="a Text Generation Inference server's native /generate (--model is its model_id)",
            module="repcheck.backends.tgi",
            loader="load_tgi",
            capabilities=Capabilities(generate=True, setting_keys=TGI_SETTING_KEYS),
            options=SERVED_OPTIONS,
            extra="openai",
            install="`pip install 'repcheck[openai]'`",
            reports_dtype="server",
            local_specs=False,
        ),
        BackendEntry(
            name="llamacpp",
            summary="llama.cpp on a .gguf file, quantized",
            module="repcheck.backends.llamacpp",
            loader="load_llamacpp",
            capabilities=Capabilities(
                full_distributions=True, generate=True, setting_keys=frozenset(ALL_KEYS) - {"num_beams"}
            ),
            options=("tokenizer", "max_model_len", "n_threads"),
            extra="llamacpp",
            install="`pip install 'repcheck[llamacpp]'` (compiles llama.cpp)",
            reports_dtype="gguf",
        ),
    ]
}
NAMES = tuple(BACKENDS)


def entry(name: str) -> BackendEntry:
    if name not in BACKENDS:
        raise RepcheckError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}", param="backend")
    return BACKENDS[name]


def check_options(name: str, options: dict[str, Any]) -> None:
    """Refuse a load option that goes with another backend, naming the backend(s) it goes with."""
    e = entry(name)
    for key, value in options.items():
        if value is None or key in e.options:
            continue
        owners = [b.name for b in BACKENDS.values() if key in b.options]
        if not owners:
            raise RepcheckError(f"no backend takes the option {key}", param=key)
        which = owners[0] if len(owners) == 1 else f"{', '.join(owners[:-1])} or {owners[-1]}"
        raise RepcheckError(f"{key} goes with backend {which}, not {name}", param=key)


def check_model_spec(backend: str, spec: str) -> None:
    """Refuse a model spec that cannot work on this backend, before any model work: a local
    spec is checked on disk (``spec.locate``); a served model's name only for being empty."""
    from .spec import check_spec, locate

    if entry(backend).local_specs:
        locate(spec)
    else:
        check_spec(spec)


def setting_keys(name: str) -> frozenset[str]:
    """The decoding keys a backend can apply while generating (known before any model loads)."""
    return entry(name).capabilities.setting_keys


def backends_supporting(keys: list[str] | set[str]) -> list[str]:
    """Names of the backends that can apply every one of these decoding keys."""
    return [name for name in BACKENDS if set(keys) <= setting_keys(name)]


def check_supported(backend: Backend | str, setting: DecodingSetting) -> None:
    """Refuse a setting whose keys a backend (a loaded one, or its name before loading) cannot
    apply while generating, naming the backends that can."""
    kind = backend if isinstance(backend, str) else backend.kind
    supported = setting_keys(kind) if isinstance(backend, str) else backend.capabilities.setting_keys
    unsupported = sorted(set(setting.params) - set(supported))
    if unsupported:
        able = backends_supporting(unsupported)
        raise RepcheckError(
            f"the {kind} backend cannot apply {', '.join(unsupported)} (setting {setting.name!r})"
            + (f"; backends that can: {', '.join(able)}" if able else "")
        )


def markdown_table() -> str:
    """The backends table of docs/backends.md, from this registry."""

    def keys(e: BackendEntry) -> str:
        k = e.capabilities.setting_keys
        if k == frozenset(ALL_KEYS):
            return "all"
        missing = sorted(frozenset(ALL_KEYS) - k)
        if len(missing) <= 2:
            return "all but " + ", ".join(missing)
        return ", ".join(sorted(k))

    rows = [
        "| backend | what runs the model | install | probe | generation settings | probe under settings "
        "(`compare --probe`) | `explain`, `--ablate-heads` |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in BACKENDS.values():
        rows.append(
            f"| `{e.name}` | {e.summary} | {e.install} | ✓ | {keys(e)} | "
            f"{'✓' if e.capabilities.full_distributions else '–'} | {'✓' if e.hookable else '–'} |"
        )
    return "\n".join(rows)
