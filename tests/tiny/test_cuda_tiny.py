"""On a CUDA GPU, the tiny model's probe and greedy generation equal the CPU's within float32
rounding. Skipped where torch sees no GPU (docs/backends.md says where these ran)."""

import numpy as np
import pytest
import torch

from repcheck import load_model, probe, run_compare
from repcheck.decoding import parse_setting

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA GPU here: the CUDA checks run only where torch sees one"
)
SENTENCES = ["The committee approved the new budget after a long debate.", "Paris is the capital of France."]


def test_probe_and_greedy_generation_on_cuda_equal_the_cpu(tiny_llama):
    cpu, gpu = load_model(str(tiny_llama), device="cpu"), load_model(str(tiny_llama), device="cuda")
    assert gpu.device == "cuda"
    a, b = probe(cpu, SENTENCES, repeats=4), probe(gpu, SENTENCES, repeats=4)
    for x, y in zip(a.sentences, b.sentences, strict=True):
        np.testing.assert_allclose(x.p, y.p, atol=1e-4)
        np.testing.assert_allclose(x.pmax, y.pmax, atol=1e-4)
    greedy = [parse_setting("greedy")]
    ca = run_compare(cpu, greedy, SENTENCES, max_new_tokens=12)
    cb = run_compare(gpu, greedy, SENTENCES, max_new_tokens=12)
    assert [g.token_ids for g in ca.runs["greedy"].generations] == [g.token_ids for g in cb.runs["greedy"].generations]
