"""benchmarks/train_step.py, the GPU measurement of the training recipe's step, run where it
can be here: on the CPU, on a randomly initialised model of the tiny Llama's architecture
(what a GPU machine without the built-in's weights runs with --device cuda)."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_train_step_times_both_methods_on_a_random_model(tiny_llama):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    args = ["--model", str(tiny_llama), "--random-init", "--device", "cpu", "--steps", "2", "--warmup", "1"]
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "train_step.py"), *args],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "(random weights)" in out and "fp32" in out and "MLE steps anchored by kl" in out
    for method in ("ditto", "mle"):
        line = re.search(rf"^  {method} +([\d.]+) steps/s, +(\d+) tokens/s \(2 steps of 512 tokens", out, re.M)
        assert line, out
        steps_per_s, tokens_per_s = float(line.group(1)), int(line.group(2))
        assert steps_per_s > 0 and abs(tokens_per_s - steps_per_s * 512) <= 0.005 * 512 + 1  # steps/s: 2 decimals
    assert "load average" in out  # the load it ran under
