"""Metrics against hand computations and against pycocotools on the same predictions."""

import numpy as np
import pytest

from shipdet.detections import Detections
from shipdet.metrics import airbus_f2, average_precision, match_at, recall_by_crowding, recall_by_size


def D(boxes, scores=None, cls=None):
    b = np.array(boxes, dtype=float).reshape(-1, 4)
    return Detections(b, np.ones(len(b)) if scores is None else np.array(scores, float),
                      np.zeros(len(b), int) if cls is None else np.array(cls))


def test_airbus_f2_hand_computed():
    truth = D([[0, 0, 10, 10], [20, 20, 30, 30]])
    # One exact hit (IoU 1), one miss, one false positive: at every threshold TP=1, FN=1, FP=1.
    pred = D([[0, 0, 10, 10], [50, 50, 60, 60]])
    assert airbus_f2(pred, truth) == pytest.approx(5 / (5 + 4 + 1))
    # A box with IoU 0.64 (8x8 inside 10x10 ... shifted): hits at thresholds 0.5, 0.55, 0.6 only.
    pred = D([[0, 0, 8, 8]])
    iou = 64 / 100
    hits = sum(t < iou for t in np.arange(0.5, 0.951, 0.05))
    per_t = [5 / (5 + 4 * 0 + 0) if t < iou else 0.0 for t in np.arange(0.5, 0.951, 0.05)]
    assert hits == 3 and airbus_f2(pred, D([[0, 0, 10, 10]])) == pytest.approx(np.mean(per_t))
    assert airbus_f2(D([]), D([])) == 1.0  # empty image, nothing predicted
    assert airbus_f2(D([[0, 0, 5, 5]]), D([])) == 0.0
    assert airbus_f2(D([]), D([[0, 0, 5, 5]])) == 0.0


def test_ap_hand_computed():
    truths = [D([[0, 0, 10, 10], [20, 20, 30, 30]])]
    preds = [D([[0, 0, 10, 10], [100, 100, 110, 110], [20, 20, 30, 30]], scores=[0.9, 0.8, 0.7])]
    # Ranked: hit (P=1, R=.5), miss (P=.5, R=.5), hit (P=2/3, R=1); interpolated P = 1 up to R=.5, 2/3 after.
    expected = (51 * 1.0 + 50 * (2 / 3)) / 101
    assert average_precision(preds, truths, [0.5])[0.5] == pytest.approx(expected)


def test_counts_and_recall_by_size():
    truths = [D([[0, 0, 10, 4], [20, 20, 60, 30]])]
    preds = [D([[0, 0, 10, 4], [200, 200, 210, 210]], scores=[0.9, 0.3])]
    counts, found = match_at(preds, truths, conf=0.25, iou=0.5)
    assert (counts.tp, counts.fp, counts.fn) == (1, 1, 1)
    assert counts.f1 == pytest.approx(0.5)
    rows = recall_by_size(truths, found, [16, 32])
    assert [r["ships"] for r in rows] == [1, 0, 1] and rows[0]["recall"] == 1.0 and rows[2]["recall"] == 0.0
    rows_m = recall_by_size(truths, found, [25, 100], scale=[3.0])
    assert [r["ships"] for r in rows_m] == [0, 1, 1]


def test_recall_by_crowding_hand_computed():
    lone = D([[0, 0, 10, 10]])
    marina = D([[i * 12, 0, i * 12 + 10, 10] for i in range(6)])  # six moored boats in a row
    truths = [lone, marina, D(np.zeros((0, 4)))]
    preds = [D([[0, 0, 10, 10]]), D([[0, 0, 10, 10], [12, 0, 22, 10]]), D([[0, 0, 5, 5]])]
    _, found = match_at(preds, truths, conf=0.25, iou=0.5)
    rows = recall_by_crowding(truths, found, [2, 5])
    bins = [(r["from"], r["to"], r["images"], r["ships"]) for r in rows]
    assert bins == [(1, 2, 1, 1), (2, 5, 0, 0), (5, np.inf, 1, 6)]
    assert rows[0]["recall"] == 1.0 and np.isnan(rows[1]["recall"]) and rows[2]["recall"] == pytest.approx(2 / 6)


