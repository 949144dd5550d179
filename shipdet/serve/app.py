"""The FastAPI application: `create_app(settings)`; the model loads in the background (readyz 503 until then)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse

from shipdet import __version__
from shipdet.inference.engine import Engine
from shipdet.serve.auth import FailedAttempts, require_api_key
from shipdet.serve.batcher import DynamicBatcher
from shipdet.serve.errors import install_error_handlers
from shipdet.serve.kserve import router as kserve_router
from shipdet.serve.limits import RequestGuard
from shipdet.serve.metrics import MetricsMiddleware
from shipdet.serve.routes import router
from shipdet.serve.settings import ServeSettings
from shipdet.serve.state import ServiceState

log = logging.getLogger(__name__)


async def _start(svc: ServiceState, engine: Engine | None) -> None:
    try:
        if engine is None:
            engine = await asyncio.get_running_loop().run_in_executor(None, svc.load)
        def on_batch(size: int, seconds: float) -> None:
            svc.metrics.observe_batch(size, seconds)
            svc.stats.execution_count += 1

        svc.batcher = DynamicBatcher(engine, svc.settings.max_batch, svc.settings.max_delay_ms,
                                     svc.settings.queue_size, on_batch=on_batch)
        svc.batcher.start()
        svc.engine = engine
        svc.ready = True
        log.info("ready: %s on %s", engine.info.path.name, ", ".join(engine.providers))
    except Exception as exc:  # a broken model leaves the service alive but never ready, with the reason
        svc.load_error = f"model failed to load: {exc}"
        log.error(svc.load_error)


def create_app(settings: ServeSettings | None = None, engine: Engine | None = None) -> FastAPI:
    """The service. Pass `engine` to share an already loaded one (tests, benchmarks)."""
    settings = settings or ServeSettings()
    svc = ServiceState(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc.decode_pool = ThreadPoolExecutor(settings.decode_threads, thread_name_prefix="shipdet-decode")
        starting = asyncio.create_task(_start(svc, engine))
        grpc_server = None
        if settings.grpc_port is not None:
            from shipdet.serve.grpc_server import start_grpc

            grpc_server = await start_grpc(svc, app.state.api_keys, app.state.failed_keys)
        yield
        svc.draining = True
        if grpc_server is not None:
            await grpc_server.stop(settings.shutdown_grace_s)
        starting.cancel()
        if svc.batcher is not None:
            await svc.batcher.stop()
        svc.decode_pool.shutdown(wait=False, cancel_futures=True)

    keys = settings.keys()
    protect = bool(keys) and settings.protect_operations
    app = FastAPI(title="shipdet", version=__version__, lifespan=lifespan,
                  description="Ship detection on satellite image tiles. Errors: {error: {code, message, detail}}.",
                  docs_url=None if protect else "/docs", redoc_url=None if protect else "/redoc",
                  openapi_url=None if protect else "/openapi.json",
                  generate_unique_id_function=lambda route: route.name)  # operation ids: detect, infer, ...
    app.state.service = svc
    app.state.api_keys = keys
    app.state.protect_operations = protect
    app.state.failed_keys = FailedAttempts(settings.max_failed_keys_per_minute)
    if protect:  # the schema stays readable to key holders; the interactive docs are not served
        @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(require_api_key)])
        async def openapi() -> JSONResponse:
            return JSONResponse(app.openapi())
    install_error_handlers(app)
    app.include_router(router)
    app.include_router(kserve_router)
    app.add_middleware(RequestGuard, max_bytes=settings.max_body_bytes, body_timeout_s=settings.body_timeout_s,
                       on_reject=svc.metrics.reject)
    app.add_middleware(MetricsMiddleware, metrics=svc.metrics)
    return app
