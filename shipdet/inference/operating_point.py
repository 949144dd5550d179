"""A model's operating point as its ONNX metadata records it: thresholds, views and NMS IoU, for imagery scored as
posted and imagery the scale path upsamples, read strictly (a value that is not one stops the load)."""

from __future__ import annotations

import json
from typing import TypeVar

from shipdet.errors import ModelLoadError

# The confidence a model is served at unless a request asks for another: chosen at export from the measured
# operating points (`shipdet evaluate`) and recorded in the ONNX metadata; models exported before carry none.
CONF_METADATA_KEY = "shipdet_conf"
FALLBACK_CONF = 0.25
# The threshold for imagery the scale path upsamples (coarser than the model's range, e.g. Sentinel-2 at 10 m):
# there the model's scores are calibrated differently (most false alarms on the validation split fall on ship-free
# Sentinel-2 tiles), so each domain gets the threshold that keeps its own false alarms within the target. Models
# exported before carry none: one threshold for all imagery.
CONF_UPSAMPLED_METADATA_KEY = "shipdet_conf_upsampled"
# The views (flips) each tile is scored in and fused (`shipdet.inference.views`): part of the operating point, as
# the threshold is, since fused scores are means over the views. Models exported before carry none: one view.
VIEWS_METADATA_KEY = "shipdet_views"
# The views for imagery the scale path upsamples: more views rank aerial imagery better, while on Sentinel-2 tiles
# upsampled 4x (16 times the pixels already) they found no more ships. Models exported before carry none: the
# same views for all imagery.
VIEWS_UPSAMPLED_METADATA_KEY = "shipdet_views_upsampled"
# Thresholds measured for view counts other than the default, {"1": 0.30, "2": 0.28} as JSON: a fused score is a
# mean over the views, so one view lets more clutter past the threshold chosen for four. A request (or operator)
# asking for other views without a threshold gets the one measured for them. Models exported before carry none:
# the default threshold whatever the views.
CONF_AT_VIEWS_METADATA_KEY = "shipdet_conf_at_views"
CONF_UPSAMPLED_AT_VIEWS_METADATA_KEY = "shipdet_conf_upsampled_at_views"
# The NMS IoU (and the IoU that merges boxes across window seams): part of the operating point as well, so that
# `shipdet evaluate` measures what the service and `shipdet rescore` serve. Models exported before carry none: the
# 0.45 both served at (evaluation used 0.6 until then).
NMS_IOU_METADATA_KEY = "shipdet_nms_iou"
FALLBACK_NMS_IOU = 0.45


def is_upsampled(factor: float) -> bool:
    """Whether the scale path enlarged a tile or scene by `factor` before scoring (imagery coarser than the range)."""
    return factor > 1.0


T = TypeVar("T", float, int)


def for_imagery(factor: float, value: T, upsampled: T | None) -> T:
    """The part of the operating point (threshold, views) for imagery resampled by `factor`: `upsampled` where it was
    upsampled and one is set, else `value`."""
    return upsampled if upsampled is not None and is_upsampled(factor) else value


def _recorded_fraction(metadata: dict[str, str], key: str, fallback: float, what: str, option: str) -> float:
    """A value in (0, 1) recorded at export (`option`), else `fallback`; anything else stops the load."""
    raw = metadata.get(key)
    if raw is None:
        return fallback
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0.0 < value < 1.0:
        raise ModelLoadError(f"model metadata {key}={raw!r} is not {what} in (0, 1)",
                             f"re-export with `shipdet export {option}` (or without {option.split()[0]})")
    return value


def operating_conf(metadata: dict[str, str]) -> float:
    return _recorded_fraction(metadata, CONF_METADATA_KEY, FALLBACK_CONF, "a confidence", "--conf 0.3")


def operating_upsampled_conf(metadata: dict[str, str]) -> float | None:
    if CONF_UPSAMPLED_METADATA_KEY not in metadata:
        return None
    return _recorded_fraction(metadata, CONF_UPSAMPLED_METADATA_KEY, FALLBACK_CONF, "a confidence",
                              "--conf-upsampled 0.3")


def operating_iou(metadata: dict[str, str]) -> float:
    return _recorded_fraction(metadata, NMS_IOU_METADATA_KEY, FALLBACK_NMS_IOU, "an IoU", "--nms-iou 0.45")


