#!/usr/bin/env bash
# Make a measured stage the bundled default model: bash train/ship.sh RUN/weights/best.pt CONF VERSION
# VIEWS (default 1): the views each tile is scored in and fused by default, chosen with CONF from
# `shipdet evaluate --views N` (every figure below is then measured in those views). NMS_IOU (default 0.45): the
# NMS IoU recorded in the model, which the figures are measured at and the service and `rescore` serve.
# CONF_UPSAMPLED (default: none, CONF for all imagery): the threshold of imagery the scale path upsamples, chosen
# with CONF from `shipdet evaluate`'s thresholds for each domain; VIEWS_UPSAMPLED (default: none, VIEWS for all
# imagery) the views of that imagery. CONF_AT_VIEWS and CONF_UPSAMPLED_AT_VIEWS (e.g. 1=0.30,2=0.28; default none):
# thresholds measured for other view counts, which requests asking for those views without one get (an exported
# model takes them later with `shipdet set-thresholds`). UPSAMPLED_WEIGHTS (default: none, one graph for all imagery):
# the weights of a second graph that scores the imagery the scale path upsamples (another run's best.pt, measured
# on that imagery), exported beside the model as shipdet-default.upsampled.onnx.
# Export from the run folder, or the folder `shipdet unfold` wrote (a copied best.pt loses the run record, so the
# card would lose the data, commit and lineage), with its INT8 twin and docs/default-model/limitations.md in the
# card (update it first); then the figures the card and docs quote: `shipdet evaluate` into docs/default-model, and
# whole Sentinel-2 scenes at factors 1-4 (held-out ports: scenes-val.md; all nine: scenes-all.md). Afterwards, by hand: measured.md, then
#   shipdet card weights/shipdet-default.onnx --measured docs/default-model/measured.md --title "..."
# and the stages table, docs/benchmarks.md's detector section and the README's threshold.
set -euo pipefail
cd "$(dirname "$0")/.."
PT="${1:?weights, e.g. work/runs/default-yolo11n-512-stage13/weights/best.pt}"; CONF="${2:?operating threshold}"
VERSION="${3:?version, YYYY.MM.DD.n}"
DOCS=docs/default-model
source train/ports.sh
for pt in "$PT" ${UPSAMPLED_WEIGHTS:+"$UPSAMPLED_WEIGHTS"}; do
  if [ ! -f "$(dirname "$pt")/shipdet_run.json" ] && [ ! -f "$(dirname "$(dirname "$pt")")/shipdet_run.json" ]; then
    echo "$pt: export weights whose run record is beside them (work/runs/NAME/weights/best.pt, or what" \
         "\`shipdet unfold\` wrote): without it the card loses the data, commit and lineage" >&2; exit 2
  fi
done
# The scale range is the one every shipped model since stage 9 declares: 0.1 m (aerial) to 2.5 m (Sentinel-2 x4).
"${SHIPDET[@]}" export "$PT" --imgsz "$(trained_imgsz "$PT")" --data "$DATA" --int8 \
    --name shipdet-default --version "$VERSION" --conf "$CONF" --views "${VIEWS:-1}" --gsd-range 0.1,2.5 \
    --nms-iou "${NMS_IOU:-0.45}" ${CONF_UPSAMPLED:+--conf-upsampled "$CONF_UPSAMPLED"} \
    ${VIEWS_UPSAMPLED:+--views-upsampled "$VIEWS_UPSAMPLED"} \
    ${CONF_AT_VIEWS:+--conf-at-views "$CONF_AT_VIEWS"} \
    ${CONF_UPSAMPLED_AT_VIEWS:+--conf-upsampled-at-views "$CONF_UPSAMPLED_AT_VIEWS"} \
    ${UPSAMPLED_WEIGHTS:+--upsampled-weights "$UPSAMPLED_WEIGHTS"} \
    --notes "$DOCS/limitations.md" \
    --out weights/shipdet-default.onnx
"${SHIPDET[@]}" evaluate weights/shipdet-default.onnx "$DATA" --out "$DOCS"
for set in val all; do
  if [ "$set" = val ]; then ports=("${HELD_OUT[@]}"); else ports=("${ALL_PORTS[@]}"); fi
  "${SHIPDET[@]}" evaluate-scenes weights/shipdet-default.onnx --annotations "$PORTS/coco_annotations.json" \
      "${ports[@]}" --factors 1,2,3,4 --out "work/ship-scenes-$set"
  cp "work/ship-scenes-$set/scenes.md" "$DOCS/scenes-$set.md"
done
