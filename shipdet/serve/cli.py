"""`shipdet serve`: the service under uvicorn (`shipdet.serve.server`), settings from flags and SHIPDET_SERVE_*."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        model: Path = typer.Option(None, help="ONNX model (default: the bundled weights/shipdet-default.onnx)."),
        host: str = typer.Option(None, help="Listen address (default 127.0.0.1)."),
        port: int = typer.Option(None, help="Port (default 8000)."),
        grpc_port: int = typer.Option(None, help="Also serve the Open Inference Protocol over gRPC on this port."),
        api_keys_file: Path = typer.Option(None, help="File with one API key a line."),
        allow_public_without_key: bool = typer.Option(False, help="Listen beyond loopback without a key."),
        providers: str = typer.Option(None, help="Execution providers in order, e.g. tensorrt,cuda,cpu."),
        max_batch: int = typer.Option(None, help="Tiles per model call (dynamic batching)."),
        max_delay_ms: float = typer.Option(None, help="Longest wait to fill a batch."),
        log_level: str = typer.Option("info"),
    ) -> None:
        """Serve a model over HTTP (FastAPI + onnxruntime, dynamic batching). Settings: SHIPDET_SERVE_*."""
        from shipdet.serve.app import create_app
        from shipdet.serve.server import run_server
        from shipdet.serve.settings import ServeSettings

        given: dict[str, Any] = {"model": model, "host": host, "port": port, "grpc_port": grpc_port,
                                 "api_keys_file": api_keys_file,
                 "allow_public_without_key": allow_public_without_key or None, "max_batch": max_batch,
                 "max_delay_ms": max_delay_ms,
                 "providers": [p.strip() for p in providers.split(",")] if providers else None}
        settings = ServeSettings(**{k: v for k, v in given.items() if v is not None})
        if not settings.model.is_file():  # refused at once, not after the server has started
            from shipdet.errors import ModelLoadError

            raise ModelLoadError(f"model not found at {settings.model}",
                                 "export one with `shipdet export`, or leave --model out for the bundled one")
        run_server(create_app(settings), settings, log_level)
