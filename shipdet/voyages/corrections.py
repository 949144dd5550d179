"""Reviewers' corrections (`review.jsonl`, written by `shipdet review`) in a recount: a rejected detection is not a
ship and leaves the count; a confirmed or relabelled one confirms its visit (relabelled ones take the new class);
a split makes the given sightings a call of their own, a merge makes the given sightings one call. The last word
on a detection counts, whoever said it; splits and merges apply in the order they were made."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from shipdet.errors import DatasetFormatError, DatasetNotFoundError


@dataclass(frozen=True)
class VisitEdit:
    action: str                                  # "split" or "merge"
    sightings: frozenset[tuple[str, int]]        # (scene_id, det_id)


@dataclass(frozen=True)
class Reviewed:
    detections: pd.DataFrame                     # rejected ones dropped; `reviewed` and `class_name` set
    edits: list[VisitEdit]
    said: str                                    # what was applied, for the report's assumptions


def apply_corrections(det: pd.DataFrame, path: Path) -> Reviewed:
    from shipdet.review.store import CorrectionLog

    if path.is_dir():
        path = path / "review.jsonl"
    if path.name != "review.jsonl" or not path.is_file():
        raise DatasetNotFoundError(f"no corrections log at {path}",
                                   "give `shipdet review`'s review.jsonl, or the run folder that holds it")
    if "det_id" not in det:
        raise DatasetFormatError("the detections table has no det_id: corrections name detections by scene_id and "
                                 "det_id", "count from `shipdet rescore`'s detections.parquet")
    log = CorrectionLog(path.parent)
    latest = log.latest_by_detection()
    key = list(zip(det.scene_id.astype(str), det.det_id.astype(int), strict=True))
    action = pd.Series([latest[k].action if k in latest else None for k in key], index=det.index, dtype=object)
    label = pd.Series([latest[k].label if k in latest else None for k in key], index=det.index, dtype=object)
    out = det[action != "reject"].copy()
    out["reviewed"] = action[action != "reject"]
    relabelled = out.reviewed == "relabel"
    if relabelled.any():
        out.loc[relabelled, "class_name"] = label[out.index[relabelled]]
    edits = [VisitEdit(c.action, frozenset((s, int(d)) for s, d in c.detections or []))
             for c in log.visit_edits()]
    said = (f"reviewers' corrections from {path}: {int((action == 'reject').sum())} detections rejected (not "
            f"ships), {int(action.isin(['confirm', 'relabel']).sum())} confirmed or relabelled, "
            f"{sum(e.action == 'split' for e in edits)} visits split, {sum(e.action == 'merge' for e in edits)} merged")
    return Reviewed(out, edits, said)
