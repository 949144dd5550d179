# Sourced by train/measure.sh and train/ship.sh: the offline environment, the split a stage is measured on (DATA,
# default work/sets/merged/data.yaml), the Sentinel-2 ports it is measured on (HELD_OUT: the two the group-aware
# split keeps out of training; ALL_PORTS: all nine), and trained_imgsz, the input size a checkpoint is exported at.
export YOLO_OFFLINE=1 YOLO_AUTOINSTALL=false NO_ALBUMENTATIONS_UPDATE=1 ORT_DISABLE_TELEMETRY=1 HF_HUB_OFFLINE=1
SHIPDET=(nice -n 19 .venv/bin/shipdet)
DATA="${DATA:-work/sets/merged/data.yaml}"
PORTS="${SHIPS:-../shared/data/ships}/sentinel2-ports"
HELD_OUT=("$PORTS/marseille" "$PORTS/san_francisco")
ALL_PORTS=()
for port in "$PORTS"/*/; do ALL_PORTS+=("${port%/}"); done
# The input size a checkpoint was trained at (its train_args), so a stage is exported and measured at its own size.
trained_imgsz() {
  .venv/bin/python -c 'import sys, torch
print(torch.load(sys.argv[1], map_location="cpu", weights_only=False)["train_args"]["imgsz"])' "$1"
}
