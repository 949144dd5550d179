"""Usage errors are one line and exit status 2, never a traceback; bad settings are refused before any work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def shipdet(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shipdet", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd)


@pytest.mark.parametrize(("args", "says"), [
    (["--bogus"], "No such option"),
    (["frobnicate"], "No such command"),
    (["train", "--epochs", "abc"], "--epochs"),
    (["rescore", "nowhere", "--out", "o", "--conf", "5"], "conf"),
    (["serve", "--model", "missing.onnx"], "model not found at missing.onnx"),
    (["datasets", "yolo", "a", "b", "--out", "o", "--group", "("], "not a regular expression"),
    (["datasets", "yolo", "a", "b", "--out", "o", "--tile", "128", "--overlap", "128"], "--overlap 128"),
    (["average", "a.pt", "--out", "m.pt"], "at least two checkpoints"),
    (["datasets", "merge", "a", "--out", "o", "--crowded", "ten=4"], "'ten=4' is not MIN=N"),
    (["datasets", "merge", "a", "--out", "o", "--ship-free", "ucm"], "Invalid value for --ship-free"),
    (["evaluate", "m.onnx", "d.yaml", "--views", "3"], "--views 3 is not one of 1, 2, 4, 8"),
    (["evaluate-scenes", "m.onnx", "s", "--annotations", "a.json", "--views", "5"], "--views 5 is not one of"),
    (["rescore", "nowhere", "--out", "o", "--views", "3"], "views must be one of 1, 2, 4, 8"),
    (["evaluate", "m.onnx", "d.yaml", "--views-upsampled", "3"], "--views-upsampled 3 is not one of 1, 2, 4, 8"),
    (["rescore", "nowhere", "--out", "o", "--views-upsampled", "6"], "views must be one of 1, 2, 4, 8"),
    (["evaluate", "m.onnx", "d.yaml", "--nms-iou", "1.5"], "--nms-iou 1.5 is not an IoU in (0, 1)"),
    (["evaluate", "m.onnx", "d.yaml", "--max-false-alarms", "-1"], "--max-false-alarms"),
    (["evaluate-scenes", "m.onnx", "s", "--annotations", "a.json", "--nms-iou", "0"], "--nms-iou 0.0 is not an IoU"),
    (["export", "w.pt", "--conf-at-views", "3=0.3"], "--conf-at-views: '3' is not a view count"),
    (["evaluate-scenes", "m.onnx", "s", "--annotations", "a.json", "--factors", "4,auto"], "(or `own`)"),
    (["set-thresholds", "m.onnx", "--conf-upsampled-at-views", "1=2"], "views=1, '2', is not in (0, 1)"),
    (["set-thresholds", "m.onnx", "--conf-at-views", "1=0.3"], "model not found at m.onnx"),
])
def test_usage_errors_are_one_clear_line(tmp_path: Path, args: list[str], says: str) -> None:
    result = shipdet(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and says in result.stderr
    assert result.stderr.splitlines()[0].startswith("error: ")


def test_bare_command_shows_the_commands_and_exits_2(tmp_path: Path) -> None:
    result = shipdet(cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stdout + result.stderr
    assert "rescore" in result.stdout + result.stderr


def test_version(tmp_path: Path) -> None:
    from shipdet import __version__

    result = shipdet("--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == f"shipdet {__version__}"


@pytest.mark.parametrize("no_color", [False, True])
def test_errors_are_red_on_a_terminal_unless_no_color(tmp_path: Path, no_color: bool) -> None:
    import os
    import pty

    leader, follower = pty.openpty()  # standard error is a terminal, as for a person typing
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"} | ({"NO_COLOR": "1"} if no_color else {})
    proc = subprocess.run([sys.executable, "-m", "shipdet", "frobnicate"], stdout=subprocess.PIPE,
                          stderr=follower, cwd=tmp_path, env=env, timeout=120)
    os.close(follower)
    said = os.read(leader, 65536)
    os.close(leader)
    assert proc.returncode == 2 and b"No such command" in said
    assert (b"\x1b[" in said) is not no_color


def test_help_piped_to_a_file_keeps_every_option_and_default_whole(tmp_path: Path) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "TERMINAL_WIDTH")}
    result = subprocess.run([sys.executable, "-m", "shipdet", "serve", "--help"], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path, env=env)
    assert result.returncode == 0
    assert "…" not in result.stdout  # nothing cut short
    assert "--allow-public-without-key" in result.stdout and "weights/shipdet-default.onnx" in result.stdout
