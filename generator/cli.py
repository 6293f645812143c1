"""The command line: the only module that prints and exits.

Exit codes: 0 ok; 1 invalid descriptor, failed checks, drift or refused overwrite; 2 usage.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from generator import __version__

if TYPE_CHECKING:
    from generator.errors import Issue

app = typer.Typer(
    name="shipforge",
    help="Generate honest deployment files from one descriptor (shipforge.yaml).",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain help and usage errors: rendering them with rich costs ~60 ms of imports per run.
    rich_markup_mode=None,
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
    from generator.loader import load_with_notes

    with _handle_errors():
        project, notes = load_with_notes(descriptor)
    _print_notes(notes)
    typer.echo(f"{descriptor}: valid ({len(project.services)} services)")


def _print_notes(notes: list[Issue]) -> None:
    for note in notes:
        typer.echo(f"note: {note}", err=True)


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
    from generator.loader import load_with_notes
    from generator.pipeline import changes as planned
    from generator.writer import apply
    from generator.writer import diff as unified

    target_dir = out if out is not None else descriptor.parent
    with _handle_errors():
        project, notes = load_with_notes(descriptor)
        changes = planned(project, target_dir, force)
        _print_notes(notes)
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

CHECK_FORMATS = ("text", "json", "sarif", "gitlab")


@app.command()
def check(
    path: Annotated[
        Path, typer.Argument(help="The repository folder to check.", show_default=True)
    ] = Path("."),
    descriptor: Annotated[
        Path | None,
        typer.Option(
            "--descriptor", help="The descriptor (default: shipforge.yaml in the folder, if any)."
        ),
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", help="text, json, sarif (2.1.0) or gitlab (code quality).")
    ] = "text",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write the report there; the text report still prints."
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Edited generated files fail the check too.")
    ] = False,
    require_tools: Annotated[
        bool,
        typer.Option("--require-tools", help="A linter that applies but is not installed fails."),
    ] = False,
    skip: Annotated[
        list[str] | None,
        typer.Option("--skip", help="Do not run this tool (e.g. checkov); may be repeated."),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", help="Ignore paths matching this glob; may be repeated."),
    ] = None,
    kubernetes_version: Annotated[
        str, typer.Option("--kubernetes-version", help="Validate manifests for this release.")
    ] = "1.32",
    no_lint: Annotated[
        bool, typer.Option("--no-lint", help="Validate and compare only; run no linter.")
    ] = False,
) -> None:
    """Validate the descriptor, report drift of generated files, and lint deployment files.

    Exit 1 on any finding. Works without a descriptor too (hand-written files: lint only).
    """
    from generator.check import Options, format_gitlab, format_json, format_text, run_check

    if output_format not in CHECK_FORMATS:
        _fail(f"--format must be one of: {', '.join(CHECK_FORMATS)}", (), 2)
    if not path.is_dir():
        _fail(f"{path}: not a folder", (), 2)
    if descriptor is None and (path / "shipforge.yaml").is_file():
        descriptor = path / "shipforge.yaml"
    options = Options(
        strict=strict,
        require_tools=require_tools,
        skip=tuple(skip or ()),
        exclude=tuple(exclude or ()),
        kubernetes_version=kubernetes_version,
        lint=not no_lint,
    )
    with _handle_errors():
        report = run_check(path, descriptor, options)
        if output_format == "sarif":
            from generator.sarif import format_sarif

            rendered = format_sarif(report)
        else:
            rendered = {"text": format_text, "json": format_json, "gitlab": format_gitlab}[
                output_format
            ](report)
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(rendered, encoding="utf-8")
    if output is None or output_format == "text":
        typer.echo(rendered, nl=False)
    if output is not None and output_format != "text":
        typer.echo(format_text(report), nl=False)
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def init(
    path: Annotated[
        Path, typer.Argument(help="The repository to describe.", show_default=True)
    ] = Path("."),
    yes: Annotated[
        bool,
        typer.Option(
            "--yes", "-y", help="Ask nothing: take the documented default for what is not found."
        ),
    ] = False,
    schema: Annotated[
        str | None,
        typer.Option(
            "--schema",
            help="Path or URL of the schema for the editor modeline (default: the installed copy).",
        ),
    ] = None,
) -> None:
    """Write a commented shipforge.yaml for an existing repository, by detection.

    Never overwrites a descriptor. What it cannot detect it asks, or with --yes takes the
    documented default and says so in a comment.
    """
    from generator.detect import apply_answers, detect, questions, render_descriptor
    from generator.errors import InvalidDescriptor, Issue
    from generator.loader import SCHEMA_PATH, load

    target = path / "shipforge.yaml"
    if target.exists():
        _fail(
            f"{target} already exists: shipforge init never overwrites a descriptor",
            ("check it with `shipforge validate`, or move it away to start over",),
            1,
        )
    with _handle_errors():
        detection = detect(path)
        if not detection.services:
            raise InvalidDescriptor(
                "nothing to describe",
                (
                    Issue(
                        "found no Python or Node project (pyproject.toml, requirements.txt, "
                        "Pipfile or package.json)",
                        str(path),
                        hint="write shipforge.yaml by hand from docs/descriptor.md",
                    ),
                ),
            )
        answers: dict[str, str] = {}
        defaulted: dict[str, str] = {}
        for question in questions(detection):
            if question.needs and not answers.get(question.needs, "").strip():
                continue
            if yes:
                answers[question.key] = question.default
                defaulted[question.key] = question.why
                continue
            typer.echo(f"{question.key}: {question.why}")
            answers[question.key] = _ask(question.prompt, question.default, question.key)
        apply_answers(detection, answers)
        # The schema's $id names it but is not served anywhere: editors need a file they can read.
        text = render_descriptor(detection, schema or str(SCHEMA_PATH), defaulted)
        # Validated before it lands: written beside the target, loaded, then renamed.
        temporary = path / ".shipforge.yaml.init"
        temporary.write_text(text, encoding="utf-8")
        try:
            project = load(temporary)
            temporary.replace(target)
        finally:
            temporary.unlink(missing_ok=True)
    typer.echo(f"wrote {target}: {len(project.services)} services")
    for service in detection.services:
        kind = f"port {service.port}" if service.port else "worker"
        typer.echo(f"  {service.name}: {service.runtime}, {kind}: {service.command}")
    for key, why in defaulted.items():
        typer.echo(f"  default taken for {key} ({why}): check it in the file")
    typer.echo("next: review the comments, then `shipforge generate`")


def _ask(prompt: str, default: str, key: str) -> str:
    """One typer prompt; ports are re-asked until they are a number (or empty for a worker)."""
    while True:
        answer = str(typer.prompt(prompt, default=default, show_default=bool(default)))
        if not key.endswith(".port") or not answer.strip():
            return answer
        if answer.strip().isdigit() and 0 < int(answer) < 65536:
            return answer.strip()
        typer.echo("a port is a number from 1 to 65535", err=True)


@app.command()
def adopt(
    template: Annotated[
        str,
        typer.Option(
            "--template",
            help="The shipforge template repository (a git URL or path) `copier update` takes "
            "new versions from. Ignored in a project that already has .copier-answers.yml.",
        ),
    ],
    ref: Annotated[
        str | None,
        typer.Option(
            "--ref",
            help="Its tag or commit that generated these files (default: its newest tag).",
        ),
    ] = None,
    descriptor: Descriptor = Path("shipforge.yaml"),
    force: Annotated[
        bool,
        typer.Option("--force", help="Adopt even where the template renders something else."),
    ] = False,
) -> None:
    """Make a project made by `shipforge generate` updatable with `copier update`.

    Writes the .copier-answers.yml copier would have written, and records what the template
    renders in .shipforge/manifest.json. Commit both.
    """
    from generator.lifecycle import adopt as run

    with _handle_errors():
        outcome = run(descriptor.parent, descriptor, template, ref, force)
    for path in outcome.changed:
        typer.echo(f"wrote: {path}")
    for path in outcome.edited:
        typer.echo(f"yours: {path} (differs from the template: copier update keeps the difference)")
    for path in outcome.mismatched:
        typer.echo(f"warning: {path}: shipforge wrote something else than the template renders")
    typer.echo(f"adopted at {outcome.commit or 'the template default'} of {outcome.template}")
    typer.echo("next: commit, then `shipforge upgrade` (or `copier update --trust --defaults`)")


@app.command()
def upgrade(
    descriptor: Descriptor = Path("shipforge.yaml"),
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Template tag or commit (default: the newest tag); `:current:` keeps the "
            "version and only applies descriptor changes.",
        ),
    ] = None,
    conflict: Annotated[
        str,
        typer.Option("--conflict", help="inline (markers in the file) or rej (.rej files)."),
    ] = "inline",
) -> None:
    """Take template changes and descriptor changes through `copier update`, keeping your edits.

    Needs a committed git repository with .copier-answers.yml (from `copier copy` or
    `shipforge adopt`). Exit 1 when a change overlaps one of your edits: resolve the conflicts
    it names, then commit.
    """
    from generator.lifecycle import upgrade as run

    if conflict not in ("inline", "rej"):
        _fail("--conflict must be inline or rej", (), 2)
    with _handle_errors():
        outcome = run(descriptor.parent, descriptor, to, conflict)
    for path in outcome.changed:
        mark = "conflict" if path in outcome.conflicts else "changed"
        typer.echo(f"{mark}: {path}")
    typer.echo(f"now at {outcome.commit} of {outcome.template}")
    if outcome.conflicts:
        typer.echo(
            f"{len(outcome.conflicts)} conflict(s): your edit and the update touch the same "
            "lines; resolve them (markers or .rej files), then commit",
            err=True,
        )
        raise typer.Exit(1)
    typer.echo("review with `git diff`, then commit (.shipforge/manifest.json included)")


def main() -> None:
    """Entry point: typer's usage errors exit 2; anything unexpected is our bug."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as error:
        if os.environ.get("SHIPFORGE_DEBUG"):
            raise
        typer.echo(
            f"error: shipforge failed unexpectedly ({type(error).__name__}: {error}). "
            "This is a shipforge bug: please report it with the output of the same "
            "command run with SHIPFORGE_DEBUG=1.",
            err=True,
        )
        sys.exit(1)
