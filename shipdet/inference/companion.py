"""A model's companion graph: the network that scores the imagery the scale path upsamples.

Sentinel-2 tiles upsampled 4x to the model's working scale look nothing like the aerial chips most of the training
data is: a network tuned for them finds more of their ships but loses on aerial imagery, and one tuned for aerial
imagery misses them (docs/default-model/stages.md, stage 42). A model may therefore carry a second ONNX graph for
upsampled imagery (same input, task and classes; trained from the same backbone): its ONNX metadata names the file,
which lies beside it, and its sha256, so the main file's own sha256 pins both. Loading refuses a companion that is
missing, altered or does not fit; a model without one scores all imagery with its one graph, as before.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from shipdet.errors import ModelLoadError

UPSAMPLED_GRAPH_METADATA_KEY = "shipdet_upsampled_graph"
COMPANION_SUFFIX = ".upsampled.onnx"


@dataclass(frozen=True)
class CompanionGraph:
    """The file (a name beside the main model, never a path) and sha256 of the graph for upsampled imagery."""

    file: str
    sha256: str

    def to_metadata(self) -> dict[str, str]:
        return {UPSAMPLED_GRAPH_METADATA_KEY: json.dumps({"file": self.file, "sha256": self.sha256})}

    def beside(self, model: Path) -> Path:
        return model.parent / self.file


def companion_path(model: Path) -> Path:
    """Where `shipdet export --upsampled-weights` writes a model's companion: `<stem>.upsampled.onnx` beside it."""
    return model.with_name(model.name.removesuffix(".onnx") + COMPANION_SUFFIX)


def companion_from_metadata(metadata: Mapping[str, str], model: Path) -> CompanionGraph | None:
    """The companion a model's metadata names (None: it has none), read strictly: a value that is not a file name
    beside the model with a sha256 stops the load."""
    raw = metadata.get(UPSAMPLED_GRAPH_METADATA_KEY)
    if raw is None:
        return None
    try:
        entry = json.loads(raw)
        name, sha = str(entry["file"]), str(entry["sha256"])
    except (ValueError, TypeError, KeyError):
        raise ModelLoadError(f"{model}: metadata {UPSAMPLED_GRAPH_METADATA_KEY}={raw!r} is not "
                             '{"file": ..., "sha256": ...}', "re-export with `shipdet export --upsampled-weights`"
                             ) from None
    if Path(name).name != name or name in ("", ".", "..") or not name.endswith(".onnx"):
        raise ModelLoadError(f"{model}: its upsampled graph {name!r} is not an .onnx file name beside it",
                             "re-export with `shipdet export --upsampled-weights`")
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise ModelLoadError(f"{model}: the sha256 of its upsampled graph, {sha!r}, is not 64 hex digits",
                             "re-export with `shipdet export --upsampled-weights`")
    return CompanionGraph(name, sha)
