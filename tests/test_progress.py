import logging
from pathlib import Path

from shipdet.progress import plural, progress, setup_logging
from shipdet.rescore.cli import closing_summary


def test_log_lines_carry_rate_time_left_and_the_jobs_own_figure(caplog):
    bar = progress(range(4), desc="scenes", total=4, unit="scene", log_every_s=0.0)
    with caplog.at_level(logging.INFO, logger="shipdet"):
        for i in bar:
            bar.note(f"{10 * (i + 1)} tiles/s")
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("scenes: 1 scene of 4 (") and "s left" in lines[0]
    assert lines[0].endswith("10 tiles/s)") and lines[1].startswith("scenes: 2 scenes of 4")
    assert lines[1].endswith(", 20 tiles/s)")  # the latest figure noted
    assert lines[-1].startswith("scenes: 4 scenes in") and lines[-1].endswith("(40 tiles/s)")


def test_counts_in_words() -> None:
    assert [plural(0, "scene"), plural(1, "scene"), plural(1200, "window")] == ["no scenes", "1 scene",
                                                                               "1,200 windows"]


def test_closing_summary_is_plain_words_naming_only_files_that_exist(tmp_path: Path) -> None:
    (tmp_path / "detections.parquet").write_bytes(b"x")
    (tmp_path / "scenes.parquet").write_bytes(b"x")
    said = closing_summary({"done": 1, "skipped": 0, "failed": 0, "tiles": 1, "seconds": 2.0}, tmp_path)
    assert said.startswith("Scored 1 scene (no scenes already done, no failures): 1 window in 2.0 s")
    assert "detections.parquet" in said and "failures.jsonl" not in said and "detections.csv" not in said
    assert "{" not in said and "1 tiles" not in said


def test_other_libraries_info_is_hidden_unless_verbose(capsys) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    root.handlers.clear()
    try:
        setup_logging(verbose=False)
        logging.getLogger("rasterio._env").info("GDAL chatter")
        logging.getLogger("shipdet.rescore").info("our news")
        err = capsys.readouterr().err
        assert "our news" in err and "GDAL chatter" not in err
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.getLogger("shipdet").setLevel(logging.NOTSET)


def test_a_long_item_shows_its_inner_progress_in_the_log(caplog) -> None:
    bar = progress(range(1), desc="scenes", total=1, unit="scene", log_every_s=0.0)
    with caplog.at_level(logging.INFO, logger="shipdet"):
        for _ in bar:
            for window in (8, 16):
                bar.note(f"big: window {window} of 16", live=True)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("scenes: no scenes of 1") and lines[0].endswith("big: window 8 of 16)")
    assert lines[1].endswith("big: window 16 of 16)")