def operating_views(metadata: dict[str, str], key: str = VIEWS_METADATA_KEY, option: str = "--views") -> int:
    from shipdet.inference.views import VIEW_COUNTS

    raw = metadata.get(key, "1")
    if raw.strip() not in {str(n) for n in VIEW_COUNTS}:
        raise ModelLoadError(f"model metadata {key}={raw!r} is not one of {VIEW_COUNTS}",
                             f"re-export with `shipdet export {option} 4` (or without {option})")
    return int(raw)


def operating_upsampled_views(metadata: dict[str, str]) -> int | None:
    if VIEWS_UPSAMPLED_METADATA_KEY not in metadata:
        return None
    return operating_views(metadata, VIEWS_UPSAMPLED_METADATA_KEY, "--views-upsampled")


def conf_table(pairs: dict[str, object], where: str) -> dict[int, float]:
    """{views: threshold} from {"1": 0.3, ...}; raises ValueError naming `where` and what is wrong."""
    from shipdet.inference.views import VIEW_COUNTS

    table: dict[int, float] = {}
    for views, conf in pairs.items():
        if str(views).strip() not in {str(n) for n in VIEW_COUNTS}:
            raise ValueError(f"{where}: {views!r} is not a view count ({', '.join(map(str, VIEW_COUNTS))})")
        try:
            value = float(conf)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            value = float("nan")
        if not 0.0 < value < 1.0:
            raise ValueError(f"{where}: the threshold for views={views}, {conf!r}, is not in (0, 1)")
        table[int(views)] = value
    return table


def operating_conf_at_views(metadata: dict[str, str], upsampled: bool = False) -> dict[int, float]:
    key = CONF_UPSAMPLED_AT_VIEWS_METADATA_KEY if upsampled else CONF_AT_VIEWS_METADATA_KEY
    raw = metadata.get(key)
    if raw is None:
        return {}
    option = "--conf-upsampled-at-views" if upsampled else "--conf-at-views"
    try:
        pairs = json.loads(raw)
    except ValueError:
        pairs = None
    try:
        if not isinstance(pairs, dict):
            raise ValueError(f"model metadata {key} is not a JSON object of view counts and thresholds")
        return conf_table(pairs, f"model metadata {key}")
    except ValueError as exc:
        raise ModelLoadError(f"{exc} ({raw!r})", f"re-record it: `shipdet set-thresholds MODEL {option} "
                                                 "1=0.3,2=0.28` (or re-export)") from None


def parse_conf_at_views(text: str | None, option: str = "--conf-at-views") -> dict[int, float]:
    """`1=0.30,2=0.28` (a command-line option) as {views: threshold}; a ConfigError names what is wrong."""
    from shipdet.errors import ConfigError

    if not text:
        return {}
    try:
        pairs = dict(item.split("=", 1) for item in text.replace(" ", "").split(",") if item)
        return conf_table(dict(pairs), option)
    except ValueError as exc:
        message = str(exc) if str(exc).startswith(option) else f"{option} {text!r} is not VIEWS=CONF,..."
        raise ConfigError(message, f"e.g. {option} 1=0.30,2=0.28 (thresholds measured with `shipdet evaluate "
                                   "--views N`)") from None


def conf_at_views_metadata(at_views: dict[int, float], default_views: int, default_conf: float,
                           upsampled: bool = False) -> dict[str, str]:
    """The metadata entry recording `at_views` beside a default of `default_conf` in `default_views` (nothing where
    the table is empty); an entry for the default views must be the default threshold."""
    from shipdet.errors import ConfigError

    option = "--conf-upsampled-at-views" if upsampled else "--conf-at-views"
    key = CONF_UPSAMPLED_AT_VIEWS_METADATA_KEY if upsampled else CONF_AT_VIEWS_METADATA_KEY
    given = at_views.get(default_views)
    if given is not None and abs(given - default_conf) > 1e-9:
        raise ConfigError(f"{option} gives {given:g} for {default_views} views, the default views, whose threshold "
                          f"is {default_conf:g}", f"leave {default_views} out of {option}: the default threshold "
                          "is --conf" + ("-upsampled" if upsampled else ""))
    table = {str(n): float(c) for n, c in sorted(at_views.items()) if n != default_views}
    return {key: json.dumps(table)} if table else {}
