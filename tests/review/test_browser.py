"""The review page in a real browser (Debian's chromium, headless, through its chromedriver): the map draws the
detections, a click shows the chip, a rejection is saved and still shown after a reload. Skipped where the
browser is not installed (`.ci/run` installs it where it can)."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from shipdet.review.app import create_review_app
from tests.rescore.conftest import SHIPS

webdriver = pytest.importorskip("selenium.webdriver")
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="chromium and chromedriver are not installed")


@pytest.fixture
def page_url(run_dir: Path, voyages_report: Path) -> Iterator[str]:
    app = create_review_app(run_dir, voyages_report)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "review server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def browser() -> Iterator[object]:
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--window-size=1280,800"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


def test_map_chip_and_a_rejection_that_survives_a_reload(browser, page_url: str, run_dir: Path,
                                                          tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(page_url)
    wait = WebDriverWait(browser, 10)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "circle.detection")) == len(SHIPS) + 2)
    dot = browser.find_element(By.CSS_SELECTOR, 'circle.detection[data-scene="scene_2024-03-07"][data-det="1"]')
    browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", dot)
    chip = wait.until(ec.presence_of_element_located((By.ID, "chip")))
    wait.until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", chip) > 0)
    browser.find_element(By.ID, "reject").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "message"), "saved"))
    browser.save_screenshot(str(tmp_path / "review.png"))
    browser.refresh()
    rejected = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "circle.detection.rejected"))
    assert [(e.get_attribute("data-scene"), e.get_attribute("data-det")) for e in rejected] == [
        ("scene_2024-03-07", "1")]
    assert '"action":"reject"' in (run_dir / "review.jsonl").read_text().replace(" ", "")


def test_a_visit_shows_its_sightings_side_by_side(browser, page_url: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(page_url)
    wait = WebDriverWait(browser, 10)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "tr.visit"))
    browser.find_elements(By.CSS_SELECTOR, "tr.visit")[0].click()
    images = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "img.sighting"))
    wait.until(lambda d: all(d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", i) > 0
                             for i in images))
    assert "sightings" in browser.find_element(By.ID, "detail").text


def test_a_merge_of_two_visits_is_saved_and_shown_after_a_reload(browser, page_url: str, run_dir: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(page_url)
    wait = WebDriverWait(browser, 10)
    rows = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "tr.visit"))
    assert len(rows) >= 2, "the synthetic run has several ships in the area"
    first = rows[0].get_attribute("data-visit")
    rows[0].click()
    other = wait.until(ec.presence_of_element_located((By.ID, "merge-with"))).get_attribute("value")
    browser.find_element(By.ID, "merge").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "message"), "saved: merge"))
    browser.refresh()
    wait.until(lambda d: "merge by reviewer" in d.find_element(
        By.CSS_SELECTOR, f'tr.visit[data-visit="{first}"] td.visit-review').text)
    assert "merge by reviewer" in browser.find_element(
        By.CSS_SELECTOR, f'tr.visit[data-visit="{other}"] td.visit-review').text
    saved = (run_dir / "review.jsonl").read_text()
    assert '"action":"merge"' in saved.replace(" ", "") and first in saved and other in saved


def test_the_area_filter_keeps_the_detections_inside_it(browser, page_url: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    browser.get(page_url)
    wait = WebDriverWait(browser, 10)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "circle.detection")) == len(SHIPS) + 2)
    assert len(browser.find_elements(By.CSS_SELECTOR, "polygon.area")) == 1
    Select(browser.find_element(By.ID, "area")).select_by_visible_text("harbour")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "circle.detection")) == len(SHIPS))
