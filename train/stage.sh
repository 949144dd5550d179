#!/usr/bin/env bash
# One training stage of the default model, resumable: bash train/stage.sh NAME START.pt EPOCHS [IMGSZ]
# DATA (default work/sets/merged/data.yaml) is the split it trains on. Runs at idle priority with two torch
# threads; after an interruption, the same command resumes from last.pt.
# START may be an earlier stage's best.pt, or work/warm/unfolded.pt made by
#   shipdet unfold shipdet/weights/shipdet-default.onnx work/sets/merged/data.yaml --out work/warm/unfolded.pt
set -euo pipefail
cd "$(dirname "$0")/.."
NAME="${1:?stage name, e.g. default-yolo11n-512-stage5}"; START="${2:?start weights}"; EPOCHS="${3:?epochs}"
IMGSZ="${4:-512}"
DATA="${DATA:-work/sets/merged/data.yaml}"
export YOLO_OFFLINE=1 YOLO_AUTOINSTALL=false NO_ALBUMENTATIONS_UPDATE=1 ORT_DISABLE_TELEMETRY=1 HF_HUB_OFFLINE=1
export OMP_NUM_THREADS=2 PYTHONUNBUFFERED=1 SHIPDET_CACHE_DIR="${SHIPDET_CACHE_DIR:-$PWD/.cache}"
RUN="work/runs/$NAME"
if [ -f "$RUN/weights/last.pt" ]; then
  exec nice -n 19 .venv/bin/shipdet train --resume "$RUN/weights/last.pt"
fi
if [ -d "$RUN" ]; then  # stopped before its first checkpoint: nothing to resume, and ultralytics would pick NAME2
  mv "$RUN" "$RUN.no-checkpoint.$(date +%Y%m%d%H%M%S)"
  echo "moved aside $RUN (no checkpoint to resume); starting the stage again" >&2
fi
exec nice -n 19 .venv/bin/shipdet train "$DATA" --task detect --model "$START" --epochs "$EPOCHS" \
  --imgsz "$IMGSZ" --batch 16 --close-mosaic 1 --patience 100 --workers 2 --threads 2 --device cpu \
  --project work/runs --name "$NAME"
