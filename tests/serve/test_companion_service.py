"""`POST /v1/detect` on a model with a graph for upsampled imagery: a tile the scale path upsampled is scored by that
graph and the answer says so; a tile scored as posted goes to the main graph."""

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from shipdet.inference.model import file_sha256
from tests.inference.test_companion import COMPANION_BOX, write_pair
from tests.serve.conftest import LiveServer, live_server
from tests.serve.images import png


@pytest.fixture(scope="module")
def pair_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(write_pair(tmp_path_factory.mktemp("pair")), max_pixels=4_000_000) as server:
        yield server


def detect(server: LiveServer, body: bytes, **params: float) -> dict:
    response = httpx.post(server.url + "/v1/detect", content=body, headers={"content-type": "image/png"},
                          params={"conf": 0.5, **params}, timeout=30)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_an_upsampled_tile_is_scored_by_the_companion_graph_and_the_answer_says_so(pair_server: LiveServer) -> None:
    upsampled = detect(pair_server, png(32, 32, 128), gsd=4.0)
    assert upsampled["scale"] == {"gsd_m": 4.0, "factor": 2.0, "windows": 1, "graph": "upsampled"}
    assert np.allclose([d["xyxy"] for d in upsampled["detections"]], [np.array(COMPANION_BOX) / 2], atol=1e-3)
    as_posted = detect(pair_server, png(64, 64, 128))
    assert as_posted["scale"]["graph"] == "main" and as_posted["scale"]["factor"] == 1.0
    assert not any(np.allclose(d["xyxy"], COMPANION_BOX) for d in as_posted["detections"])


def test_the_model_summary_names_the_companion_by_its_sha256(pair_server: LiveServer, tmp_path: Path) -> None:
    companion = write_pair(tmp_path).with_name("pair.upsampled.onnx")  # the same bytes as the served one
    answer = detect(pair_server, png(64, 64, 128))
    assert answer["model"]["upsampled_graph_sha256"] == file_sha256(companion)


def test_the_public_card_keeps_each_graph_s_lineage_but_not_its_commands() -> None:
    from shipdet.serve.routes import public_card

    card = {"name": "m", "training": {"command": "shipdet train /home/a/x", "git_commit": "a", "dataset_sha256": "d",
                                      "parent": {"command": "shipdet unfold /home/a/y", "git_commit": "b"}},
            "upsampled_graph": {"file": "m.upsampled.onnx", "sha256": "f" * 64,
                                "training": {"command": "shipdet train /home/a/z", "git_commit": "c"}}}
    public = public_card(card)
    assert "command" not in json.dumps(public) and "/home/" not in json.dumps(public)
    assert [s["git_commit"] for s in public["training_stages"]] == ["a", "b"]
    assert public["upsampled_graph"]["training_stages"] == [{"git_commit": "c", "dataset_sha256": None}]
    assert public["upsampled_graph"]["sha256"] == "f" * 64
