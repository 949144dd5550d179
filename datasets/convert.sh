#!/usr/bin/env bash
# Convert every published ship set in ../shared/data/ships (or $1) and merge them into work/sets/merged, with the
# group-aware split the default model is trained and measured on. Re-running rewrites the sets.
#   bash datasets/convert.sh [DATA] [OUT]
set -euo pipefail
D="${1:-../shared/data/ships}"
S="${2:-work/sets}"
SHIPDET="${SHIPDET:-.venv/bin/shipdet}"
# Sentinel-2 is cut at the model's working scale: upsampled x4 to 2.5 m, the coarsest GSD the model declares and
# the one `shipdet rescore` resamples 10 m scenes to (see the model card for the measured choice; stages up to 8
# were trained on x2 and x3); tiles at the model's input size with room for the largest ship in the overlap.
# S2_WORKING_GSD=2.5 instead cuts each port at its own factor, from the GSD its georeference gives as `shipdet rescore`
# reads it (the published scenes lie on Web Mercator grids: 5.8-10 m on the ground, x2.3-4; Qingdao has none: --gsd
# 10, x4), so that a tile and the same scene through the scale path meet at one scale (stage 36).
S2_SCALES="${S2_SCALES:-4}"
$SHIPDET datasets airbus "$D/airbus/train_ship_segmentations_v2.csv" "$D/airbus/train_v2" --empty-fraction 1 --out "$S/airbus"
$SHIPDET datasets voc "$D/boats/annotations" "$D/boats/images" --source boats --class-map '*=ship' --out "$S/boats"
# VHR_TILE=640 cuts vhr's 930 px chips into 640 px tiles with a 128 px overlap, as the issue's harness and the
# service cut a large image: letterboxed whole into 512 px, its moored dinghies (20-35 px at 0.3 m) shrink to
# 11-19 px. Stage 16 trained on that (`VHR_TILE=640 bash datasets/convert.sh ../shared/data/ships work/sets-tiled`);
# the tiles keep their chip's group, so the split is the same. The default (0: whole chips) is the split every
# model since stage 10 is measured on, which counts each validation ship once.
$SHIPDET datasets yolo "$D/vhr/images" "$D/vhr/labels" --classes "$D/vhr/classes.txt" \
    --class-map naval=ship,Merchant=ship,dock=drop,other_vessel=ship --source vhr --gsd 0.3 \
    --tile "${VHR_TILE:-0}" --overlap 128 --out "$S/vhr"
# MASATI ids are single captures, all from categories with ships: an empty label file is a lost label (left out).
# Google Earth chips share a place prefix (PE_, SA_, ...): one group per place, so neighbouring frames of one port
# never straddle the split. UC Merced: ship-free, 0.3 m, groups of ten.
$SHIPDET datasets yolo "$D/masati/images" "$D/masati/labels" --classes "$D/masati/classes.txt" --source masati \
    --empty-unlabelled --out "$S/masati"
$SHIPDET datasets yolo "$D/ge-ports/images" "$D/ge-ports/labels" --classes "$D/ge-ports/classes.txt" \
    --source ge-ports --group '^[A-Za-z]+' --out "$S/ge-ports"
$SHIPDET datasets yolo "$D/ucm-negatives/images" "$D/ucm-negatives/labels" --classes "$D/ucm-negatives/classes.txt" \
    --source ucm-negatives --gsd 0.3 --group '^[a-z]+[0-9]' --out "$S/ucm"
$SHIPDET datasets sentinel2 "$D/sentinel2-ports" --out work/s2rgb
sets=("$S/airbus" "$S/boats" "$S/vhr" "$S/masati" "$S/ge-ports" "$S/ucm")
s2_cuts=()
if [ -n "${S2_WORKING_GSD:-}" ]; then
  s2_cuts+=("--working-gsd $S2_WORKING_GSD s2own")
else
  for scale in $S2_SCALES; do s2_cuts+=("--scale $scale s2x$scale"); done
fi
for cut in "${s2_cuts[@]}"; do
  read -r option value name <<< "$cut"
  $SHIPDET datasets coco "$D/sentinel2-ports/coco_annotations.json" --images work/s2rgb --images "$D/sentinel2-ports" \
      --source s2ports --gsd 10 --tile 512 --overlap 128 "$option" "$value" --out "$S/$name"
  sets+=("$S/$name")
done
# The Sentinel-2 tiles with ships are 3 % of the training images (202 of 6,029): listed 4 times, they weigh about
# 12 % of an epoch (from stage 10 on; validation is never repeated). The 50 vhr training chips (harbours and
# marinas at 0.3 m, 415 ships) are listed 4 times from stage 13 on: the model found none of vhr's validation ships.
# OVERSAMPLE is a space-separated list of SOURCE=N. CROWDED=MIN=N lists every training image with MIN ships or more N
# times in all (stage 18: CROWDED=10=4 with VHR_TILE=640): marinas of moored small craft, scored lowest of all.
# SHIP_FREE is a space-separated list of SOURCE=N listing that source's ship-free training images N times (stage 19:
# SHIP_FREE=ucm-negatives=3 beside CROWDED=10=4, whose marinas alone taught parking lots to look like ships).
oversample=()
for pair in ${OVERSAMPLE:-s2ports=4 vhr=4}; do oversample+=(--oversample "$pair"); done
if [ -n "${CROWDED:-}" ]; then oversample+=(--crowded "$CROWDED"); fi
for pair in ${SHIP_FREE:-}; do oversample+=(--ship-free "$pair"); done
$SHIPDET datasets merge "${sets[@]}" "${oversample[@]}" --out "$S/merged"
# Nine scenes hold too few ships to teach what a ship looks like at 10 m: up to COARSE_LIMIT (default 1,000; 0: none)
# aerial training chips, blurred and shrunk to Sentinel-2 ship sizes and resampled to the working scale, join
# training only (from stage 11 on). Validation is unchanged: the second merge splits the other sets as the first.
# COARSE_NEGATIVES (default 500) ship-free chips go through the same blur and scales (from stage 12 on): with ships
# in every coarse chip, stage 11 doubled its false alarms on ship-free Sentinel-2 tiles.
if [ "${COARSE_LIMIT:-1000}" -gt 0 ]; then
  $SHIPDET datasets coarsen "$S/merged" --source masati --source ge-ports --source boats --source airbus \
      --working-scale "${S2_SCALES##* }" --limit "${COARSE_LIMIT:-1000}" --out "$S/coarse" \
      --negatives "${COARSE_NEGATIVES:-500}" --negative-source ucm-negatives --negative-source ge-ports \
      --negative-source masati --negative-source airbus
  $SHIPDET datasets merge "${sets[@]}" "$S/coarse" --train-only coarse "${oversample[@]}" \
      --out "$S/merged"
fi