def test_map_matches_pycocotools(rng):
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    truths, preds = [], []
    images, anns, dets = [], [], []
    for image_id in range(1, 16):
        n = rng.integers(0, 6)
        xy = rng.uniform(0, 400, (n, 2))
        wh = rng.uniform(8, 80, (n, 2))
        gt = np.concatenate([xy, xy + wh], axis=1)
        cls = rng.integers(0, 2, n)
        # Predictions: jittered truths (some), plus random false positives, random scores.
        keep = rng.random(n) < 0.8
        jitter = gt[keep] + rng.normal(0, 4, (keep.sum(), 4))
        fp = rng.uniform(0, 400, (rng.integers(0, 4), 2))
        fps = np.concatenate([fp, fp + rng.uniform(8, 60, (len(fp), 2))], axis=1)
        pb = np.concatenate([jitter, fps])
        pc = np.concatenate([cls[keep], rng.integers(0, 2, len(fps))])
        ps = rng.uniform(0.05, 1.0, len(pb))
        truths.append(D(gt, cls=cls))
        preds.append(D(pb, ps, pc))
        images.append({"id": image_id, "width": 500, "height": 500})
        for b, c in zip(gt, cls, strict=True):
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": int(c) + 1, "iscrowd": 0,
                         "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "area": (b[2] - b[0]) * (b[3] - b[1])})
        for b, c, s in zip(pb, pc, ps, strict=True):
            dets.append({"image_id": image_id, "category_id": int(c) + 1, "score": float(s),
                         "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]]})
    gt_coco = COCO()
    gt_coco.dataset = {"images": images, "annotations": anns,
                       "categories": [{"id": 1, "name": "ship"}, {"id": 2, "name": "tanker"}]}
    gt_coco.createIndex()
    evaluator = COCOeval(gt_coco, gt_coco.loadRes(dets), "bbox")
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    ours = average_precision(preds, truths)
    assert np.mean(list(ours.values())) == pytest.approx(evaluator.stats[0], abs=1e-6)  # mAP50-95
    assert ours[0.5] == pytest.approx(evaluator.stats[1], abs=1e-6)  # mAP50


def test_ap_without_predictions_is_zero():
    assert average_precision([D([])], [D([[0, 0, 10, 10]])], [0.5])[0.5] == 0.0


def test_the_operating_points_hold_the_threshold_evaluated_at():
    from shipdet.train.evaluate import OPERATING_CONFS, evaluate_predictions

    truths = [D([[0, 0, 10, 10]]), D(np.zeros((0, 4)))]
    preds = [D([[0, 0, 10, 10]], [0.34]), D([[5, 5, 9, 9]], [0.31])]  # the false alarm falls between 0.3 and 0.33
    m = evaluate_predictions(preds, truths, ["a", "a"], [1.0, 1.0], conf=0.33, iou=0.5)
    points = {o["conf"]: o for o in m["operating_points"]}
    assert sorted(points) == sorted({*OPERATING_CONFS, 0.33})
    assert points[0.33]["false_alarms_per_image"] == 0.0 and points[0.3]["false_alarms_per_image"] == 1.0
    # At 0.3 the false alarm halves precision (F1 2/3); on the image with ships alone nothing was wrong.
    assert points[0.3]["f1"] == pytest.approx(2 / 3) and points[0.3]["f1_images_with_ships"] == 1.0


def test_the_lowest_threshold_within_a_false_alarm_budget():
    from shipdet.metrics import lowest_conf_within_false_alarms

    truths = [D([[0, 0, 10, 10]]), D(np.zeros((0, 4))), D(np.zeros((0, 4)))]
    # Two ship-free images hold alarms at 0.2, 0.4 and 0.3; the detection on the ship image never counts.
    preds = [D([[0, 0, 10, 10]], [0.9]), D([[1, 1, 5, 5], [6, 6, 9, 9]], [0.2, 0.4]), D([[2, 2, 7, 7]], [0.3])]
    assert lowest_conf_within_false_alarms(preds, truths, 1.0) == 0.21  # 2 alarms on 2 images: 0.31 would be 1
    assert lowest_conf_within_false_alarms(preds, truths, 0.5) == 0.31  # at most 1 alarm: only the 0.4 left
    assert lowest_conf_within_false_alarms(preds, truths, 0.0) == 0.41  # a score equal to the threshold is kept
    assert lowest_conf_within_false_alarms(preds, truths, 1.5) == 0.01
    assert lowest_conf_within_false_alarms(preds[:1], truths[:1], 0.05) is None  # no ship-free image


def test_the_report_gives_the_threshold_a_false_alarm_budget_allows():
    from pathlib import Path

    from shipdet.train.eval_report import markdown_report
    from shipdet.train.evaluate import evaluate_predictions

    truths = [D([[0, 0, 10, 10]]), D([[20, 20, 30, 30]]), D(np.zeros((0, 4)))]
    preds = [D([[0, 0, 10, 10]], [0.9]), D([[20, 20, 30, 30]], [0.25]), D([[5, 5, 9, 9]], [0.3])]
    m = evaluate_predictions(preds, truths, ["a"] * 3, [1.0] * 3, conf=0.5, iou=0.5, max_false_alarms=0.0)
    b = m["threshold_for_false_alarms"]
    # Above the false alarm's 0.3 the ship at 0.25 is lost too: P 1, R 1/2.
    assert b["conf"] == 0.31 and b["false_alarms_per_image"] == 0.0
    assert b["recall"] == pytest.approx(0.5) and b["f1"] == pytest.approx(2 / 3)
    m["best_f1"] = {"f1": 0.0, "conf": 0.5, "precision": 0.0, "recall": 0.0}
    report = markdown_report(m, Path("m.onnx"), Path("d.yaml"), "val")
    assert "at most 0 false alarms per ship-free image: conf 0.31, where P 1.000, R 0.500, F1 0.667" in report
    assert evaluate_predictions(preds, truths, ["a"] * 3, [1.0] * 3, 0.5, 0.5)["threshold_for_false_alarms"] is None


def test_the_report_says_where_crowded_images_lose_recall():
    from pathlib import Path

    from shipdet.train.eval_report import markdown_report
    from shipdet.train.evaluate import evaluate_predictions

    marina = D([[i * 12, 0, i * 12 + 10, 10] for i in range(60)])
    truths = [D([[0, 0, 10, 10]]), marina]
    preds = [D([[0, 0, 10, 10]], [0.9]), D([[0, 0, 10, 10], [12, 0, 22, 10], [24, 0, 34, 10]], [0.8, 0.7, 0.1])]
    m = evaluate_predictions(preds, truths, ["a", "b"], [1.0, 1.0], conf=0.5, iou=0.5)
    m["best_f1"] = {"f1": 0.0, "conf": 0.5, "precision": 0.0, "recall": 0.0}
    report = markdown_report(m, Path("m.onnx"), Path("d.yaml"), "val")
    assert "| 1 | 1 | 1 | 1.00 |" in report and "| 50+ | 1 | 60 | 0.03 |" in report
    assert "| 2-4 |" not in report  # bins without ships are left out


def test_a_crowded_image_is_scored_from_the_detections_a_tile_is_served_and_coco_s_cap_is_reported_beside():
    from pathlib import Path

    from shipdet.train.eval_report import markdown_report
    from shipdet.train.evaluate import evaluate_predictions

    marina = D([[i * 12, 0, i * 12 + 10, 10] for i in range(150)])  # 150 ships, each found
    preds = [D(marina.xyxy, np.linspace(0.9, 0.5, 150))]
    m = evaluate_predictions(preds, [marina], ["a"], [1.0], conf=0.3, iou=0.5)
    assert m["max_dets"] == 300 and m["mAP50"] == pytest.approx(1.0)
    assert m["coco_max_dets"]["max_dets"] == 100
    assert m["coco_max_dets"]["mAP50"] == pytest.approx(average_precision(preds, [marina], [0.5])[0.5])
    assert m["coco_max_dets"]["mAP50"] < 0.7  # 100 of 150 ships at most: recall stops at 2/3
    assert m["by_source"]["a"]["mAP50"] == pytest.approx(1.0)
    m["best_f1"] = {"f1": 0.0, "conf": 0.5, "precision": 0.0, "recall": 0.0}
    report = markdown_report(m, Path("m.onnx"), Path("d.yaml"), "val")
    assert "| mAP50 | 1.000 |" in report
    coco = f"{m['coco_max_dets']['mAP50']:.3f}"
    assert f"| mAP50 from 100 detections an image (COCO's cap; above: 300, as served) | {coco} |" in report


def test_upsampled_images_are_scored_at_their_own_threshold_and_each_domain_meets_the_budget_alone():
    from pathlib import Path

    from shipdet.train.eval_report import markdown_report
    from shipdet.train.evaluate import evaluate_predictions

    # Two aerial images (as posted) and two upsampled Sentinel-2 tiles, one of each ship-free. The tile's clutter
    # scores 0.6, the aerial clutter 0.2; the aerial ship 0.3, the tile's ship 0.7.
    truths = [D([[0, 0, 10, 10]]), D(np.zeros((0, 4))), D([[20, 20, 30, 30]]), D(np.zeros((0, 4)))]
    preds = [D([[0, 0, 10, 10]], [0.3]), D([[5, 5, 9, 9]], [0.2]), D([[20, 20, 30, 30]], [0.7]),
             D([[5, 5, 9, 9]], [0.6])]
    scales = [1.0, 1.0, 4.0, 4.0]
    served = evaluate_predictions(preds, truths, ["a", "a", "s2", "s2"], [1.0] * 4, conf=0.25, iou=0.5,
                                  scales=scales, conf_upsampled=0.65, max_false_alarms=0.0)
    assert (served["tp"], served["fp"], served["fn"]) == (2, 0, 0)  # 0.25 on the aerial images, 0.65 on the tiles
    assert served["conf_upsampled"] == 0.65 and served["by_source"]["s2"]["recall"] == 1.0
    one = evaluate_predictions(preds, truths, ["a", "a", "s2", "s2"], [1.0] * 4, conf=0.25, iou=0.5,
                               scales=scales, max_false_alarms=0.0)
    assert (one["tp"], one["fp"], one["fn"]) == (2, 1, 0)  # one threshold: the tile's clutter passes
    # One threshold for all within the budget loses the aerial ship (above the tile's clutter at 0.6) ...
    assert one["threshold_for_false_alarms"]["conf"] == 0.61 and one["threshold_for_false_alarms"]["recall"] == 0.5
    # ... one per domain keeps both ships: above 0.2 on the aerial images, above 0.6 on the tiles.
    b = one["thresholds_for_false_alarms_by_scale"]
    assert (b["conf"], b["conf_upsampled"], b["recall"], b["false_alarms"]) == (0.21, 0.61, 1.0, 0)
    assert b["native"]["recall"] == b["upsampled"]["recall"] == 1.0
    one["best_f1"] = {"f1": 0.0, "conf": 0.5, "precision": 0.0, "recall": 0.0}
    report = markdown_report(one, Path("m.onnx"), Path("d.yaml"), "val")
    assert "`shipdet export --conf 0.21 --conf-upsampled 0.61`): P 1.000, R 1.000, F1 1.000" in report
    # Nothing upsampled: no second threshold to seek.
    assert evaluate_predictions(preds, truths, ["a"] * 4, [1.0] * 4, 0.25, 0.5,
                                max_false_alarms=0.0)["thresholds_for_false_alarms_by_scale"] is None


def test_images_the_set_upsampled_are_evaluated_in_the_model_s_views_for_them(tmp_path):
    """As served: the fake model's 0.9 box, seen by one view of two, fuses to 0.45; in one view it stays 0.9."""
    import json

    from shipdet.datasets.writer import YoloSetWriter
    from shipdet.inference.operating_point import VIEWS_METADATA_KEY, VIEWS_UPSAMPLED_METADATA_KEY
    from shipdet.train.evaluate import evaluate_model
    from tests.fake_model import detect_model

    truth = D([[12, 16, 28, 24]])  # where the fake model puts its best box on a 64 px image
    listed = []
    for source, scale in (("aerial", 1.0), ("s2", 4.0)):
        writer = YoloSetWriter(tmp_path / source, {0: "ship"}, source=source, gsd_m=2.5, scale=scale)
        writer.add(f"{source}_0", np.full((64, 64, 3), 30, np.uint8), truth, group=source, oriented=False)
        writer.close(val_fraction=0.0)
        listed += [str(p) for p in sorted((tmp_path / source / "images").glob("*.jpg"))]
    (tmp_path / "val.txt").write_text("\n".join(listed) + "\n")
    (tmp_path / "data.yaml").write_text(f"path: {tmp_path}\ntrain: val.txt\nval: val.txt\nnames:\n  0: ship\n")
    model = detect_model(tmp_path / "split.onnx", {VIEWS_METADATA_KEY: "2", VIEWS_UPSAMPLED_METADATA_KEY: "1"})
    evaluate_model(model, tmp_path / "data.yaml", tmp_path / "eval", conf=0.5)
    m = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert (m["views"], m["views_upsampled"]) == (2, 1)
    assert m["by_source"]["aerial"]["recall"] == 0.0 and m["by_source"]["s2"]["recall"] == 1.0
    assert "The images upsampled to the working scale in 1 view." in (tmp_path / "eval" / "report.md").read_text()
    evaluate_model(model, tmp_path / "data.yaml", tmp_path / "one", conf=0.5, views=1)  # views given: every image's
    assert json.loads((tmp_path / "one" / "metrics.json").read_text())["by_source"]["aerial"]["recall"] == 1.0
