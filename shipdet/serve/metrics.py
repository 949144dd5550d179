"""Prometheus metrics of one app instance (its own registry, so tests can run several apps)."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, PlatformCollector, ProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Every reason a request is refused for, so that each series exists (at 0) from the start: alerting on a rate
# needs the series before the first refusal.
REJECTION_REASONS = ("queue_full", "deadline", "shutting_down", "body_too_large", "body_timeout")


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("shipdet_requests_total", "HTTP requests", ["route", "status"],
                                registry=self.registry)
        self.latency = Histogram("shipdet_request_seconds", "HTTP request latency", ["route"],
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
                                 registry=self.registry)
        self.queue_depth = Gauge("shipdet_queue_depth", "Tiles waiting for the model", registry=self.registry)
        self.batch_size = Histogram("shipdet_batch_size", "Tiles per model call",
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=self.registry)
        self.inference = Histogram("shipdet_inference_seconds", "Model call time (one batch)",
                                   buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
                                   registry=self.registry)
        self.rejections = Counter("shipdet_rejections_total", "Requests refused", ["reason"],
                                  registry=self.registry)
        for reason in REJECTION_REASONS:
            self.rejections.labels(reason=reason)
        ProcessCollector(registry=self.registry)  # CPU seconds, resident memory, open files of this process
        PlatformCollector(registry=self.registry)

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.inference.observe(seconds)

    def reject(self, reason: str) -> None:
        self.rejections.labels(reason=reason).inc()


class MetricsMiddleware:
    """Counts and times every HTTP request by route template and status."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status: dict[str, Any] = {"code": 500}

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(route=name, status=str(status["code"])).inc()
            self.metrics.latency.labels(route=name).observe(time.perf_counter() - start)
