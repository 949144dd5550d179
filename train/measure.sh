#!/usr/bin/env bash
# Measure a trained stage as the decision to ship it needs (docs/default-model/stages.md):
#   bash train/measure.sh WEIGHTS.pt NAME [CONF]
# WEIGHTS is a run's weights/best.pt (or last.pt, or a soup): exported at the input size it trained at, with CONF as
# its operating threshold (default 0.28, the shipped model's) into work/measure/NAME, then
#   - `shipdet evaluate` on the validation split (operating points, false alarms, per source);
#   - `shipdet evaluate-scenes` at the working scale (x4; FACTORS=4,5 for more) on the two held-out ports and on
#     all nine (`own`: each scene at the factor the scale path picks from its georeference).
# VIEWS (default 1) exports it to be scored in that many views, fused, as every figure here then is; NMS_IOU
# (default 0.45) records its NMS IoU, which every figure is measured at, as the service and `rescore` serve;
# CONF_UPSAMPLED (default: none, CONF everywhere) its threshold for imagery the scale path upsamples, and
# VIEWS_UPSAMPLED (default: none, VIEWS everywhere) its views for that imagery.
# Prints one summary; the reports stay in work/measure/NAME. At idle priority, beside a training run.
set -euo pipefail
cd "$(dirname "$0")/.."
PT="${1:?weights, e.g. work/runs/default-yolo11n-512-stage13/weights/best.pt}"; NAME="${2:?a name, e.g. stage13}"
CONF="${3:-0.28}"
FACTORS="${FACTORS:-4}"
OUT="work/measure/$NAME"
source train/ports.sh
mkdir -p "$OUT"
"${SHIPDET[@]}" export "$PT" --imgsz "$(trained_imgsz "$PT")" --data "$DATA" --conf "$CONF" --views "${VIEWS:-1}" \
    --nms-iou "${NMS_IOU:-0.45}" ${CONF_UPSAMPLED:+--conf-upsampled "$CONF_UPSAMPLED"} \
    ${VIEWS_UPSAMPLED:+--views-upsampled "$VIEWS_UPSAMPLED"} \
    --name "$NAME" --out "$OUT/$NAME.onnx" > "$OUT/export.log" 2>&1
"${SHIPDET[@]}" evaluate "$OUT/$NAME.onnx" "$DATA" --out "$OUT/split" > "$OUT/evaluate.log" 2>&1
"${SHIPDET[@]}" evaluate-scenes "$OUT/$NAME.onnx" --annotations "$PORTS/coco_annotations.json" "${HELD_OUT[@]}" \
    --factors "$FACTORS" --out "$OUT/scenes-val" > "$OUT/scenes-val.log" 2>&1
"${SHIPDET[@]}" evaluate-scenes "$OUT/$NAME.onnx" --annotations "$PORTS/coco_annotations.json" "${ALL_PORTS[@]}" \
    --factors "$FACTORS" --out "$OUT/scenes-all" > "$OUT/scenes-all.log" 2>&1
.venv/bin/python - "$OUT" "$FACTORS" <<'EOF'
import json
import sys
from pathlib import Path

out = Path(sys.argv[1])
m = json.loads((out / "split" / "metrics.json").read_text())
fa = m["false_alarms"]
coco = m.get("coco_max_dets") or {"mAP50": float("nan"), "mAP50-95": float("nan")}
print(f"{out.name}: mAP50 {m['mAP50']:.3f}, mAP50-95 {m['mAP50-95']:.3f} (COCO's 100 an image: {coco['mAP50']:.3f}, "
      f"{coco['mAP50-95']:.3f}); at conf {m['conf']}: P {m['precision']:.3f} "
      f"R {m['recall']:.3f} F1 {m['f1']:.3f}, false alarms {fa['per_image']:.3f} per ship-free image "
      f"({fa['false_positives']} on {fa['ship_free_images']})")
b = m.get("threshold_for_false_alarms")
if b:
    print(f"  lowest conf (0.01 steps) with <= {b['max_per_image']:g} false alarms per ship-free image: {b['conf']:g} "
          f"(P {b['precision']:.3f} R {b['recall']:.3f} F1 {b['f1']:.3f}, {b['false_alarms_per_image']:.3f})")
b = m.get("thresholds_for_false_alarms_by_scale")
if b:
    print(f"  each domain within it: conf {b['conf']:g}, upsampled {b['conf_upsampled']:g} (P {b['precision']:.3f} "
          f"R {b['recall']:.3f} F1 {b['f1']:.3f}, {b['false_alarms']} false alarms; upsampled "
          f"{b['upsampled']['false_alarms']}, the others {b['native']['false_alarms']})")
for source, s in sorted(m["by_source"].items()):
    f = s["false_alarms"]
    alarms = "" if f["per_image"] is None else f", false alarms {f['per_image']:.3f} on {f['ship_free_images']}"
    print(f"  {source}: {s['images']} images, {s['ships']} ships, mAP50 {s.get('mAP50') or 0:.3f}, "
          f"R {s.get('recall') or 0:.3f}, F1 {s.get('f1') or 0:.3f}{alarms}")
for scenes in ("scenes-val", "scenes-all"):
    for factor in sys.argv[2].split(","):
        prefix = "| each scene's own" if factor == "own" else f"| {factor} "
        rows = [line for line in (out / scenes / "scenes.md").read_text().splitlines() if line.startswith(prefix)]
        print(f"  {scenes} x{factor}: {rows[0] if rows else f'no row at x{factor}'}")
EOF
