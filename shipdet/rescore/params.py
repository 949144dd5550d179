"""What a re-scoring run is asked to do, and the identity of a scene's result under it (what a resumed run skips)."""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shipdet.errors import ConfigError
from shipdet.rescore.sources import SceneSource
from shipdet.scale import check_gsd


class RescoreParams(BaseSettings):
    """Re-scoring parameters; each can come from the environment as SHIPDET_RESCORE_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="SHIPDET_RESCORE_", frozen=True, extra="forbid")

    conf: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)  # None: the model's operating threshold
    # For scenes the scale path upsamples (coarser than the model's range); None: the model's threshold for them
    # where `conf` is not given, else `conf`.
    conf_upsampled: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)
    iou: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)  # NMS and seam IoU; None: the model's
    tile: int = Field(0, ge=0, le=8192)  # 0: the model's input size
    # Pixels neighbouring windows share, as the model sees them (after resampling): the Sentinel-2 training tiles'
    # 128. At 64, ships longer than the overlap were cut at seams: over the nine ports at x4, 113 of 203 found
    # against 123 at 128 (96: 120, 160: 124, 192: 120, with more false alarms; docs/default-model/stages.md).
    overlap: int = Field(128, ge=0, le=4096)
    grid: Literal["even", "stride"] = "even"  # window placement (shipdet.tiling); stride: SAHI's slices
    cloud_band: int | None = None
    crs: str | None = None   # CRS of scenes placed by a world file without a .prj (e.g. EPSG:32633)
    gsd: float | None = None  # metres per pixel of every scene (default: from each scene's georeference)
    resample: bool = True    # resample scenes of known GSD into the model's scale range (shipdet.scale)
    scale: float | None = Field(None, ge=0.125, le=8)  # a fixed resampling factor instead (comparing scales)
    views: int | None = None  # views each window is scored in and fused (shipdet.inference.views); None: the model's
    # For scenes the scale path upsamples; None: the model's views for them where `views` is not given, else `views`.
    views_upsampled: int | None = None
    max_batch: int = Field(8, ge=1, le=1024)
    readahead: int = Field(16, ge=1, le=1024)  # windows read ahead of inference

    @field_validator("gsd")
    @classmethod
    def _plausible_gsd(cls, value: float | None) -> float | None:
        if value is not None:
            try:
                check_gsd(value)
            except ConfigError as exc:
                raise ValueError(exc.message) from None
        return value

    @field_validator("views", "views_upsampled")
    @classmethod
    def _whole_group(cls, value: int | None) -> int | None:
        if value is not None:
            from shipdet.inference.views import views_for

            views_for(value)  # its ValueError names the counts there are
        return value

    @field_validator("crs")
    @classmethod
    def _known_crs(cls, value: str | None) -> str | None:
        if value is not None:
            from pyproj import CRS
            from pyproj.exceptions import CRSError

            try:
                CRS.from_user_input(value)
            except CRSError as exc:
                raise ValueError(f"unknown CRS {value!r}: give an EPSG code such as EPSG:32633") from exc
        return value

    def digest(self) -> str:
        fields = self.model_dump(exclude={"max_batch", "readahead"})
        if fields["views_upsampled"] in (None, fields["views"] or 1):  # the same views for all, as before: same key
            del fields["views_upsampled"]
        if fields["views"] in (None, 1):  # one view is how every run scored before views existed: same key
            del fields["views"]
        if fields["conf_upsampled"] in (None, fields["conf"]):  # one threshold for all, as before: same key
            del fields["conf_upsampled"]
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def scene_key(source: SceneSource, model_sha256: str, params_hash: str) -> str:
    """Scene identity (id, files' names, sizes, modification times) x model x parameters."""
    parts = [source.scene_id, model_sha256, params_hash]
    for p in source.paths:
        stat = p.stat()
        parts += [str(p.resolve()), str(stat.st_size), str(stat.st_mtime_ns)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()
