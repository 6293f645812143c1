"""The command line: the only module that prints and exits.

Exit codes: 0 ok; 1 invalid descriptor, failed checks, drift or refused overwrite; 2 usage.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from generator import __version__

app = typer.Typer(
    name="shipforge",
    help="Generate honest deployment files from one descriptor (shipforge.yaml).",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

Descriptor = Annotated[Path, typer.Argument(help="The descriptor file.", show_default=True)]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"shipforge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Generate honest deployment files from one descriptor (shipforge.yaml)."""


def _fail(summary: str, issues: tuple[object, ...], code: int) -> NoReturn:
    typer.echo(f"error: {summary}", err=True)
    for issue in issues:
        typer.echo(f"  {issue}", err=True)
    raise typer.Exit(code)


@contextmanager
def _handle_errors() -> Iterator[None]:
    """The one place where shipforge's errors become messages and exit codes."""
    from generator.errors import ShipforgeError

    try:
        yield
    except ShipforgeError as error:
        _fail(error.summary, error.issues, error.exit_code)
    except OSError as error:
        _fail(f"{error.filename or ''}: {error.strerror or error}", (), 1)


@app.command()
def validate(descriptor: Descriptor = Path("shipforge.yaml")) -> None:
    """List every problem of a descriptor, or say it is valid."""
    from generator.loader import load

    with _handle_errors():
        project = load(descriptor)
    typer.echo(f"{descriptor}: valid ({len(project.services)} services)")


@app.command()
def generate(
    descriptor: Descriptor = Path("shipforge.yaml"),
    out: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default: the descriptor's folder).")
    ] = None,
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; exit 1 naming every file that would change."),
    ] = False,
    diff: Annotated[
        bool,
        typer.Option("--diff", help="Print unified diffs of what would change, and write nothing."),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Overwrite generated files you edited since shipforge wrote them."
        ),
    ] = False,
) -> None:
    """Generate every enabled target's files from the descriptor."""
    from generator.pipeline import generate as run
    from generator.writer import apply
    from generator.writer import diff as unified

    target_dir = out if out is not None else descriptor.parent
    with _handle_errors():
        _, changes = run(descriptor, target_dir, force)
        pending = [c for c in changes if c.action not in ("unchanged", "keep")]
        if diff:
            for change in pending:
                typer.echo(unified(change), nl=False)
        if check or diff:
            for change in pending:
                detail = f" ({change.reason})" if change.reason else ""
                typer.echo(f"would {change.action}: {change.path}{detail}", err=True)
            if check and pending:
                raise typer.Exit(1)
            if check:
                typer.echo(f"up to date: {len(changes)} files")
            return
        apply(target_dir, changes)
    for change in changes:
        if change.action != "unchanged":
            detail = f" ({change.reason})" if change.reason else ""
            typer.echo(f"{PAST[change.action]}: {change.path}{detail}")
    same = sum(c.action == "unchanged" for c in changes)
    typer.echo(f"{len(changes) - same} changed, {same} unchanged in {target_dir}")


PAST = {"create": "created", "update": "updated", "delete": "deleted", "keep": "kept"}


def main() -> None:
    """Entry point: typer's usage errors exit 2; anything unexpected is our bug."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
