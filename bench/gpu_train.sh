#!/usr/bin/env bash
# Train on a short GPU loan (one H200, PyTorch but no ultralytics, no network, at most 64 MiB carried, 8 minutes).
#   here:  bash bench/gpu_train.sh --pack START.pt   # builds .gpukit/ (data subset, start weights, wheels)
#   there: bash bench/gpu_train.sh                   # trains <= 8 min, exports; results in $OUT (or work/gpukit-out)
#   here:  bash bench/gpu_train.sh --cpu-check START.pt   # the whole path on the CPU: tiny kit, one short epoch
# The device call: carry [".gpukit"], command "bash bench/gpu_train.sh", timeout_s 600.
set -euo pipefail
cd "$(dirname "$0")/.."
export YOLO_OFFLINE=1 YOLO_AUTOINSTALL=false NO_ALBUMENTATIONS_UPDATE=1 ORT_DISABLE_TELEMETRY=1 HF_HUB_OFFLINE=1
export PYTHONUNBUFFERED=1 SHIPDET_CACHE_DIR="${TMPDIR:-/tmp}/shipdet-cache"
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python
# Wheels for what the GPU machine lacks (its Python is 3.12): ultralytics and its small pure-Python needs,
# pydantic(-settings) for shipdet's settings, shapely for its geometry, onnxslim for the export.
WHEELS="ultralytics==8.4.190 ultralytics-thop pydantic pydantic-core pydantic-settings python-dotenv annotated-types
typing-inspection shapely onnxslim"

case "${1:-}" in
  --pack|--cpu-check)
    MODE="$1"; START="${2:?give the start weights (.pt)}"
    grep -qx '/.gpukit/' .git/info/exclude 2>/dev/null || echo '/.gpukit/' >> .git/info/exclude
    mkdir -p work/gpukit-wheels
    if [ "$MODE" = "--pack" ]; then
      # shellcheck disable=SC2086
      $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d work/gpukit-wheels $WHEELS
      $PY -m bench.gpu_train pack --start "$START" --wheels work/gpukit-wheels --out .gpukit
      du -sh .gpukit
    else
      $PY -m bench.gpu_train pack --start "$START" --out work/gpukit-check --limit 6
      SHIPDET_TRAIN_EXTRA='{"plots": false}' $PY -m bench.gpu_train run --kit work/gpukit-check \
        --out work/gpukit-check-out --device cpu --epochs 1 --minutes 3 --batch 8 --workers 0 --imgsz 128
      ls -la work/gpukit-check-out
    fi
    exit 0 ;;
esac

# On the GPU machine.
OUT="${OUT:-work/gpukit-out}"
if [ -d .gpukit/wheels ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpukit/wheels/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
# Without an install, the checkout itself is importable (a file's path is its import path).
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
# No polars there (a 35 MB wheel): ultralytics' result plots are off; results.csv still comes back.
mkdir -p "$OUT"
SHIPDET_TRAIN_EXTRA='{"plots": false}' timeout 570 $PY -m bench.gpu_train run --kit .gpukit --out "$OUT" \
  --minutes "${MINUTES:-7}" --device 0 --batch 64 --workers 12 2>&1 | tee "$OUT.log" || true
cp "$OUT.log" "$OUT/train.log" 2>/dev/null || true
ls -la "$OUT"
