"""Corrections, append-only: `review.jsonl` in the run folder, one JSON line a correction (who, when, what), never
touching the detection tables. Writers hold an exclusive lock for the append and fsync it, so two reviewers (or
two browser tabs) lose no line and tear none; a line torn by a crash is skipped on reading."""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DETECTION_ACTIONS = {"confirm", "reject", "relabel"}
VISIT_ACTIONS = {"split", "merge"}


class CorrectionIn(BaseModel):
    """What a reviewer says about one detection (scene_id + det_id) or one visit (visit_id)."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["confirm", "reject", "relabel", "split", "merge"]
    scene_id: str | None = Field(None, max_length=500)
    det_id: int | None = Field(None, ge=0)
    visit_id: str | None = Field(None, max_length=500)
    label: str | None = Field(None, max_length=100, description="The class, for `relabel`.")
    with_visit: str | None = Field(None, max_length=500, description="The other visit, for `merge`.")
    split_at: datetime | None = Field(None, description="The first sighting of the second call, for `split`.")
    detections: list[tuple[str, int]] | None = Field(
        None, max_length=10_000, description="For `split`, the sightings (scene_id, det_id) of the second call; for "
        "`merge`, those of both visits: what a recount applies, whatever the visits' numbering then.")
    who: str = Field("reviewer", min_length=1, max_length=100)
    note: str = Field("", max_length=2000)

    @model_validator(mode="after")
    def _target(self) -> CorrectionIn:
        if self.action in DETECTION_ACTIONS and (self.scene_id is None or self.det_id is None):
            raise ValueError(f"{self.action} needs scene_id and det_id")
        if self.action in VISIT_ACTIONS and self.visit_id is None:
            raise ValueError(f"{self.action} needs visit_id")
        if self.action == "relabel" and not self.label:
            raise ValueError("relabel needs a label")
        if self.action == "merge" and not self.with_visit:
            raise ValueError("merge needs with_visit")
        if self.action == "split" and self.split_at is None:
            raise ValueError("split needs split_at")
        if self.action in VISIT_ACTIONS and not self.detections:
            raise ValueError(f"{self.action} needs detections: the sightings it concerns, as [scene_id, det_id]")
        return self


class Correction(CorrectionIn):
    id: str
    at: datetime


class CorrectionLog:
    def __init__(self, run: Path) -> None:
        self.path = run / "review.jsonl"

    def append(self, given: CorrectionIn) -> Correction:
        record = Correction(**given.model_dump(), id=uuid.uuid4().hex, at=datetime.now(timezone.utc))
        line = (record.model_dump_json() + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # one whole line at a time, whoever else writes
            os.write(fd, line)
            os.fsync(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        return record

    def read(self) -> list[Correction]:
        if not self.path.is_file():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            try:
                out.append(Correction.model_validate(json.loads(line)))
            except ValueError:
                continue  # torn by a crash mid-write: the rest still counts
        return out

    def latest_by_detection(self) -> dict[tuple[str, int], Correction]:
        """The last word on each detection (a later confirm overrides an earlier reject, and so on)."""
        latest: dict[tuple[str, int], Correction] = {}
        for c in self.read():
            if c.scene_id is not None and c.det_id is not None:
                latest[(c.scene_id, c.det_id)] = c
        return latest

    def visit_edits(self) -> list[Correction]:
        """Splits and merges, in the order they were made (a later one works on the visits the earlier made)."""
        return [c for c in self.read() if c.action in VISIT_ACTIONS]
