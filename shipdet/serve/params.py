"""The detection parameters every protocol accepts, declared once: `/v1` reads them from the query string, `/v2`
from its request's `parameters`, and both validate them before anything is decoded or batched."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shipdet.inference.postprocess import DEFAULT_MAX_DET
from shipdet.scale import GSD_MAX_M, GSD_MIN_M
from shipdet.serve.batcher import DetectParams
from shipdet.serve.errors import ApiError


class DetectParameters(BaseModel):
    """Per-request detection parameters (None: the service's default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    conf: float | None = Field(None, ge=0, le=1, allow_inf_nan=False, description="Confidence threshold.")
    iou: float | None = Field(None, ge=0, le=1, allow_inf_nan=False, description="NMS IoU threshold.")
    classes: list[int] | None = Field(None, description="Class ids to keep.")
    max_det: int = Field(DEFAULT_MAX_DET, ge=1, le=3000, description="Most detections per tile.")
    gsd: float | None = Field(None, ge=GSD_MIN_M, le=GSD_MAX_M, allow_inf_nan=False, description=(
        "Metres per pixel of the tile (default: from a GeoTIFF's or the given georeference): a tile outside the "
        "model's scale range is resampled into it and its boxes mapped back; one too large to letterbox whole "
        "without leaving the range is scored in windows at its own scale."))
    geometry: Literal["point", "box"] = Field("point", description="GeoJSON geometry.")
    views: Literal[1, 2, 4, 8] | None = Field(None, description=(
        "Score the tile in this many views (flips, then quarter turns) and fuse them: a ship's score is its mean "
        "over the views, so clutter one view believes in falls away; N views cost N inferences (default: the "
        "model's own, or the operator's)."))

    @field_validator("classes", mode="before")
    @classmethod
    def _class_list(cls, value: Any) -> Any:
        if isinstance(value, str):  # the query string's `0,2`
            if not value.replace(",", "").isdigit():
                raise ValueError("classes are non-negative ids separated by commas, e.g. 0,2")
            return [int(c) for c in value.split(",")]
        return value

    @field_validator("classes")
    @classmethod
    def _non_negative(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (not value or min(value) < 0 or len(value) > 1000):
            raise ValueError("classes are 1 to 1000 non-negative ids")
        return value

    @field_validator("views", mode="before")
    @classmethod
    def _view_count(cls, value: Any) -> Any:
        return int(value) if isinstance(value, str) and value.isdigit() else value  # the query string's `4`

    def batch_params(self, default_conf: float, default_iou: float, default_views: int = 1) -> DetectParams:
        return DetectParams(self.conf if self.conf is not None else default_conf,
                            self.iou if self.iou is not None else default_iou, self.classes, self.max_det,
                            self.views if self.views is not None else default_views)


def parse_parameters(raw: Any, status: int = 422) -> DetectParameters:
    """Validate protocol-supplied parameters; a bad one is this request's error, with every problem named."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ApiError(status, "invalid_request", "parameters must be an object of name: value")
    try:
        return DetectParameters.model_validate(raw)
    except ValidationError as exc:
        errors = [{"loc": [str(p) for p in e["loc"]], "msg": e["msg"]} for e in exc.errors()]
        problems = "; ".join(f"{'.'.join(e['loc']) or 'parameters'}: {e['msg']}" for e in errors)
        raise ApiError(status, "invalid_request", f"invalid parameters: {problems}", {"errors": errors}) from None
