"""The `shipdet` command. Each component adds its own subcommands; heavy imports happen inside them."""

from __future__ import annotations

import os
import sys

import typer
from pydantic import ValidationError

from shipdet.errors import ShipdetError
from shipdet.progress import setup_logging


def _help_width() -> None:
    """Help piped to a file or a pager has no terminal to size it: rich would then squeeze it into 80 columns and
    cut long names and defaults short ("..."). Wide enough for every option whole, unless the user said a width."""
    import typer.rich_utils

    if not sys.stdout.isatty() and not os.environ.get("COLUMNS") and not os.environ.get("TERMINAL_WIDTH"):
        typer.rich_utils.MAX_WIDTH = 160


_help_width()
app = typer.Typer(
    name="shipdet",
    help="Ship detection in satellite imagery: datasets, training, export, serving, re-scoring, voyage counting.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from shipdet import __version__

        typer.echo(f"shipdet {__version__}")
        raise typer.Exit()


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
          version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    setup_logging(verbose)


def _say(text: str, error: bool = True) -> None:
    """One line on standard error; red on a terminal unless NO_COLOR is set (no-color.org)."""
    colour = False if os.environ.get("NO_COLOR") else None
    typer.secho(text, fg="red" if error else None, err=True, color=colour)


def _register() -> None:
    from shipdet.datasets.cli import app as datasets_app
    from shipdet.rescore.cli import register as register_rescore
    from shipdet.review.cli import register as register_review
    from shipdet.serve.cli import register as register_serve
    from shipdet.train.cli import register as register_train
    from shipdet.voyages.cli import register as register_voyages

    app.add_typer(datasets_app, name="datasets", help="Convert published ship datasets to YOLO sets; merge; stats.")
    register_train(app)
    register_serve(app)
    register_rescore(app)
    register_voyages(app)
    register_review(app)


_register()


def main() -> None:
    """Entry point: typed shipdet errors become one clear line and exit status 2, never a traceback."""
    try:
        app(standalone_mode=False)
    except ShipdetError as exc:
        _say(f"error: {exc.message}")
        if exc.hint:
            _say(f"hint: {exc.hint}", error=False)
        sys.exit(2)
    except (typer.Exit, SystemExit) as exc:
        code = getattr(exc, "exit_code", getattr(exc, "code", 0))
        sys.exit(code if isinstance(code, int) else 0)
    except (typer.Abort, KeyboardInterrupt):
        _say("interrupted")
        sys.exit(130)
    except ValidationError as exc:  # a setting from an option or a SHIPDET_* variable that does not validate
        for err in exc.errors():
            where = ".".join(str(part) for part in err["loc"]) or exc.title
            _say(f"error: {exc.title} {where}: {err['msg']} (got {err.get('input')!r})")
        _say("hint: see `shipdet COMMAND --help`; settings also come from SHIPDET_* environment variables",
             error=False)
        sys.exit(2)
    except Exception as exc:  # usage errors (typer's own click) arrive here in non-standalone mode
        if type(exc).__name__ == "NoArgsIsHelpError":
            _say("error: no command given")
            _say("hint: `shipdet --help` lists the commands", error=False)
            sys.exit(2)
        if callable(getattr(exc, "format_message", None)) and isinstance(getattr(exc, "exit_code", None), int):
            _say(f"error: {exc.format_message()}")  # type: ignore[attr-defined]
            _say("hint: see `shipdet --help` or `shipdet COMMAND --help`", error=False)
            sys.exit(2)
        raise
