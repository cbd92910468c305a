"""Model specs that load, and the ones that must be refused with a clear message."""

import pytest

from repcheck import load_model
from repcheck.errors import RepcheckError


def test_local_dir_loads_with_provenance(tiny_llama):
    m = load_model(str(tiny_llama), device="cpu")
    assert m.source == "local" and m.context_length == 128 and len(m.sha256) == 64
    assert m.info()["class"] == "LlamaForCausalLM"


def test_dtype_is_applied(tiny_llama):
    import torch

    m = load_model(str(tiny_llama), dtype="bfloat16", device="cpu")
    assert next(m.model.parameters()).dtype == torch.bfloat16 and m.dtype == "bfloat16"


def test_non_causal_model_is_refused(tiny_bert):
    with pytest.raises(RepcheckError, match="not a causal language model"):
        load_model(str(tiny_bert), device="cpu")


def test_missing_paths(tmp_path):
    with pytest.raises(RepcheckError, match="no such file"):
        load_model(str(tmp_path / "nope" / "model.gguf"), device="cpu")
    with pytest.raises(RepcheckError, match="no such file"):
        load_model("./not/here", device="cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RepcheckError, match="without config.json"):
        load_model(str(tmp_path / "empty"), device="cpu")


def test_corrupt_gguf_is_refused(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\x01" * 64)
    with pytest.raises(RepcheckError, match="not a GGUF file transformers can read"):
        load_model(str(bad), device="cpu")


def test_hub_id_while_offline_says_so():
    with pytest.raises(RepcheckError, match="hub is unreachable"):
        load_model("gpt2", device="cpu")
    with pytest.raises(RepcheckError, match="built-in alias"):
        load_model("smollm-typo", device="cpu")


def test_unknown_dtype_and_device(tiny_llama):
    with pytest.raises(RepcheckError, match="unknown dtype"):
        load_model(str(tiny_llama), dtype="int3")
    with pytest.raises(RepcheckError, match="unknown device"):
        load_model(str(tiny_llama), device="tpu")


def test_cuda_without_gpu_is_a_clear_error(tiny_llama):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(RepcheckError, match="no CUDA GPU"):
        load_model(str(tiny_llama), device="cuda")
