"""The review page on a 20,000 x 20,000 px scene: time to the first map draw (the page, the run's data and the
scene's quicklook, made on first request from a decimated read; and in headless chromium, to every detection drawn),
time of a detection's chip (a windowed read), and the review server's peak memory: no scene is read whole.

    python -m bench.review [--size 20000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

from bench.common import REPO, median, memory_mib, write_section
from bench.rescore import synthetic_geotiff
from shipdet.review.evidence import RunFolder


def make_run(scene_path: Path, out: Path, ships: int, seed: int = 0) -> None:
    """A run folder for the scene with `ships` detections, without scoring it (the page is measured, not the
    model): the tables are written by the re-scoring code itself."""
    from shipdet.detections import Detections
    from shipdet.rescore.params import RescoreParams
    from shipdet.rescore.run import RescoreRun
    from shipdet.rescore.scene import open_scene
    from shipdet.rescore.scoring import ScoredScene
    from shipdet.rescore.sources import SceneSource

    class NoModel:  # the run's bookkeeping needs a model's identity only
        class info:
            sha256 = "0" * 64

    rng = np.random.default_rng(seed)
    source = SceneSource(scene_path.stem, [scene_path])
    scene = open_scene(source)
    xy = rng.uniform(100, scene.width - 200, (ships, 2))
    boxes = np.column_stack([xy, xy + rng.uniform(10, 80, (ships, 2))])
    run = RescoreRun(out, NoModel(), RescoreParams())  # type: ignore[arg-type]
    try:
        run.record(source, scene, ScoredScene(Detections(boxes, rng.uniform(0.3, 1, ships),
                                                         np.zeros(ships, dtype=np.int64)), 0, 3.0, 1.0),
                   time.perf_counter())
    finally:
        scene.close()
    run.write_tables()


def browser_first_draw(url: str, detections: int) -> float | None:
    """Seconds from asking headless chromium for the page to every detection drawn and the quicklook loaded; None
    where chromium, its driver or selenium is missing."""
    import shutil

    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.support.ui import WebDriverWait
    except ImportError:
        return None
    if not (chromium and driver_path):
        return None
    options = Options()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,800"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    drawn = ("return document.querySelectorAll('circle.detection').length === arguments[0] && "
             "performance.getEntriesByType('resource').some(e => e.name.includes('/api/quicklooks/') && "
             "e.responseEnd > 0)")
    try:
        start = time.perf_counter()
        driver.get(url)
        WebDriverWait(driver, 60, poll_frequency=0.02).until(lambda d: d.execute_script(drawn, detections))
        return time.perf_counter() - start
    finally:
        driver.quit()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=20000)
    ap.add_argument("--ships", type=int, default=500)
    ap.add_argument("--port", type=int, default=8011)
    ap.add_argument("--dry-run", action="store_true", help="a 4,000 px scene, nothing written")
    args = ap.parse_args()
    size = 4000 if args.dry_run else args.size
    work = REPO / "work" / "bench"
    work.mkdir(parents=True, exist_ok=True)
    scene = synthetic_geotiff(work / f"huge-{size}.tif", size)
    out = work / f"review-run-{size}"
    if not (out / "scenes.parquet").is_file():
        make_run(scene, out, args.ships)
    cached = out / "review-cache" / "quicklooks" / f"{scene.stem}.jpg"
    cached.unlink(missing_ok=True)
    made = time.perf_counter()
    RunFolder(out).quicklook(scene.stem)  # made alone, as for a run from before quicklooks
    made = time.perf_counter() - made
    server = subprocess.Popen([sys.executable, "-m", "shipdet", "review", str(out), "--port", str(args.port)],
                              stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{args.port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url + "/api/voyages", timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise SystemExit("review server did not start") from None
                time.sleep(0.2)
        with httpx.Client(base_url=url, timeout=120) as client:
            start = time.perf_counter()
            client.get("/")
            client.get("/static/review.js")
            run = client.get("/api/run").json()
            quicklook = client.get(f"/api/quicklooks/{run['scenes'][0]['scene_id']}.jpg")
            first_draw = time.perf_counter() - start
            chips = []
            for d in run["detections"][:20]:
                t = time.perf_counter()
                assert client.get(f"/api/chips/{d['scene_id']}/{d['det_id']}.png").status_code == 200
                chips.append(time.perf_counter() - t)
        browser_draw = browser_first_draw(url + "/", len(run["detections"]))
        peak = memory_mib(server.pid, "VmHWM")
    finally:
        server.terminate()
        server.wait(timeout=30)
    raw_mib = size * size * 3 / 2**20
    text = "\n".join([
        f"## Review page on a {size:,} x {size:,} px scene ({len(run['detections'])} detections)", "",
        f"- first map draw (the page, the run's data, the scene's quicklook): **{first_draw:.2f} s** (target < 3 s); "
        f"the quicklook ({len(quicklook.content) / 1024:.0f} KiB JPEG) is made while the scene is scored, from the "
        f"decimated read scoring does anyway for the valid-data mask (made alone, read and JPEG: {made:.2f} s)",
        "- in headless chromium, from asking for the page to every detection drawn over the loaded quicklook: "
        + (f"**{browser_draw:.2f} s**" if browser_draw is not None else "not measured (no chromium here)"),
        f"- a detection's chip (a windowed read): median **{median(chips) * 1000:.0f} ms** over {len(chips)}",
        f"- review server peak memory: **{peak:.0f} MiB**; the scene decoded whole would be {raw_mib:,.0f} MiB"])
    print(text)
    if not args.dry_run:
        write_section("review", text)


if __name__ == "__main__":
    main()
