"""The Open Inference Protocol's codec, apart from its endpoints: an infer request's JSON header and images (plain
JSON with base64 elements, or the binary tensor data extension), and the response's output tensors."""

from __future__ import annotations

import base64
import json
import struct
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from shipdet.serve.dataplane import TileResult

# Request-level parameters of the protocol itself (tritonclient sends some), not detection parameters.
PROTOCOL_PARAMETERS = {"binary_data_output", "sequence_id", "sequence_start", "sequence_end", "priority", "timeout",
                       "headers"}
INPUTS: list[dict[str, Any]] = [{"name": "images", "datatype": "BYTES", "shape": [-1]}]
DATATYPES = {np.dtype(np.float32): "FP32", np.dtype(np.int32): "INT32", np.dtype(np.bool_): "BOOL"}


def output_metadata(task: str) -> list[dict[str, Any]]:
    """The outputs as model metadata lists them (HTTP and gRPC alike)."""
    outputs = [{"name": "boxes", "datatype": "FP32", "shape": [-1, 4]},
               {"name": "scores", "datatype": "FP32", "shape": [-1]},
               {"name": "classes", "datatype": "INT32", "shape": [-1]},
               {"name": "image_index", "datatype": "INT32", "shape": [-1]},
               {"name": "num_detections", "datatype": "INT32", "shape": [-1]},
               {"name": "scale_factor", "datatype": "FP32", "shape": [-1]},
               {"name": "max_det_reached", "datatype": "BOOL", "shape": [-1]}]
    if task == "obb":
        outputs.append({"name": "obb", "datatype": "FP32", "shape": [-1, 5]})
    return outputs


def detection_tensors(results: list[TileResult], task: str) -> dict[str, np.ndarray]:
    """One request's detections as the protocol's output tensors, ragged over its images (indexed by image), with
    what `/v1` reports beside each tile's detections: the scale factor applied for its GSD (1 where none was
    known), and whether `max_det` cut its detections short (a count from it is then a lower bound)."""
    dets = [r.detections for r in results]
    tensors = {
        "boxes": np.concatenate([d.xyxy for d in dets]).astype(np.float32).reshape(-1, 4),
        "scores": np.concatenate([d.score for d in dets]).astype(np.float32),
        "classes": np.concatenate([d.class_id for d in dets]).astype(np.int32),
        "image_index": np.concatenate([np.full(len(d), i) for i, d in enumerate(dets)]).astype(np.int32),
        "num_detections": np.array([len(d) for d in dets], dtype=np.int32),
        "scale_factor": np.array([r.factor for r in results], dtype=np.float32),
        "max_det_reached": np.array([r.max_det_reached for r in results], dtype=np.bool_),
    }
    if task == "obb":
        tensors["obb"] = np.concatenate([d.obb for d in dets]).astype(np.float32).reshape(-1, 5)
    return tensors


def bytes_elements(raw: bytes) -> list[bytes]:
    out, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise ValueError("truncated BYTES element length")
        (n,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + n > len(raw):
            raise ValueError("BYTES element longer than the data")
        out.append(raw[offset:offset + n])
        offset += n
    return out


def parse_request(body: bytes, header_length: str | None) -> tuple[dict[str, Any], list[bytes]]:
    """The JSON header and the images of an infer request (JSON or binary tensor data extension)."""
    split = int(header_length) if header_length else len(body)
    if not 0 <= split <= len(body):
        raise ValueError(f"Inference-Header-Content-Length {split} is outside the body ({len(body)} bytes)")
    header = json.loads(body[:split])
    if not isinstance(header, dict):
        raise ValueError("the request must be a JSON object")
    binary = body[split:]
    inputs = header.get("inputs") or []
    if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
        raise ValueError("'inputs' must be a list of tensor objects")
    images_input = next((i for i in inputs if i.get("name") == "images"), None)
    if images_input is None or images_input.get("datatype") != "BYTES":
        raise ValueError("the request needs one input named 'images' of datatype BYTES")
    offset = 0
    for item in inputs:  # binary inputs follow the header in the order of the inputs
        size = int((item.get("parameters") or {}).get("binary_data_size", 0))
        if item is images_input:
            if size:
                images = bytes_elements(binary[offset:offset + size])
            else:
                images = [base64.b64decode(s, validate=True) for s in np.asarray(item["data"]).reshape(-1)]
        offset += size
    shape = images_input.get("shape") or [len(images)]
    if not isinstance(shape, list) or not all(isinstance(v, int) and 0 <= v <= 1 << 20 for v in shape):
        raise ValueError("'images' shape must be a list of non-negative integers")
    expected = int(np.prod(shape))
    if expected != len(images):
        raise ValueError(f"'images' has shape {images_input.get('shape')} but holds {len(images)} elements")
    return header, images


def encode_outputs(tensors: dict[str, np.ndarray], requested: list[dict[str, Any]], binary_output: bool = False
                   ) -> tuple[dict[str, Any], bytes]:
    """The response's `outputs` header and its binary tail: each requested output (all when none was named) as
    JSON data or, where the client asked for binary data (per output, or `binary_data_output` for all),
    little-endian bytes after the header."""
    wanted = {o["name"]: bool((o.get("parameters") or {}).get("binary_data", binary_output)) for o in requested} or \
        dict.fromkeys(tensors, binary_output)
    unknown = sorted(set(wanted) - set(tensors))
    if unknown:
        raise ValueError(f"unknown output(s): {', '.join(unknown)}")
    entries, blobs = [], []
    for name, binary in wanted.items():
        arr = tensors[name]
        entry: dict[str, Any] = {"name": name, "datatype": DATATYPES[arr.dtype], "shape": list(arr.shape)}
        if binary:
            blob = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = arr.reshape(-1).tolist()
        entries.append(entry)
    return {"outputs": entries}, b"".join(blobs)
