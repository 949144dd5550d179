"""The review app: one run folder (and optionally a voyage report) behind a small JSON API and a page that
draws it. Bad ids and missing imagery are clear 404s; the page stays up."""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from pydantic import ValidationError

from shipdet.errors import DatasetNotFoundError
from shipdet.review.evidence import RunFolder, UnknownItemError
from shipdet.review.store import CorrectionIn, CorrectionLog

STATIC = Path(str(resources.files("shipdet.review") / "static"))
CLASSES = ("tanker", "cargo", "other vessel")


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _areas(report: Path | None) -> list[tuple[str, Any]]:
    """The voyage report's counting areas (name, polygon); none without a report or for one from before."""
    if report is None or not (report / "areas.geojson").is_file():
        return []
    from shapely.geometry import shape

    features = json.loads((report / "areas.geojson").read_text()).get("features", [])
    return [(str(f["properties"]["name"]), shape(f["geometry"])) for f in features]


def _run_json(run: RunFolder, log: CorrectionLog, areas: list[tuple[str, Any]]) -> dict[str, Any]:
    import shapely

    corrections = log.latest_by_detection()
    lon, lat = run.detections.get("lon", []), run.detections.get("lat", [])
    inside = {name: shapely.contains_xy(polygon, lon, lat) for name, polygon in areas} if len(run.detections) else {}
    scenes = []
    for s in run.scenes.itertuples():
        footprint = s.footprint
        scenes.append({"scene_id": s.scene_id, "acquired": str(s.acquired) if s.acquired is not None else None,
                       "valid_fraction": _finite(float(s.valid_fraction)), "status": s.status,
                       "bounds": list(footprint.bounds) if footprint is not None and not footprint.is_empty else None,
                       "footprint": [list(xy) for xy in footprint.exterior.coords] if footprint is not None and
                       not footprint.is_empty else None})
    detections = []
    for i, d in enumerate(run.detections.itertuples()):
        c = corrections.get((str(d.scene_id), int(d.det_id)))
        detections.append({"scene_id": d.scene_id, "det_id": int(d.det_id), "lon": _finite(float(d.lon)),
                           "lat": _finite(float(d.lat)), "score": round(float(d.score), 3),
                           "length_m": _finite(round(float(d.length_m), 1)),
                           "heading_deg": _finite(round(float(d.heading_deg), 1)),
                           "acquired": str(d.acquired), "class_name": d.class_name,
                           "areas": [name for name, hit in inside.items() if hit[i]],
                           "review": None if c is None else {"action": c.action, "label": c.label, "who": c.who,
                                                             "at": c.at.isoformat()}})
    return {"run": str(run.path), "scenes": scenes, "detections": detections, "classes": list(CLASSES),
            "areas": [{"name": name, "rings": [[list(xy) for xy in poly.exterior.coords] for poly in
                                               getattr(polygon, "geoms", [polygon])]} for name, polygon in areas]}


def _voyages_json(report: Path | None) -> dict[str, Any]:
    if report is None:
        return {"summary": None, "visits": []}
    import pandas as pd

    summary = json.loads((report / "summary.json").read_text()) if (report / "summary.json").is_file() else None
    visits = pd.read_csv(report / "visits.csv") if (report / "visits.csv").is_file() else pd.DataFrame()
    rows = json.loads(visits.to_json(orient="records", date_format="iso")) if len(visits) else []
    return {"summary": summary, "visits": rows}


def create_review_app(run_dir: Path, voyages: Path | None = None) -> FastAPI:
    run = RunFolder(run_dir)  # a folder that is not a run is refused here, before serving
    log = CorrectionLog(run_dir)
    areas = _areas(voyages)
    app = FastAPI(title="shipdet review", docs_url=None, redoc_url=None)

    @app.exception_handler(UnknownItemError)
    async def _unknown(_: Request, exc: UnknownItemError) -> JSONResponse:
        return JSONResponse({"error": {"code": "not_found", "message": str(exc.args[0])}}, status_code=404)

    @app.exception_handler(DatasetNotFoundError)
    async def _missing(_: Request, exc: DatasetNotFoundError) -> JSONResponse:
        return JSONResponse({"error": {"code": "imagery_missing", "message": exc.message, "hint": exc.hint}},
                            status_code=404)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> FileResponse:
        path = STATIC / name
        if name not in {p.name for p in STATIC.iterdir()}:  # only the page's own files, no paths
            raise UnknownItemError(f"no static file {name!r}")
        return FileResponse(path)

    @app.get("/api/run")
    async def run_json() -> dict[str, Any]:
        return _run_json(run, log, areas)

    @app.get("/api/voyages")
    async def voyages_json() -> dict[str, Any]:
        return _voyages_json(voyages)

    @app.get("/api/voyages/timeline/{area}.png")
    async def timeline(area: str) -> FileResponse:
        path = voyages / f"timeline_{area}.png" if voyages is not None else None
        if path is None or "/" in area or not path.is_file():
            raise UnknownItemError(f"no timeline for area {area!r}")
        return FileResponse(path)

    @app.get("/api/chips/{scene_id}/{det_id}.png")
    def chip(scene_id: str, det_id: int) -> Response:  # sync: a windowed read in the thread pool
        return Response(run.chip(scene_id, det_id), media_type="image/png")

    @app.get("/api/quicklooks/{scene_id}.jpg")
    def quicklook(scene_id: str) -> Response:
        return Response(run.quicklook(scene_id), media_type="image/jpeg",
                        headers={"Cache-Control": "max-age=3600"})

    @app.get("/api/corrections")
    async def corrections() -> list[dict[str, Any]]:
        return [json.loads(c.model_dump_json()) for c in log.read()]

    @app.post("/api/corrections", status_code=201)
    async def correct(request: Request) -> JSONResponse:
        try:
            given = CorrectionIn.model_validate(await request.json())
        except (ValidationError, ValueError) as exc:
            return JSONResponse({"error": {"code": "invalid_correction", "message": str(exc)}}, status_code=422)
        if given.scene_id is not None and given.det_id is not None:
            run.detection(given.scene_id, given.det_id)  # 404 for an id the run does not hold
        for scene_id, det_id in given.detections or []:
            run.detection(scene_id, det_id)
        named = [v for v in (given.visit_id, given.with_visit) if v is not None]
        known = {str(v.get("visit_id")) for v in _voyages_json(voyages)["visits"]} if named else set()
        for visit in named:
            if visit not in known:
                raise UnknownItemError(f"no visit {visit!r} in the voyage report")
        return JSONResponse(json.loads(log.append(given).model_dump_json()), status_code=201)

    return app
