"""The review API on a real run: the map's data, chips and quicklooks from windowed reads, corrections saved
append-only and shown back, and clear errors for what is not there (the app stays up)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from shipdet.errors import DatasetFormatError
from shipdet.review.app import create_review_app
from tests.rescore.conftest import SHIPS


@pytest.fixture
def client(run_dir: Path) -> TestClient:
    return TestClient(create_review_app(run_dir))


def test_the_map_data_holds_scenes_and_detections(client: TestClient) -> None:
    run = client.get("/api/run").json()
    assert [s["scene_id"] for s in run["scenes"]] == ["scene_2024-03-07", "scene_2024-03-08"]
    assert all(len(s["bounds"]) == 4 and s["footprint"] for s in run["scenes"])
    assert len(run["detections"]) == len(SHIPS) + 2
    assert all(d["review"] is None and -180 < d["lon"] < 180 for d in run["detections"])
    page = client.get("/")
    assert page.status_code == 200 and "review.js" in page.text
    assert client.get("/static/review.js").status_code == 200
    assert client.get("/static/..%2Fapp.py").status_code == 404


def test_chips_and_quicklooks_are_images_and_quicklooks_are_kept(client: TestClient, run_dir: Path) -> None:
    chip = client.get("/api/chips/scene_2024-03-07/0.png")
    assert chip.status_code == 200 and chip.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(chip.content)).size[0] >= 256
    cached = run_dir / "review-cache" / "quicklooks" / "scene_2024-03-07.jpg"
    assert cached.is_file()  # made while the scene was scored
    cached.unlink()  # a run from before quicklooks: made on the first request
    look = client.get("/api/quicklooks/scene_2024-03-07.jpg")
    assert look.status_code == 200 and Image.open(io.BytesIO(look.content)).size == (300, 260)
    assert cached.is_file()


def test_corrections_are_saved_and_shown_back(client: TestClient, run_dir: Path) -> None:
    r = client.post("/api/corrections", json={"action": "reject", "scene_id": "scene_2024-03-07", "det_id": 1,
                                              "who": "ana"})
    assert r.status_code == 201 and r.json()["who"] == "ana" and r.json()["id"]
    client.post("/api/corrections", json={"action": "relabel", "scene_id": "scene_2024-03-07", "det_id": 2,
                                          "label": "tanker"})
    reloaded = TestClient(create_review_app(run_dir)).get("/api/run").json()  # as after a restart
    reviews = {d["det_id"]: d["review"] for d in reloaded["detections"] if d["scene_id"] == "scene_2024-03-07"}
    assert reviews[1]["action"] == "reject" and reviews[2] == {**reviews[2], "action": "relabel", "label": "tanker"}
    assert len((run_dir / "review.jsonl").read_text().splitlines()) == 2


@pytest.mark.parametrize(("path", "status"), [
    ("/api/chips/scene_2024-03-07/999.png", 404), ("/api/chips/nope/0.png", 404),
    ("/api/quicklooks/nope.jpg", 404), ("/api/chips/scene_2024-03-07/x.png", 422),
])
def test_unknown_ids_are_clear_404s(client: TestClient, path: str, status: int) -> None:
    r = client.get(path)
    assert r.status_code == status
    assert client.get("/api/run").status_code == 200  # still up


@pytest.mark.parametrize("body", [
    {"action": "reject"}, {"action": "relabel", "scene_id": "scene_2024-03-07", "det_id": 0},
    {"action": "explode", "scene_id": "scene_2024-03-07", "det_id": 0}, {"action": "merge", "visit_id": "a"},
    {"action": "confirm", "scene_id": "scene_2024-03-07", "det_id": 0, "extra": 1},
])
def test_bad_corrections_are_refused(client: TestClient, run_dir: Path, body: dict[str, object]) -> None:
    r = client.post("/api/corrections", json=body)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_correction"
    assert client.post("/api/corrections", json={"action": "confirm", "scene_id": "scene_2024-03-07",
                                                 "det_id": 999}).status_code == 404
    assert not (run_dir / "review.jsonl").exists()


def test_a_missing_scene_file_is_a_clear_error_and_the_rest_works(run_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "archive" / "scene_2024-03-08.tif").unlink()
    client = TestClient(create_review_app(run_dir))
    r = client.get("/api/chips/scene_2024-03-08/0.png")
    assert r.status_code == 404 and r.json()["error"]["code"] == "imagery_missing"
    assert client.get("/api/chips/scene_2024-03-07/0.png").status_code == 200


def test_a_folder_that_is_not_a_run_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetFormatError, match="not a re-scoring run"):
        create_review_app(tmp_path)


def test_two_writers_lose_no_line_and_tear_none(run_dir: Path) -> None:
    script = ("import sys\nfrom pathlib import Path\nfrom shipdet.review.store import CorrectionIn, CorrectionLog\n"
              "log = CorrectionLog(Path(sys.argv[1]))\n"
              "for i in range(300):\n"
              "    log.append(CorrectionIn(action='confirm', scene_id='s', det_id=i, who=sys.argv[2], "
              "note='x' * 1900))\n")
    writers = [subprocess.Popen([sys.executable, "-c", script, str(run_dir), who]) for who in ("a", "b")]
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    lines = (run_dir / "review.jsonl").read_text().splitlines()
    assert len(lines) == 600
    records = [json.loads(line) for line in lines]  # every line whole
    assert sorted((r["who"], r["det_id"]) for r in records) == sorted((w, i) for w in "ab" for i in range(300))


def test_a_visits_sightings_resolve_to_chips(run_dir: Path, voyages_report: Path) -> None:
    client = TestClient(create_review_app(run_dir, voyages_report))
    voyages = client.get("/api/voyages").json()
    assert voyages["summary"]["areas"][0]["area"] == "harbour" and voyages["visits"]
    for visit in voyages["visits"]:
        for scene_id, det_id in zip(visit["scene_ids"].split(","), str(visit["det_ids"]).split(","), strict=True):
            assert client.get(f"/api/chips/{scene_id}/{det_id}.png").status_code == 200
    assert client.get("/api/voyages/timeline/harbour.png").status_code == 200
    assert client.get("/api/voyages/timeline/..%2Fsummary.png").status_code == 404


def test_a_visit_split_or_merge_names_known_visits_and_sightings(run_dir: Path, voyages_report: Path) -> None:
    client = TestClient(create_review_app(run_dir, voyages_report))
    visit = client.get("/api/voyages").json()["visits"][0]
    sightings = [[s, int(d)] for s, d in zip(visit["scene_ids"].split(","), str(visit["det_ids"]).split(","),
                                             strict=True)]
    split = {"action": "split", "visit_id": visit["visit_id"], "split_at": visit["first_seen"],
             "detections": sightings}
    assert client.post("/api/corrections", json=split | {"visit_id": "harbour-9999"}).status_code == 404
    assert client.post("/api/corrections", json=split | {"detections": [["nope", 0]]}).status_code == 404
    assert client.post("/api/corrections", json=split | {"detections": []}).status_code == 422
    saved = client.post("/api/corrections", json=split)
    assert saved.status_code == 201 and saved.json()["detections"] == sightings
    merge = {"action": "merge", "visit_id": visit["visit_id"], "with_visit": "harbour-9999", "detections": sightings}
    assert client.post("/api/corrections", json=merge).status_code == 404
    assert [c["action"] for c in client.get("/api/corrections").json()] == ["split"]


def test_voyages_recounts_with_the_run_folders_corrections(run_dir: Path, voyages_report: Path,
                                                           tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from shipdet.cli import app

    before = json.loads((voyages_report / "summary.json").read_text())["areas"][0]
    client = TestClient(create_review_app(run_dir, voyages_report))
    visit = client.get("/api/voyages").json()["visits"][0]
    for scene_id, det_id in zip(visit["scene_ids"].split(","), str(visit["det_ids"]).split(","), strict=True):
        assert client.post("/api/corrections", json={"action": "reject", "scene_id": scene_id,
                                                     "det_id": int(det_id)}).status_code == 201
    again = CliRunner().invoke(app, ["voyages", "--detections", str(run_dir / "detections.parquet"), "--scenes",
                                     str(run_dir / "scenes.parquet"), "--areas", str(tmp_path / "area.geojson"),
                                     "--out", str(tmp_path / "recount")])
    assert again.exit_code == 0, again.output
    after = json.loads((tmp_path / "recount" / "summary.json").read_text())["areas"][0]
    assert after["observed_visits"] == before["observed_visits"] - 1
    rejected = len(visit["scene_ids"].split(","))
    assert any(f"reviewers' corrections from {run_dir / 'review.jsonl'}: {rejected} detections rejected" in a
               for a in after["assumptions"])


def test_the_counting_areas_are_drawn_and_each_detection_knows_its_areas(run_dir: Path,
                                                                         voyages_report: Path) -> None:
    run = TestClient(create_review_app(run_dir, voyages_report)).get("/api/run").json()
    assert [a["name"] for a in run["areas"]] == ["harbour"] and len(run["areas"][0]["rings"][0]) >= 4
    inside = {d["scene_id"] for d in run["detections"] if d["areas"] == ["harbour"]}
    assert inside == {"scene_2024-03-07"}  # the area is the first scene's footprint; the second lies 2 km off
    assert TestClient(create_review_app(run_dir)).get("/api/run").json()["areas"] == []
