"""`shipdet review RUN_DIR`: the review page on loopback."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def review(
        run_dir: Path = typer.Argument(..., help="A `shipdet rescore` output folder."),
        voyages: Path = typer.Option(None, help="A `shipdet voyages` report folder, shown beside the map."),
        port: int = typer.Option(8010, help="Port on 127.0.0.1."),
    ) -> None:
        """Look at the evidence behind a run in a browser (map, chips, counts) and correct it; corrections go to
        RUN_DIR/review.jsonl, never into the detection tables."""
        import uvicorn

        from shipdet.errors import DatasetNotFoundError
        from shipdet.review.app import create_review_app

        if voyages is not None and not (voyages / "summary.json").is_file():
            raise DatasetNotFoundError(f"no voyage report at {voyages} (summary.json missing)",
                                       "give the --out folder of `shipdet voyages`")
        app = create_review_app(run_dir, voyages)
        typer.echo(f"review: http://127.0.0.1:{port}/ (Ctrl-C to stop)")
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
