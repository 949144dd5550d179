import logging

from shipdet.progress import progress


def test_log_lines_carry_rate_time_left_and_the_jobs_own_figure(caplog):
    bar = progress(range(4), desc="scenes", total=4, unit="scene", log_every_s=0.0)
    with caplog.at_level(logging.INFO, logger="shipdet"):
        for i in bar:
            bar.note(f"{10 * (i + 1)} tiles/s")
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("scenes: 1/4 scene (") and "s left" in lines[0] and lines[0].endswith("10 tiles/s)")
    assert lines[1].endswith(", 20 tiles/s)")  # the latest figure noted
    assert lines[-1].startswith("scenes: 4 scene in") and lines[-1].endswith("(40 tiles/s)")
