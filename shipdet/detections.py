"""The one detection type every part of shipdet consumes (see docs/contracts.md, section 1)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from shipdet.geometry import as_boxes, normalize_obb, obb_to_corners, obb_to_xyxy


@dataclass
class Detections:
    """Detections in the pixels of one image or scene, as parallel numpy arrays.

    `obb` is None for axis-aligned models; when present `xyxy` is its enclosing box, or for labels made from a
    mask or polygon the object's own tight box (for a diagonal ship far tighter than the oriented box's envelope).
    `data` holds extra per-detection arrays (lon, lat, length_m, width_m, heading_deg once georeferenced).
    """

    xyxy: NDArray[np.float64]
    score: NDArray[np.float64]
    class_id: NDArray[np.int64]
    obb: NDArray[np.float64] | None = None
    class_names: dict[int, str] = field(default_factory=lambda: {0: "ship"})
    data: dict[str, NDArray[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.xyxy = as_boxes(self.xyxy, 4)
        n = len(self.xyxy)
        self.score = np.asarray(self.score, dtype=np.float64).reshape(-1)
        self.class_id = np.asarray(self.class_id, dtype=np.int64).reshape(-1)
        if self.obb is not None:
            self.obb = as_boxes(self.obb, 5)
        for name, arr in [("score", self.score), ("class_id", self.class_id), ("obb", self.obb),
                          *self.data.items()]:
            if arr is not None and len(arr) != n:
                raise ValueError(f"Detections.{name} has {len(arr)} rows, xyxy has {n}")

    @classmethod
    def empty(cls, oriented: bool = False, class_names: Mapping[int, str] | None = None) -> Detections:
        return cls(
            xyxy=np.zeros((0, 4)), score=np.zeros(0), class_id=np.zeros(0, dtype=np.int64),
            obb=np.zeros((0, 5)) if oriented else None, class_names=dict(class_names or {0: "ship"}),
        )

    @classmethod
    def from_obb(
        cls, obb: ArrayLike, score: ArrayLike, class_id: ArrayLike,
        class_names: Mapping[int, str] | None = None, data: dict[str, NDArray[Any]] | None = None,
        xyxy: ArrayLike | None = None,
    ) -> Detections:
        """From oriented boxes; `xyxy` is the objects' own tight box where it is known and tighter than the
        oriented box's envelope (a label made from a mask or polygon), else that envelope."""
        o = normalize_obb(obb)
        return cls(xyxy=obb_to_xyxy(o) if xyxy is None else np.asarray(xyxy, dtype=np.float64), score=np.asarray(score),
                   class_id=np.asarray(class_id), obb=o, class_names=dict(class_names or {0: "ship"}),
                   data=dict(data or {}))

    @classmethod
    def concatenate(cls, parts: Iterable[Detections]) -> Detections:
        items = [p for p in parts]
        if not items:
            return cls.empty()
        oriented = all(p.obb is not None for p in items)
        keys = set.intersection(*(set(p.data) for p in items)) if items else set()
        return cls(
            xyxy=np.concatenate([p.xyxy for p in items]),
            score=np.concatenate([p.score for p in items]),
            class_id=np.concatenate([p.class_id for p in items]),
            obb=np.concatenate([p.obb for p in items if p.obb is not None]) if oriented else None,
            class_names={k: v for p in items for k, v in p.class_names.items()},
            data={k: np.concatenate([p.data[k] for p in items]) for k in sorted(keys)},
        )

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: ArrayLike | slice) -> Detections:
        idx = index if isinstance(index, slice) else np.asarray(index)
        if isinstance(idx, np.ndarray) and idx.ndim == 0:
            idx = idx.reshape(1)
        return Detections(
            xyxy=self.xyxy[idx], score=self.score[idx], class_id=self.class_id[idx],
            obb=None if self.obb is None else self.obb[idx], class_names=dict(self.class_names),
            data={k: v[idx] for k, v in self.data.items()},
        )

    @property
    def oriented(self) -> bool:
        return self.obb is not None

    @property
    def class_name(self) -> NDArray[np.str_]:
        return np.array([self.class_names.get(int(c), str(int(c))) for c in self.class_id], dtype=str)

    def corners(self) -> NDArray[np.float64]:
        """(N, 4, 2) polygon corners: of the oriented box when there is one, else of the axis-aligned box."""
        if self.obb is not None:
            return obb_to_corners(self.obb)
        x1, y1, x2, y2 = self.xyxy.T
        return np.stack([np.stack([x1, y1], 1), np.stack([x2, y1], 1), np.stack([x2, y2], 1),
                         np.stack([x1, y2], 1)], axis=1)

    def shifted(self, dx: float, dy: float) -> Detections:
        """The same detections moved by (dx, dy) pixels: window coordinates -> scene coordinates."""
        obb = None
        if self.obb is not None:
            obb = self.obb.copy()
            obb[:, :2] += (dx, dy)
        return Detections(xyxy=self.xyxy + np.array([dx, dy, dx, dy]), score=self.score, class_id=self.class_id,
                          obb=obb, class_names=dict(self.class_names), data=dict(self.data))

    def scaled(self, sx: float, sy: float) -> Detections:
        """Rescale pixel coordinates (e.g. undo a resize). Oriented boxes need sx and sy within 2 % of each other
        (a resize rounded to whole pixels): their centres scale exactly, their sides by the geometric mean."""
        obb = None
        if self.obb is not None:
            if not np.isclose(sx, sy, rtol=0.02):
                raise ValueError("oriented boxes can only be scaled uniformly")
            obb = self.obb.copy()
            obb[:, :2] *= (sx, sy)
            obb[:, 2:4] *= float(np.sqrt(sx * sy))
        return Detections(xyxy=self.xyxy * np.array([sx, sy, sx, sy]), score=self.score, class_id=self.class_id,
                          obb=obb, class_names=dict(self.class_names), data=dict(self.data))

    def with_data(self, **arrays: ArrayLike) -> Detections:
        data = dict(self.data)
        data.update({k: np.asarray(v) for k, v in arrays.items()})
        return Detections(xyxy=self.xyxy, score=self.score, class_id=self.class_id, obb=self.obb,
                          class_names=dict(self.class_names), data=data)
