"""Training end to end on tiny synthetic data: convert -> train (killed, resumed) -> evaluate -> export -> engine."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from shipdet.scale import ScaleRange

pytest.importorskip("ultralytics")
pytestmark = pytest.mark.train

EPOCHS = 4


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    return [{k.strip(): v for k, v in r.items()} for r in csv.DictReader(path.open())]


def _complete_checkpoint(path: Path) -> bool:
    """A checkpoint written to its end (torch saves a zip; its directory comes last)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return bool(archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def _interrupt_after_first_checkpoint(root: Path, folder: Path, env: dict[str, str]) -> int:
    """Start a tiny run, kill it once its first checkpoint is written; returns the epochs it logged."""
    cmd = [sys.executable, "-m", "shipdet", "train", str(root / "synth" / "data-obb.yaml"), "--task", "obb",
           "--epochs", str(EPOCHS), "--imgsz", "64", "--batch", "8", "--workers", "0", "--device", "cpu",
           "--close-mosaic", "1", "--project", str(folder.parent), "--name", folder.name]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    last = folder / "weights" / "last.pt"
    while proc.poll() is None and time.monotonic() < deadline:
        if last.is_file():
            # Frozen, the run cannot reach another epoch while we check that the checkpoint's write is complete.
            proc.send_signal(signal.SIGSTOP)
            if _complete_checkpoint(last):
                break
            proc.send_signal(signal.SIGCONT)
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # an interruption mid-run, after the first epoch was saved
    proc.wait()
    return len(_rows(folder / "results.csv"))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from shipdet.datasets.synth import SynthConfig
    from shipdet.datasets.synth_set import write_synth_set

    root = tmp_path_factory.mktemp("train")
    write_synth_set(root / "synth", 24, seed=5, cfg=SynthConfig(width=96, height=96, gsd_m=4.0, empty_fraction=0.1))
    env = {**os.environ, "SHIPDET_CACHE_DIR": str(root / "cache"), "OMP_NUM_THREADS": "2"}
    folder = root / "runs" / "tiny"
    first = _interrupt_after_first_checkpoint(root, folder, env)
    resume = [sys.executable, "-m", "shipdet", "train", "--resume", str(folder / "weights" / "last.pt")]
    subprocess.run(resume, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    return {"root": root, "folder": folder, "first_epochs": Path(str(first)), "data": root / "synth" / "data-obb.yaml"}


def test_resume_continues_from_the_saved_epoch(run):
    rows = _rows(run["folder"] / "results.csv")
    assert int(str(run["first_epochs"])) < EPOCHS  # the kill really interrupted the run
    assert [int(float(r["epoch"])) for r in rows] == list(range(1, EPOCHS + 1))  # no epoch repeated or lost


def test_resuming_a_finished_run_is_refused_and_keeps_its_logs(run):
    logs = {name: (run["folder"] / name).read_text() for name in ("results.csv", "augment_log.csv")}
    resume = [sys.executable, "-m", "shipdet", "train", "--resume", str(run["folder"] / "weights" / "last.pt")]
    done = subprocess.run(resume, capture_output=True, text=True, timeout=600)
    assert done.returncode != 0 and "finished run" in done.stderr and "Traceback" not in done.stderr
    assert {name: (run["folder"] / name).read_text() for name in logs} == logs
    assert len(_rows(run["folder"] / "results.csv")) == EPOCHS


def test_augmentation_runs_in_every_epoch_including_after_mosaic_closes(run):
    log = _rows(run["folder"] / "augment_log.csv")
    epochs = [int(r["epoch"]) for r in log]
    assert epochs[-1] == EPOCHS and set(range(int(str(run["first_epochs"])) + 1, EPOCHS + 1)) <= set(epochs)
    by_epoch = {int(r["epoch"]): r for r in log}
    last = by_epoch[EPOCHS]
    assert last["mosaic_closed"] == "1" and int(last["augment_calls_total"]) > 0
    # Every core, first run and resumed: ultralytics alone resets torch to cpu_count - 1 threads.
    assert {int(r["torch_threads"]) for r in log} == {os.cpu_count()}
    # Calls made in the last epoch (after close_mosaic rebuilt the transforms) are at least one per image. The
    # count is per process: where the kill landed only after epoch EPOCHS - 1, the resumed run counted from zero.
    resumed_before_last = int(str(run["first_epochs"])) < EPOCHS - 1
    before = int(by_epoch[EPOCHS - 1]["augment_calls_total"]) if resumed_before_last else 0
    assert int(last["augment_calls_total"]) - before >= 10


def test_run_record(run):
    record = json.loads((run["folder"] / "shipdet_run.json").read_text())
    assert len(record["dataset_sha256"]) == 64 and record["git_commit"]
    assert record["config"]["task"] == "obb" and record["config"]["epochs"] == EPOCHS
    assert record["sources"] == ["synth"]  # what the card's licences are read from
    assert (run["folder"] / "weights" / "best.pt").is_file()


def test_evaluate_export_and_serve(run, tmp_path):
    from shipdet.geometry import obb_to_xyxy
    from shipdet.inference.engine import Engine
    from shipdet.train.evaluate import evaluate_model
    from shipdet.train.export import export_model

    weights = run["folder"] / "weights" / "best.pt"
    card = export_model(weights, tmp_path / "tiny.onnx", imgsz=64, data=run["data"], name="tiny", conf=0.35,
                        nms_iou=0.5, conf_upsampled=0.45, views=2, views_upsampled=1, int8=True,
                        conf_at_views={1: 0.4}, conf_upsampled_at_views={2: 0.5})
    assert card["parity"]["min_matched_iou"] >= 0.99 and card["parity"]["max_score_diff"] <= 1e-3
    assert (tmp_path / "tiny.card.json").is_file() and (tmp_path / "tiny.card.md").is_file()
    assert card["data_sources"] == {"synth": "synthetic scenes generated by shipdet (AGPL-3.0)"}
    engine = Engine(tmp_path / "tiny.onnx", providers=["cpu"])  # verifies the sha256 against the card
    assert engine.info.task == "obb" and engine.info.names == {0: "ship"} and engine.info.imgsz == (64, 64)
    meta = engine.info.metadata
    assert meta["dataset_sha256"] == card["training"]["dataset_sha256"] and meta["shipdet_name"] == "tiny"
    assert card["gsd_range_m"] == [4.0, 4.0] and engine.info.scale_range == ScaleRange(4.0, 4.0)  # synth is 4 m
    assert card["default_conf"] == engine.info.default_conf == 0.35  # the operating threshold travels in the file
    assert "operating threshold: conf 0.35" in (tmp_path / "tiny.card.md").read_text()
    # and the one for imagery the scale path upsamples
    assert card["default_conf_upsampled"] == engine.info.upsampled_conf == engine.info.conf_for(4.0) == 0.45
    assert "conf 0.45 for imagery the scale path upsamples" in (tmp_path / "tiny.card.md").read_text()
    assert card["default_nms_iou"] == engine.info.default_iou == 0.5  # and the NMS IoU it is measured at
    assert "NMS IoU 0.5, as served and measured" in (tmp_path / "tiny.card.md").read_text()
    # the views, and those for imagery the scale path upsamples
    assert (card["default_views"], card["default_views_upsampled"]) == (2, 1)
    assert (engine.info.views_for(1.0), engine.info.views_for(4.0)) == (2, 1)
    assert "; 1 on imagery the scale path upsamples" in (tmp_path / "tiny.card.md").read_text()
    # the thresholds measured for other views
    info = engine.info
    assert (info.conf_for(1.0, 1), info.conf_for(4.0, 2), info.conf_for(4.0, 4)) == (0.4, 0.5, 0.45)
    assert card["conf_at_views"] == {"1": 0.4} and card["conf_upsampled_at_views"] == {"2": 0.5}
    # the INT8 twin: timed against FP32 in turns, and measured on the same split
    int8 = card["int8"]
    assert int8["file"] == "tiny.int8.onnx" and int8["calibration_tiles"] > 0
    assert int8["speedup"] > 0 and int8["speedup"] == pytest.approx(int8["int8_tiles_per_s"] / int8["fp32_tiles_per_s"])
    assert 0.0 <= int8["mAP50_int8"] <= 1.0 and int8["mAP50_change"] == pytest.approx(int8["mAP50_int8"]
                                                                                     - int8["mAP50_fp32"])
    assert Engine(tmp_path / "tiny.int8.onnx", providers=["cpu"], verify=False).info.task == "obb"
    image = np.zeros((96, 96, 3), np.uint8)
    dets = engine.detect([image], conf=0.0, max_det=5)[0]
    assert dets.obb is not None and dets.obb.shape[1] == 5 and len(dets) <= 5
    np.testing.assert_allclose(dets.xyxy, obb_to_xyxy(dets.obb), atol=1e-6)  # boxes consistent, finite
    assert np.isfinite(dets.obb).all() and dets.class_id.max(initial=0) == 0
    report = evaluate_model(tmp_path / "tiny.onnx", run["data"], tmp_path / "eval")
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert set(metrics) >= {"mAP50", "mAP50-95", "precision", "recall", "f1", "airbus_f2_all_images",
                            "recall_by_size_px", "recall_by_size_m", "recall_by_crowding", "count_error"}
    assert 0.0 <= metrics["mAP50"] <= 1.0 and "mAP50" in report and (tmp_path / "eval" / "pr_curve.png").is_file()
    assert metrics["conf"] == 0.35 and metrics["nms_iou"] == 0.5  # evaluated where it is served
    assert metrics["conf_upsampled"] == 0.45 and (metrics["views"], metrics["views_upsampled"]) == (2, 1)
    assert [o["conf"] for o in metrics["operating_points"]] == [0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5]
    assert all(0.0 <= o["f1"] <= 1.0 for o in metrics["operating_points"]) and "Operating points" in report


def test_export_a_pair_whose_second_graph_scores_upsampled_imagery(run, tmp_path):
    from shipdet.inference.companion import companion_path
    from shipdet.inference.engine import Engine
    from shipdet.inference.model import file_sha256
    from shipdet.train.export import export_model

    weights = run["folder"] / "weights"
    card = export_model(weights / "best.pt", tmp_path / "pair.onnx", imgsz=64, data=run["data"], name="pair",
                        int8=True, upsampled_weights=weights / "last.pt")
    companion = companion_path(tmp_path / "pair.onnx")
    graph = card["upsampled_graph"]
    assert graph["file"] == companion.name == "pair.upsampled.onnx" and graph["sha256"] == file_sha256(companion)
    assert graph["parity"]["min_matched_iou"] >= 0.99 and graph["training"]["git_commit"]  # its own parity, lineage
    engine = Engine(tmp_path / "pair.onnx", providers=["cpu"])  # both sha256s checked
    assert engine.upsampled is not None and engine.upsampled.info.path == companion
    assert engine.info.upsampled_graph is not None and engine.info.upsampled_graph.sha256 == graph["sha256"]
    assert f"`{companion.name}` (sha256 `{graph['sha256']}`" in (tmp_path / "pair.card.md").read_text()
    # the INT8 twin quantizes both graphs and names its own companion
    twin = Engine(tmp_path / "pair.int8.onnx", providers=["cpu"])
    assert twin.upsampled is not None and twin.upsampled.info.path.name == "pair.int8.upsampled.onnx"
    assert card["int8"]["upsampled_graph"]["sha256"] == file_sha256(tmp_path / "pair.int8.upsampled.onnx")


def test_export_refuses_a_pair_whose_classes_differ_before_writing_anything(run, tmp_path):
    import torch

    from shipdet.errors import ShipdetError
    from shipdet.train.export import export_model

    weights = run["folder"] / "weights"
    checkpoint = torch.load(weights / "last.pt", map_location="cpu", weights_only=False)
    for key in ("model", "ema"):
        if checkpoint.get(key) is not None:
            checkpoint[key].names = {0: "boat"}
    torch.save(checkpoint, tmp_path / "boats.pt")
    with pytest.raises(ShipdetError, match="names its classes"):
        export_model(weights / "best.pt", tmp_path / "pair.onnx", imgsz=64, data=run["data"],
                     upsampled_weights=tmp_path / "boats.pt")
    assert not list(tmp_path.glob("pair*"))  # nothing exported, nothing a loader could half-trust


def test_unfold_rebuilds_a_trainable_model_from_its_onnx_export(run, tmp_path):
    from ultralytics import YOLO

    from shipdet.train.export import export_model
    from shipdet.train.records import read_run_record
    from shipdet.train.warmstart import unfold_model

    weights = run["folder"] / "weights" / "best.pt"
    export_model(weights, tmp_path / "tiny.onnx", imgsz=64, data=run["data"], name="tiny")
    record = unfold_model(tmp_path / "tiny.onnx", tmp_path / "warm" / "tiny.pt", run["data"], "yolo11n-obb.yaml",
                          images=8)
    assert record["max_output_difference"] < 1e-2  # raw outputs are pixels of a 64 px input: the same network
    assert record["parent"]["dataset_sha256"] == read_run_record(weights)["dataset_sha256"]  # lineage kept
    model = YOLO(str(tmp_path / "warm" / "tiny.pt"), task="obb")  # what `shipdet train --model` loads
    assert model.model is not None and sum(p.numel() for p in model.model.parameters()) > 0
    assert model.names == {0: "ship"}  # the exported model's class names, which its own export records again


@pytest.mark.slow
def test_synthetic_training_reaches_recall(tmp_path):
    """Long enough on synthetic scenes to find ships: recall >= 0.8 at IoU 0.5 on a held-out synthetic split."""
    from shipdet.datasets.synth import SynthConfig
    from shipdet.datasets.synth_set import write_synth_set
    from shipdet.train.evaluate import evaluate_model
    from shipdet.train.train import TrainSettings, train

    # Iterations matter more than pixels when training from scratch: many small scenes, small batches.
    cfg = SynthConfig(width=160, height=160, gsd_m=3.0, max_ships=4, min_length_m=60, cloud_probability=0.1)
    write_synth_set(tmp_path / "s", 600, seed=11, cfg=cfg, val_fraction=0.15)
    folder = train(TrainSettings(data=tmp_path / "s" / "data.yaml", task="detect", epochs=50, imgsz=160, batch=8,
                                 workers=2, device="cpu", project=tmp_path / "runs", name="slow", close_mosaic=5))
    evaluate_model(folder / "weights" / "best.pt", tmp_path / "s" / "data.yaml", tmp_path / "eval", conf=0.25,
                   iou=0.5, imgsz=160)
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["recall"] >= 0.8, metrics


def test_resume_trims_epochs_the_checkpoint_lacks(tmp_path):
    from shipdet.train.records import trim_logs_to_checkpoint

    (tmp_path / "results.csv").write_text("epoch,loss\n1,0.5\n2,0.4\n3,0.3\n")
    (tmp_path / "augment_log.csv").write_text("epoch,augment_calls_total,mosaic_closed\n1,10,0\n2,20,0\n3,30,1\n")
    trim_logs_to_checkpoint(tmp_path, completed_epochs=2)  # killed after epoch 3's metrics, before its checkpoint
    assert (tmp_path / "results.csv").read_text() == "epoch,loss\n1,0.5\n2,0.4\n"
    assert (tmp_path / "augment_log.csv").read_text().splitlines()[-1] == "2,20,0"


def test_card_names_every_training_stage_and_appends_notes(tmp_path, monkeypatch):
    """Weights fine-tuned from an earlier run carry that run's record; the card lists each stage, then the notes."""
    import json

    from shipdet.train.card import card_markdown
    from shipdet.train.records import read_run_record

    monkeypatch.chdir(tmp_path)  # run records hold the starting weights as given on the command line
    first, second = tmp_path / "runs" / "first", tmp_path / "runs" / "second"
    for run, model, command in ((first, "yolo11n.yaml", "shipdet train --epochs 30"),
                                (second, "runs/first/weights/best.pt", "shipdet train --epochs 25")):
        (run / "weights").mkdir(parents=True)
        (run / "weights" / "best.pt").write_bytes(b"")
        (run / "shipdet_run.json").write_text(json.dumps({"config": {"model": model, "epochs": 1},
                                                          "command": command, "git_commit": "abc"}))
    record = read_run_record(second / "weights" / "best.pt")
    assert record["command"].endswith("25") and record["parent"]["command"].endswith("30")
    assert "parent" not in record["parent"]  # the first run started from a YAML
    card = {"name": "m", "version": "1", "file": "m.onnx", "sha256": "0", "task": "detect", "imgsz": 512,
            "names": {0: "ship"}, "parity": {}, "training": record, "notes": "## Limitations\n- small ships"}
    text = card_markdown(card)
    assert "earlier run: `shipdet train --epochs 30`" in text and text.rstrip().endswith("- small ships")


def test_card_licences_are_those_of_the_sources_the_run_trained_on(tmp_path):
    """The lists are remade after training (a source added): the card still names what the model learnt from."""
    from shipdet.train.card import write_card

    data = tmp_path / "merged"
    data.mkdir()
    (data / "split.csv").write_text("source,group,name,split\nmasati,g,a,train\ncoarse,g,b,train\n")
    weights = tmp_path / "run" / "weights" / "best.pt"
    card = {"name": "m", "version": "1", "file": "m.onnx", "sha256": "0", "task": "detect", "imgsz": 512,
            "names": {0: "ship"}, "parity": {},
            "training": {"dataset": str(data / "data.yaml"), "sources": ["masati"]}}
    write_card(tmp_path / "m.onnx", card, weights)
    assert list(json.loads((tmp_path / "m.card.json").read_text())["data_sources"]) == ["masati"]
    del card["training"]["sources"]  # a run recorded before the field: the split as it is now
    write_card(tmp_path / "m.onnx", card, weights)
    licences = json.loads((tmp_path / "m.card.json").read_text())["data_sources"]
    assert list(licences) == ["coarse", "masati"] and "unknown" not in licences["coarse"]


def test_a_card_of_unfolded_weights_keeps_its_lineage_s_licences_and_training_metrics(tmp_path):
    """Weights `shipdet unfold` rebuilt (no results.csv, a record whose own config trained nothing) and a second graph
    from another run: the card names every source either lineage learnt from, and the training metrics unfold kept."""
    from shipdet.train.card import write_card

    weights = tmp_path / "warm" / "unfolded.pt"
    weights.parent.mkdir()
    metrics = {"epochs_run": 2, "best_epoch": 2, "mAP50(B)": 0.55}
    (weights.parent / "shipdet_run.json").write_text(json.dumps(
        {"config": {"model": None}, "command": "shipdet unfold m.onnx", "training_metrics": metrics,
         "parent": {"sources": ["masati"], "parent": {"sources": ["boats"]}}}))
    record = json.loads((weights.parent / "shipdet_run.json").read_text())
    card = {"name": "m", "version": "1", "file": "m.onnx", "sha256": "0", "task": "detect", "imgsz": 512,
            "names": {0: "ship"}, "parity": {}, "training": record,
            "upsampled_graph": {"file": "m.upsampled.onnx", "sha256": "1", "training": {"sources": ["s2ports"]}}}
    write_card(tmp_path / "m.onnx", card, weights)
    written = json.loads((tmp_path / "m.card.json").read_text())
    assert list(written["data_sources"]) == ["boats", "masati", "s2ports"]
    assert written["training_metrics"] == metrics


def test_gpu_kit_packs_and_trains_end_to_end_on_the_cpu(run, tmp_path, monkeypatch):
    from bench.gpu_train import pack
    from bench.gpu_train import run as run_kit

    weights = run["folder"] / "weights" / "best.pt"
    synth = run["root"] / "synth"
    manifest = pack(synth, weights, None, tmp_path / "kit", imgsz=64, quality=65, scale_note="-", limit=6, seed=0,
                    task="obb")
    assert set(manifest["images"]) == {"synth/train", "synth/val"} and sum(manifest["images"].values()) <= 12
    assert (tmp_path / "kit" / "start.pt").stat().st_size < weights.stat().st_size * 1.5  # no optimizer state
    assert len(list((tmp_path / "kit" / "data" / "images").glob("*.webp"))) == sum(manifest["images"].values())
    monkeypatch.setenv("SHIPDET_CACHE_DIR", str(run["root"] / "cache"))
    monkeypatch.setenv("SHIPDET_TRAIN_EXTRA", '{"plots": false}')
    assert run_kit(tmp_path / "kit", tmp_path / "out", minutes=2, epochs=1, imgsz=64, device="cpu", batch=8,
                   workers=0) == 0
    card = json.loads((tmp_path / "out" / "shipdet-gpu.card.json").read_text())
    assert (tmp_path / "out" / "best.pt").is_file() and (tmp_path / "out" / "shipdet-gpu.onnx").is_file()
    assert card["parity"]["min_matched_iou"] >= 0.99 and card["training"]["config"]["hours"] > 0
