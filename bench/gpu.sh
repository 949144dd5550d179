#!/usr/bin/env bash
# GPU figures in one go, on a CUDA machine with no network and a preinstalled PyTorch. Give it the repository
# and, in .whl/, wheels for anything missing (onnxruntime-gpu, fastapi, uvicorn, simplejpeg, ... with --no-deps).
# Writes the "gpu" section of docs/benchmarks.md (and prints it). Runs within 10 minutes.
#   bash bench/gpu.sh [MODEL.onnx]          # on the GPU machine
#   bash bench/gpu.sh --cpu-check [MODEL]   # here: every part that needs no GPU
set -euo pipefail
cd "$(dirname "$0")/.."
CHECK=""
if [ "${1:-}" = "--cpu-check" ]; then CHECK="--cpu-check"; shift; fi
MODEL="${1:-work/bench/bench-640.onnx}"
export YOLO_OFFLINE=1 ORT_DISABLE_TELEMETRY=1 PYTHONUNBUFFERED=1
PY=python3
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
elif [ -x .venv/bin/python ]; then
  PY=.venv/bin/python
fi
# Without an install, the checkout itself is importable (a file's path is its import path).
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ ! -f "$MODEL" ]; then echo "model $MODEL not found: export one at 640 (shipdet export ... --imgsz 640)"; exit 2; fi
timeout 570 $PY -m bench.gpu --model "$MODEL" $CHECK
# Re-scoring against SAHI on the GPU, where it is installed (sahi, ultralytics, torch with CUDA) and time is left.
if [ -z "$CHECK" ] && $PY -c "import sahi, ultralytics, torch; assert torch.cuda.is_available()" 2>/dev/null; then
  timeout 300 $PY -m bench.rescore --device cuda --huge 10000 || echo "rescore comparison did not finish"
fi
