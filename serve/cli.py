"""`shipdet serve`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def serve() -> None:
        """Serve a model over HTTP (FastAPI + onnxruntime, dynamic batching)."""
