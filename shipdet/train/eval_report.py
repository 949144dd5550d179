"""The Markdown report `shipdet evaluate` writes beside metrics.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def markdown_report(m: dict[str, Any], model: Path, data: Path, split: str) -> str:
    upsampled = m.get("views_upsampled", m.get("views", 1))
    scored = f" Each image scored in {m['views']} views, fused." if m.get("views", 1) > 1 else ""
    scored += (f" The images upsampled to the working scale in {upsampled} view{'s' if upsampled > 1 else ''}."
               if upsampled != m.get("views", 1) else "")
    scored += f" NMS IoU {m['nms_iou']}." if "nms_iou" in m else ""
    served = f"{m['conf']}" + ("" if m.get("conf_upsampled") is None else
                               f" ({m['conf_upsampled']} on the images upsampled to the working scale)")
    lines = [f"# Evaluation of `{model.name}`", "", f"Data: `{data}`, split `{split}`: {m['images']} images, "
             f"{m['ships']} ships.{scored}", "", "| metric | value |", "|---|---|",
             f"| mAP50 | {m['mAP50']:.3f} |", f"| mAP50-95 | {m['mAP50-95']:.3f} |", *_coco_rows(m),
             f"| precision @ conf {served} | {m['precision']:.3f} |", f"| recall | {m['recall']:.3f} |",
             f"| F1 | {m['f1']:.3f} |",
             f"| best F1 over confidences (chosen on this split) | {m['best_f1']['f1']:.3f} at conf "
             f"{m['best_f1']['conf']} (P {m['best_f1']['precision']:.3f}, R {m['best_f1']['recall']:.3f}) |",
             f"| Airbus F2 (Airbus images, n={m['airbus_images']}) | "
             f"{'-' if m['airbus_f2_airbus_images'] is None else format(m['airbus_f2_airbus_images'], '.3f')} |",
             f"| Airbus F2 (all images) | {m['airbus_f2_all_images']:.3f} |",
             f"| count error per image (mean abs / signed) | {m['count_error']['mean_abs']:.2f} / "
             f"{m['count_error']['mean_signed']:+.2f} |", ""]
    fa = m["false_alarms"]
    if fa["ship_free_images"]:
        per_km2 = "-" if fa["per_km2"] is None else f"{fa['per_km2']:.2f} per km2 over {fa['ship_free_km2']:.1f} km2"
        lines += [f"False alarms at conf {served}: {fa['false_positives']} on {fa['ship_free_images']} ship-free "
                  f"images, {fa['per_image']:.3f} per image; {per_km2} of them whose GSD is known.", ""]
    if m.get("operating_points"):
        lines += ["Operating points, each one threshold for all images (the threshold a model is served at is chosen"
                  " from these: `shipdet export --conf`; the row used above is marked; F1 on the images with ships is"
                  " F1 without the false alarms on ship-free images):", "",
                  "| conf | P | R | F1 | false alarms per ship-free image | F1 on the images with ships |",
                  "|---|---|---|---|---|---|"]
        used = " (used above)" if m.get("conf_upsampled") is None else " (used above on the images not upsampled)"
        lines += [f"| {o['conf']:g}{used if o['conf'] == m['conf'] else ''} | {o['precision']:.3f} | "
                  f"{o['recall']:.3f} | {o['f1']:.3f} | "
                  f"{'-' if o['false_alarms_per_image'] is None else format(o['false_alarms_per_image'], '.3f')} | "
                  f"{o['f1_images_with_ships']:.3f} |" for o in m["operating_points"]]
        lines.append("")
    if m.get("threshold_for_false_alarms"):
        b = m["threshold_for_false_alarms"]
        lines += [f"The lowest threshold (0.01 steps) with at most {b['max_per_image']:g} false alarms per ship-free "
                  f"image: conf {b['conf']:g}, where P {b['precision']:.3f}, R {b['recall']:.3f}, F1 {b['f1']:.3f}, "
                  f"{b['false_alarms_per_image']:.3f} false alarms per ship-free image.", ""]
    if m.get("thresholds_for_false_alarms_by_scale"):
        b = m["thresholds_for_false_alarms_by_scale"]
        lines += [f"With a threshold for the images upsampled to the working scale and one for the others, each the "
                  f"lowest (0.01 steps) with at most {b['max_per_image']:g} false alarms per ship-free image of its "
                  f"own (`shipdet export --conf {b['conf']:g} --conf-upsampled {b['conf_upsampled']:g}`): P "
                  f"{b['precision']:.3f}, R {b['recall']:.3f}, F1 {b['f1']:.3f}, {b['false_alarms_per_image']:.3f} "
                  "false alarms per ship-free image.", "",
                  "| images | conf | P | R | F1 | false alarms per ship-free image |", "|---|---|---|---|---|---|"]
        lines += [f"| {name} | {o['conf']:g} | {o['precision']:.3f} | {o['recall']:.3f} | {o['f1']:.3f} | "
                  f"{'-' if o['false_alarms_per_image'] is None else format(o['false_alarms_per_image'], '.3f')} |"
                  for name, o in (("upsampled", b["upsampled"]), ("the others", b["native"]))]
        lines.append("")
    for key, unit in (("recall_by_size_px", "px"), ("recall_by_size_native_px", "native px, before resampling"),
                      ("recall_by_size_m", "m")):
        if m[key]:
            if key == "recall_by_size_native_px" and m[key] == m["recall_by_size_px"]:
                continue  # nothing was resampled
            lines += [f"Recall by ship length ({unit}, IoU {m['iou']}):", "", "| length | ships | recall |",
                      "|---|---|---|"]
            lines += [f"| {r['from']:g}-{r['to']:g} | {r['ships']} | {r['recall']:.2f} |" for r in m[key]
                      if r["ships"]]
            lines.append("")
    if m.get("recall_by_crowding"):
        lines += [f"Recall by ships per image (IoU {m['iou']}; a crowded image weighs as many ships as it holds):", "",
                  "| ships per image | images | ships | recall |", "|---|---|---|---|"]
        lines += [f"| {_ships_per_image(r['from'], r['to'])} | {r['images']} | {r['ships']} | {r['recall']:.2f} |"
                  for r in m["recall_by_crowding"] if r["ships"]]
        lines.append("")
    lines += ["By source:", "", "| source | images | ships | mAP50 | P | R | F1 | false alarms per ship-free image |",
              "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {s} | {v['images']} | {v['ships']} | {v['mAP50']:.3f} | {v['precision']:.3f} | {v['recall']:.3f} | "
              f"{v['f1']:.3f} | {_per_image(v['false_alarms'])} |" for s, v in m["by_source"].items()]
    return "\n".join([*lines, "", "![precision-recall](pr_curve.png)", ""])


def _per_image(fa: dict[str, Any]) -> str:
    return "-" if fa["per_image"] is None else f"{fa['per_image']:.3f} ({fa['ship_free_images']})"


def _ships_per_image(low: float, high: float) -> str:
    if high == float("inf"):
        return f"{low:g}+"
    return f"{low:g}" if high - 1 == low else f"{low:g}-{high - 1:g}"


def _coco_rows(m: dict[str, Any]) -> list[str]:
    """mAP under COCO's cap of detections an image, beside the headline's cap (the detections a tile is served)."""
    coco = m.get("coco_max_dets")
    if not coco:
        return []
    cap = f"{coco['max_dets']} detections an image (COCO's cap; above: {m['max_dets']}, as served)"
    return [f"| mAP50 from {cap} | {coco['mAP50']:.3f} |", f"| mAP50-95 from {cap} | {coco['mAP50-95']:.3f} |"]
