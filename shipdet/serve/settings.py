"""The service's settings: one class, environment prefix SHIPDET_SERVE_, unsafe combinations refused."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shipdet.errors import ConfigError
from shipdet.weights import bundled_model

DEFAULT_MODEL = bundled_model()


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ServeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHIPDET_SERVE_", extra="forbid")

    model: Path = Field(DEFAULT_MODEL, description="ONNX model; the bundled default when not named.")
    host: str = "127.0.0.1"
    port: int = 8000
    grpc_port: int | None = Field(None, ge=0, le=65535, description="Also serve the Open Inference Protocol over "
                                                                   "gRPC on this port (0: any free one; unset: off).")
    api_keys: list[SecretStr] = Field(default_factory=list, description="Accepted API keys.")
    api_keys_file: Path | None = Field(None, description="File with one API key a line (e.g. a mounted secret).")
    allow_public_without_key: bool = Field(False, description="Listen beyond loopback with no key (explicit).")
    providers: list[str] = Field(default_factory=lambda: ["tensorrt", "cuda", "cpu"])
    threads: int = Field(0, ge=0, description="onnxruntime intra-op threads (0: all cores).")
    streams: int = Field(0, ge=0, description="CPU: single-threaded inferences side by side (0: one per core, "
                                              "or 1 when threads is set). CUDA: always 1.")
    verify_sha256: bool = True
    max_batch: int = Field(8, ge=1, le=256)
    max_delay_ms: float = Field(5.0, ge=0)
    queue_size: int = Field(64, ge=1, description="Model inputs waiting for the model (each view of each window of a "
                                                  "tile takes a place) and tiles being decoded; beyond: 503.")
    request_timeout_s: float = Field(30.0, gt=0, description="A request past this deadline gets 504.")
    max_body_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    max_pixels: int = Field(25_000_000, ge=1)
    max_tiles: int = Field(16, ge=1, description="Tiles in one /v1/detect/batch request.")
    conf: float | None = Field(None, ge=0, le=1, description="Default confidence threshold; unset: the model's "
                                                             "recorded operating threshold (0.25 if it has none).")
    iou: float | None = Field(None, ge=0, le=1, description="Default NMS IoU; unset: the model's recorded one (0.45 "
                                                           "if it has none).")
    views: Literal[1, 2, 4, 8] | None = Field(None, description="Default views each tile is scored in and fused; "
                                                               "unset: the model's own (1 if it records none).")
    max_views: Literal[1, 2, 4, 8] = Field(8, description="Most views a request may ask for (each costs one "
                                                          "inference a window); more: 422.")
    max_tile_inferences: int = Field(1016, ge=1, description=(
        "Model inputs one tile may need (its windows x views), each one inference; more: 413. The default lets any "
        "tile within the default max_pixels and at least 512 px a side, cut into 512 px windows overlapping by 128 "
        "(at most 254), be scored in 4 views, the most a model's defaults use; 8 views only on smaller ones. "
        "Inputs are made a batch at a time, not held all at once, and a tile's batches take turns with other "
        "requests'."))
    decode_threads: int = Field(4, ge=1)
    shutdown_grace_s: float = Field(20.0, ge=0)
    protect_operations: bool = Field(True, description="With keys set, /metrics and the OpenAPI schema need a key "
                                                        "too, and the interactive docs are not served.")
    max_failed_keys_per_minute: int = Field(20, ge=1, description="Wrong or missing keys a client may send in a "
                                                                  "minute; beyond: 429 until the minute has passed.")
    max_header_bytes: int = Field(16_384, ge=1024, description="Largest request head (uvicorn's h11 limit).")
    keepalive_timeout_s: float = Field(5.0, gt=0, description="Idle keep-alive connections are closed after this.")
    head_timeout_s: float = Field(10.0, gt=0, description="A request head (request line and headers) must arrive "
                                                          "whole within this, from the connection or the last "
                                                          "response; else the connection is closed with a 408.")
    body_timeout_s: float = Field(30.0, gt=0, description="A request body must arrive whole within this; else 408.")

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> ServeSettings:
        if not is_loopback(self.host) and not self.keys() and not self.allow_public_without_key:
            raise ConfigError(f"refusing to listen on {self.host} without an API key",
                              "set SHIPDET_SERVE_API_KEYS or --api-keys-file, or pass --allow-public-without-key")
        if self.views is not None and self.views > self.max_views:
            raise ConfigError(f"the default of {self.views} views is over the limit of {self.max_views}",
                              "lower SHIPDET_SERVE_VIEWS or raise SHIPDET_SERVE_MAX_VIEWS")
        return self

    def keys(self) -> list[str]:
        keys = [k.get_secret_value() for k in self.api_keys if k.get_secret_value()]
        if self.api_keys_file is not None:
            if not self.api_keys_file.is_file():
                raise ConfigError(f"API keys file not found at {self.api_keys_file}")
            keys += [line.strip() for line in self.api_keys_file.read_text().splitlines() if line.strip()]
        return keys
