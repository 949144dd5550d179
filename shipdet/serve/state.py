"""What one running service holds: settings, engine, batcher, metrics, and its lifecycle flags."""

from __future__ import annotations

import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from shipdet.errors import ConfigError
from shipdet.inference.engine import Engine
from shipdet.serve.batcher import DynamicBatcher
from shipdet.serve.errors import ApiError
from shipdet.serve.metrics import ServiceMetrics
from shipdet.serve.settings import ServeSettings

log = logging.getLogger(__name__)


@dataclass
class InferenceStats:
    """Counts the Open Inference Protocol's statistics extension reports (Triton's names): requests that
    succeeded or failed and their time, images inferred, model calls (batches)."""

    success_count: int = 0
    success_ns: int = 0
    fail_count: int = 0
    fail_ns: int = 0
    inference_count: int = 0
    execution_count: int = 0
    last_inference_ms: int = 0

    def request(self, images: int, seconds: float, ok: bool) -> None:
        ns = int(seconds * 1e9)
        if ok:
            self.success_count, self.success_ns = self.success_count + 1, self.success_ns + ns
            self.inference_count += images
        else:
            self.fail_count, self.fail_ns = self.fail_count + 1, self.fail_ns + ns
        self.last_inference_ms = int(time.time() * 1000)


@dataclass
class ServiceState:
    settings: ServeSettings
    metrics: ServiceMetrics = field(default_factory=ServiceMetrics)
    engine: Engine | None = None
    batcher: DynamicBatcher | None = None
    decode_pool: ThreadPoolExecutor | None = None
    ready: bool = False
    draining: bool = False
    load_error: str | None = None
    grpc_port: int | None = None  # the gRPC server's bound port, once it listens
    stats: InferenceStats = field(default_factory=InferenceStats)

    def engine_or_503(self) -> Engine:
        if self.engine is None or self.batcher is None:
            raise ApiError(503, "not_ready", self.load_error or "the model is still loading",
                           headers={"Retry-After": "2"})
        return self.engine

    def admit(self) -> None:
        """Refuse a new request before its body is read: while draining, or when the queue is full."""
        if self.draining:
            self.metrics.reject("shutting_down")
            raise ApiError(503, "shutting_down", "the service is shutting down", headers={"Connection": "close"})
        self.check_capacity()

    def check_capacity(self) -> None:
        """503 when the tiles waiting for the model and those being decoded already fill the queue: decided
        before a tile is decoded (and again before a request's body is read), as early as it can be."""
        batcher = self.batcher
        if batcher is not None and batcher.depth + batcher.incoming >= self.settings.queue_size:
            raise self.queue_full()

    def queue_full(self) -> ApiError:
        self.metrics.reject("queue_full")
        return ApiError(503, "queue_full", "the model's queue is full, retry shortly",
                        {"queue_size": self.settings.queue_size}, headers={"Retry-After": "1"})

    def model_summary(self) -> dict[str, Any]:
        info = self.engine_or_503().info
        summary: dict[str, Any] = {"name": info.name, "version": info.version, "sha256": info.sha256}
        if info.upsampled_graph is not None:  # pinned by the model's own sha256: its metadata names it
            summary["upsampled_graph_sha256"] = info.upsampled_graph.sha256
        return summary

    def default_conf(self, factor: float = 1.0, views: int | None = None) -> float:
        """The threshold a request gets unless it asks for one: the operator's setting, else the model's own for a
        tile resampled by `factor` (its threshold for upsampled imagery where it records one) and scored in
        `views` (its threshold measured for those views where it records one; None: the default views)."""
        if self.settings.conf is not None:
            return self.settings.conf
        return self.engine_or_503().info.conf_for(factor, views if views is not None else self.default_views(factor))

    def operating_point(self) -> dict[str, Any]:
        """What a request gets unless it asks otherwise, as the metadata endpoints of every protocol give it: the
        default threshold for each view count (keys are view counts, as strings for JSON)."""
        from shipdet.inference.views import VIEW_COUNTS

        upsampled = math.inf  # any factor above 1: the threshold for imagery the scale path upsamples
        return {"default_conf": self.default_conf(), "default_conf_upsampled": self.default_conf(upsampled),
                "default_iou": self.default_iou(), "default_views": self.default_views(),
                "default_views_upsampled": self.default_views(upsampled),
                "default_conf_at_views": {str(n): self.default_conf(1.0, n) for n in VIEW_COUNTS},
                "default_conf_upsampled_at_views": {str(n): self.default_conf(upsampled, n) for n in VIEW_COUNTS}}

    def default_iou(self) -> float:
        """The NMS IoU a request gets unless it asks for one: the operator's setting, else the model's own."""
        return self.settings.iou if self.settings.iou is not None else self.engine_or_503().info.default_iou

    def default_views(self, factor: float = 1.0) -> int:
        """The views a request gets unless it asks for some: the operator's setting, else the model's own for a tile
        resampled by `factor`."""
        return self.settings.views if self.settings.views is not None else self.engine_or_503().info.views_for(factor)

    def load(self) -> Engine:
        """Load and warm the model (in a worker thread at start-up)."""
        s = self.settings
        engine = Engine(s.model, providers=s.providers, max_batch=s.max_batch, threads=s.threads,
                        streams=s.streams, verify=s.verify_sha256)
        most = max(engine.info.default_views, engine.info.upsampled_views or 1)
        if s.views is None and most > s.max_views:
            engine.close()
            raise ConfigError(f"{s.model} is scored in {most} views by default, over the "
                              f"limit of {s.max_views}", "set SHIPDET_SERVE_VIEWS to a number of views within it, "
                              "or raise SHIPDET_SERVE_MAX_VIEWS")
        engine.warmup()
        return engine


def service(request: Request) -> ServiceState:
    """The running service's state (a FastAPI dependency: `Service` in a route's signature)."""
    svc: ServiceState = request.app.state.service
    return svc


Service = Annotated[ServiceState, Depends(service)]
