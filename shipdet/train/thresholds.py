"""`shipdet set-thresholds`: record the thresholds measured for other view counts in an exported model.

Thresholds are chosen from figures measured on the exported file (`shipdet evaluate --views N`), so they come after
the export; recording them rewrites the model's metadata only: its weights, parity and measured figures hold.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shipdet.errors import ConfigError
from shipdet.inference.operating_point import (
    CONF_AT_VIEWS_METADATA_KEY,
    CONF_UPSAMPLED_AT_VIEWS_METADATA_KEY,
    conf_at_views_metadata,
)


def write_metadata(path: Path, extra: dict[str, str], remove: tuple[str, ...] = ()) -> None:
    """Set `extra` in an ONNX file's metadata and drop the keys in `remove` (the file is rewritten in place)."""
    import onnx

    model = onnx.load(str(path))
    values = {p.key: p.value for p in model.metadata_props if p.key not in remove}
    values.update(extra)
    del model.metadata_props[:]
    for key, value in values.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))


def conf_at_views_entries(at_views: dict[int, float], upsampled_at_views: dict[int, float], views: int,
                          conf: float, views_upsampled: int, conf_upsampled: float) -> dict[str, str]:
    """Both tables' metadata beside the default operating point they extend (checked against it)."""
    return {**conf_at_views_metadata(at_views, views, conf),
            **conf_at_views_metadata(upsampled_at_views, views_upsampled, conf_upsampled, upsampled=True)}


def card_entries(metadata: dict[str, str]) -> dict[str, Any]:
    """The card's copy of the tables: {views: threshold}, empty where none is recorded."""
    return {"conf_at_views": json.loads(metadata.get(CONF_AT_VIEWS_METADATA_KEY, "{}")),
            "conf_upsampled_at_views": json.loads(metadata.get(CONF_UPSAMPLED_AT_VIEWS_METADATA_KEY, "{}"))}


def set_conf_at_views(model: Path, at_views: dict[int, float], upsampled_at_views: dict[int, float],
                      version: str | None = None) -> list[Path]:
    """Record the tables in `model`, its INT8 twin (as its card names it) and its card; tables given empty remove
    what was recorded. `version`: the model's new version (what some requests are answered changes), else its
    own. Returns the files rewritten."""
    from shipdet.inference.model import card_path, file_sha256, load_model_info
    from shipdet.train.card import card_markdown

    info = load_model_info(model)  # refuses a file its card does not describe
    cpath = card_path(model)
    if cpath is None or cpath != model.with_suffix(".card.json"):
        raise ConfigError(f"{model} has no card of its own ({model.with_suffix('.card.json').name})",
                          "record thresholds in a model exported with `shipdet export`")
    entries = conf_at_views_entries(at_views, upsampled_at_views, info.default_views, info.default_conf,
                                    info.views_for(float("inf")), info.conf_for(float("inf")))
    keys = (CONF_AT_VIEWS_METADATA_KEY, CONF_UPSAMPLED_AT_VIEWS_METADATA_KEY)
    card = json.loads(cpath.read_text())
    targets = [model]
    twin = model.parent / str(card.get("int8", {}).get("file", ""))
    if card.get("int8") and twin.is_file():
        targets.append(twin)
    stamp = {"shipdet_version": version} if version else {}
    for target in targets:
        write_metadata(target, {**entries, **stamp}, remove=keys)
    card.update(sha256=file_sha256(model), **card_entries(entries), **({"version": version} if version else {}))
    cpath.write_text(json.dumps(card, indent=2, default=str))
    model.with_suffix(".card.md").write_text(card_markdown(card))
    return [*targets, cpath, model.with_suffix(".card.md")]
