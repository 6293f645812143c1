"""The command line: the only module that prints and exits.

Exit codes: 0 ok; 1 invalid descriptor, failed checks, drift or refused overwrite; 2 usage.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TextIO

import typer

from generator import __version__

if TYPE_CHECKING:
    from generator.errors import Issue

app = typer.Typer(
    name="shipforge",
    help="Generate honest deployment files from one descriptor (shipforge.yaml).",
    # --install-completion / --show-completion for bash, zsh, fish and PowerShell.
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain help and usage errors: rendering them with rich costs ~60 ms of imports per run.
    rich_markup_mode=None,
)

Descriptor = Annotated[Path, typer.Argument(help="The descriptor file.", show_default=True)]


class Format(StrEnum):
    """Output formats of validate and generate (a choice: help lists it, completion offers it)."""

    text = "text"
    json = "json"


OutputFormat = Annotated[
    Format, typer.Option("--format", help="text for people, json for scripts.")
]


@dataclass
class _Output:
    """How much to print and whether in colour, set once by the global options."""

    quiet: bool = False
    verbose: bool = False


_output = _Output()


def _colour(stream: TextIO) -> bool:
    # https://no-color.org: any non-empty NO_COLOR turns colour off; so does a pipe or a file.
    return not os.environ.get("NO_COLOR") and stream.isatty()


def _say(text: str, colour: str | None = None, err: bool = False, always: bool = False) -> None:
    """Print one line; informational lines (not `always`) are silenced by --quiet."""
    if _output.quiet and not always:
        return
    stream = sys.stderr if err else sys.stdout
    if colour and _colour(stream):
        head, sep, rest = text.partition(":")
        text = typer.style(head + sep, fg=colour, bold=colour == "red") + rest if sep else text
    typer.echo(text, err=err)


def _issue_json(issue: Issue) -> dict[str, object]:
    return {
        "message": issue.message,
        "file": issue.file,
        "line": issue.line,
        "path": issue.path,
        "hint": issue.hint,
    }


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
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only errors and the final result.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Print more: unchanged files, every note.")
    ] = False,
) -> None:
    """Generate honest deployment files from one descriptor (shipforge.yaml).

    Colour is used on a terminal unless NO_COLOR is set.
    """
    if quiet and verbose:
        _fail("--quiet and --verbose exclude each other", (), 2)
    _output.quiet, _output.verbose = quiet, verbose


def _fail(summary: str, issues: tuple[object, ...], code: int) -> NoReturn:
    _say(f"error: {summary}", "red", err=True, always=True)
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
def validate(
    descriptor: Descriptor = Path("shipforge.yaml"), output_format: OutputFormat = Format.text
) -> None:
    """List every problem of a descriptor, or say it is valid."""
    from generator.errors import ShipforgeError
    from generator.loader import load_with_notes

    if output_format is Format.json:
        try:
            project, notes = load_with_notes(descriptor)
        except ShipforgeError as error:
            _print_json(
                {"file": str(descriptor), "valid": False, "summary": error.summary},
                issues=error.issues,
            )
            raise typer.Exit(error.exit_code) from None
        _print_json(
            {
                "file": str(descriptor),
                "valid": True,
                "services": sorted(s.name for s in project.services),
            },
            notes=[*notes, *_build_warnings(project, descriptor)],
        )
        return
    with _handle_errors():
        project, notes = load_with_notes(descriptor)
    _print_notes(notes)
    count = len(project.services)
    # The descriptor is valid; say too when an image it describes could not build here.
    for warning in _build_warnings(project, descriptor):
        _say(f"warning: {warning}", "yellow", err=True, always=True)
    _say(f"{descriptor}: valid ({count} service{'s' if count != 1 else ''})", always=True)


def _build_warnings(project: Any, descriptor: Path) -> list[Issue]:
    from generator.check.drift import missing_build_files, yarn_mismatches
    from generator.errors import Issue

    root = descriptor.parent
    return [
        *(
            Issue(f"COPY {name} would fail: no {name}", dockerfile, hint=hint)
            for dockerfile, name, hint in missing_build_files(project, root)
        ),
        *(
            Issue(message, source, hint=hint)
            for source, message, hint in yarn_mismatches(project, root)
        ),
    ]


def _print_json(
    body: dict[str, object], issues: tuple[Issue, ...] = (), notes: list[Issue] | None = None
) -> None:
    """One JSON document on stdout, versioned so scripts can rely on its shape."""
    import json

    document = {
        "schema_version": 1,
        **body,
        "issues": [_issue_json(i) for i in issues],
        "notes": [_issue_json(n) for n in notes or ()],
    }
    typer.echo(json.dumps(document, indent=2, ensure_ascii=False))


def _print_notes(notes: list[Issue]) -> None:
    for note in notes:
        _say(f"note: {note}", "yellow", err=True)


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
            "--force",
            help="Take shipforge's version of files you edited (your edits are lost).",
        ),
    ] = False,
    conflict: Annotated[
        str,
        typer.Option(
            "--conflict",
            help="Where overlapping edits go: inline (markers in the file) or rej (shipforge's "
            "lines in the file, yours in FILE.rej).",
        ),
    ] = "inline",
    output_format: OutputFormat = Format.text,
) -> None:
    """Generate every enabled target's files from the descriptor.

    A file you edited is merged with the new version (as `git merge-file` does, the version
    shipforge generated last as the base); overlapping changes are written as conflict markers
    and exit 1. An edit whose generated version did not change is kept as it is.
    """
    from generator.errors import ShipforgeError
    from generator.loader import load_with_notes
    from generator.pipeline import changes as planned
    from generator.writer import apply
    from generator.writer import diff as unified

    if conflict not in ("inline", "rej"):
        _fail("--conflict must be inline or rej", (), 2)
    target_dir = out if out is not None else descriptor.parent
    if output_format is Format.json:
        if diff:
            _fail("--diff prints text: use it without --format json", (), 2)
        try:
            project, notes = load_with_notes(descriptor)
            changes = planned(project, target_dir, force, conflict)
            if not check:
                apply(target_dir, changes)
        except ShipforgeError as error:
            _print_json(
                {"out": str(target_dir), "ok": False, "summary": error.summary}, issues=error.issues
            )
            raise typer.Exit(error.exit_code) from None
        pending = [c for c in changes if c.action not in ("unchanged", "keep", "hold", "refuse")]
        failed = any(c.failing for c in changes) or (check and bool(pending))
        _print_json(
            {
                "out": str(target_dir),
                "ok": not failed,
                "written": not check,
                "files": [
                    {
                        "path": c.path,
                        "action": c.action,
                        "reason": c.reason,
                        "needs_you": c.failing,
                    }
                    for c in changes
                ],
            },
            notes=notes,
        )
        if failed:
            raise typer.Exit(1)
        return
    with _handle_errors():
        project, notes = load_with_notes(descriptor)
        changes = planned(project, target_dir, force, conflict)
        _print_notes(notes)
        pending = [c for c in changes if c.action not in ("unchanged", "keep", "hold", "refuse")]
        if diff:
            for change in pending:
                typer.echo(unified(change), nl=False)
        if check or diff:
            for change in changes:
                if change.action in ("unchanged", "keep", "hold") and not change.failing:
                    continue
                detail = f" ({change.reason})" if change.reason else ""
                typer.echo(f"would {change.action}: {change.path}{detail}", err=True)
            if check and (pending or any(c.failing for c in changes)):
                raise typer.Exit(1)
            if check:
                typer.echo(f"up to date: {len(changes)} files")
            return
        apply(target_dir, changes)
    failing = [c for c in changes if c.failing]
    for change in changes:
        if (change.action != "unchanged" or _output.verbose) and not change.failing:
            detail = f" ({change.reason})" if change.reason else ""
            _say(f"{PAST[change.action]}: {change.path}{detail}", COLOURS.get(change.action))
    same = sum(c.action == "unchanged" for c in changes)
    written = sum(c.action in ("create", "update", "merge", "conflict", "delete") for c in changes)
    _say(f"{written} changed, {same} unchanged in {target_dir}", always=True)
    if failing:
        _say(
            f"error: {len(failing)} file(s) need you; every other file was written",
            "red",
            err=True,
            always=True,
        )
        for change in failing:
            typer.echo(f"  {PAST[change.action]}: {change.path} ({change.reason})", err=True)
        raise typer.Exit(1)


PAST = {
    "create": "created",
    "update": "updated",
    "delete": "deleted",
    "keep": "kept",
    "hold": "kept",
    "merge": "merged",
    "conflict": "conflict",
    "refuse": "not written",
    "unchanged": "unchanged",
}
COLOURS = {
    "create": "green",
    "update": "green",
    "merge": "green",
    "delete": "red",
    "keep": "yellow",
    "hold": "yellow",
    "conflict": "red",
    "refuse": "red",
}

CHECK_FORMATS = ("text", "json", "sarif", "gitlab")


@app.command()
def check(
    targets: Annotated[
        list[Path] | None,
        typer.Argument(
            help="The repository folder to check (default: the current folder); with --files, "
            "the files to lint (what pre-commit passes).",
            show_default=False,
        ),
    ] = None,
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
        bool | None,
        typer.Option(
            "--require-tools/--no-require-tools",
            help="A linter that applies but is not installed fails the check (default: on "
            "when CI is set, else it is a warning).",
            show_default=False,
        ),
    ] = None,
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
    tools_dir: Annotated[
        list[Path] | None,
        typer.Option(
            "--tools-dir",
            help="Also take linters from this folder (and its bin/, .venv-checkov/bin, "
            ".tools/npm/node_modules/.bin); may be repeated. Like $SHIPFORGE_TOOLS_DIR. Never "
            "from the checked repository unless named here.",
        ),
    ] = None,
    files: Annotated[
        bool,
        typer.Option(
            "--files",
            help="Pre-commit mode: the arguments are files of the repository in the current "
            "folder; lint only those (drift still covers every generated file).",
        ),
    ] = False,
) -> None:
    """Validate the descriptor, report drift of generated files, and lint deployment files.

    Exit 1 on any finding. Works without a descriptor too (hand-written files: lint only).
    """
    from generator import lint
    from generator.check import Options, format_gitlab, format_json, format_text, run_check
    from generator.check.results import unknown_skip

    if output_format not in CHECK_FORMATS:
        _fail(f"--format must be one of: {', '.join(CHECK_FORMATS)}", (), 2)
    given = list(targets or [])
    if files:
        path = Path(".")
        selected: tuple[str, ...] | None = tuple(
            os.path.relpath(os.path.abspath(f), os.path.abspath(path)) for f in given
        )
    else:
        if len(given) > 1:
            _fail("check takes one folder (pass --files to lint a list of files)", (), 2)
        path = given[0] if given else Path(".")
        selected = None
    if not path.is_dir():
        _fail(f"{path}: not a folder", (), 2)
    for value in skip or ():
        if why := unknown_skip(value):
            _fail(why, (), 2)
    for folder in tools_dir or ():
        if not folder.is_dir():
            _fail(f"--tools-dir {folder}: not a folder", (), 2)
    lint.use_tools_dirs(tools_dir or ())
    if require_tools is None:
        # Under CI a linter that did not run must never let the check go green.
        require_tools = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")
    if descriptor is None and (path / "shipforge.yaml").is_file():
        descriptor = path / "shipforge.yaml"
    progress = None
    if sys.stderr.isatty():

        def progress(line: str) -> None:
            typer.echo(f"  {line}", err=True)

        typer.echo("shipforge check: running the linters...", err=True)
    options = Options(
        strict=strict,
        require_tools=require_tools,
        skip=tuple(skip or ()),
        exclude=tuple(exclude or ()),
        kubernetes_version=kubernetes_version,
        lint=not no_lint,
        files=selected,
        progress=progress,
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
            help="Path or URL of the schema for the editor modeline (default: a copy of the "
            "installed schema written to .shipforge/shipforge.schema.json).",
        ),
    ] = None,
    explain_: Annotated[
        bool,
        typer.Option(
            "--explain", help="Print each detected value with the file and line it came from."
        ),
    ] = False,
) -> None:
    """Write a commented shipforge.yaml for an existing repository, by detection.

    Never overwrites a descriptor. What it cannot detect it asks; with --yes a port or health
    route the code does not show is written as a commented `# guessed:` line, never a value.
    """
    from generator.detect import apply_answers, detect, explain, questions, render_descriptor
    from generator.detect.base import Question
    from generator.errors import InvalidDescriptor, Issue
    from generator.loader import SCHEMA_PATH, load

    target = path / "shipforge.yaml"
    if target.exists() or target.is_symlink():
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
        defaulted: dict[str, Question] = {}
        for question in questions(detection):
            if question.needs and not answers.get(question.needs, "").strip():
                if yes:
                    defaulted[question.key] = question
                continue
            if yes:
                # Only what the descriptor cannot do without gets a value; the rest stays a
                # commented `# guessed:` line (see generator/detect/descriptor.py).
                if question.required:
                    answers[question.key] = question.default
                defaulted[question.key] = question
                continue
            typer.echo(f"{question.key}: {question.why}")
            answers[question.key] = _ask(question.prompt, question.default, question.key)
        apply_answers(detection, answers)
        # The schema's $id names it but is not served anywhere: editors need a file they can read.
        # Editors resolve a relative modeline against the descriptor's folder; an absolute path
        # into site-packages breaks on the next machine, and the schema's $id is not served.
        text = render_descriptor(detection, schema or SCHEMA_COPY, defaulted)
        # Validated before it lands: staged exclusively beside the target (never through a
        # link), loaded, then linked into place only if no descriptor appeared meanwhile.
        from generator.writer import staged_file

        with staged_file(target, text) as temporary:
            project = load(temporary)
        bookkeeping = path / ".shipforge"
        if schema is None and not bookkeeping.is_symlink():
            bookkeeping.mkdir(exist_ok=True)
            schema_text = SCHEMA_PATH.read_text(encoding="utf-8")
            with staged_file(path / SCHEMA_COPY, schema_text, replace_existing=True):
                pass
    typer.echo(f"wrote {target}: {len(project.services)} services")
    for service in detection.services:
        kind = f"port {service.port}" if service.port else "worker"
        typer.echo(f"  {service.name}: {service.runtime}, {kind}: {service.command}")
    for key, question in defaulted.items():
        what = "guessed" if question.required else "left as a # guessed: line"
        typer.echo(f"  {key}: {what} ({question.why}): check it in the file")
    if explain_:
        typer.echo(explain(detection, defaulted), nl=False)
    typer.echo("next: review the comments, then `shipforge generate`")


SCHEMA_COPY = ".shipforge/shipforge.schema.json"


def _ask(prompt: str, default: str, key: str) -> str:
    """One typer prompt; ports are re-asked until they are a number (or empty for a worker)."""
    while True:
        try:
            answer = str(typer.prompt(prompt, default=default, show_default=bool(default)))
        except typer.Abort:
            # End of input (no terminal, or a pipe that ran dry) or Ctrl-C at the prompt.
            _fail(
                f"no answer for {key}: init asks what it cannot detect",
                ("run it in a terminal, or pass --yes to take the documented defaults",),
                2,
            )
        if not key.endswith(".port") or not answer.strip():
            return answer
        if answer.strip().isdigit() and 0 < int(answer) < 65536:
            return answer.strip()
        typer.echo("a port is a number from 1 to 65535", err=True)


TRUST = typer.Option(
    "--trust",
    help="Let the template run its own code (tasks, migrations, Jinja extensions other than "
    "shipforge's). Without it such a template is shown and confirmed on a terminal, or refused.",
)


def _confirm_code() -> Callable[[list[str]], bool] | None:
    """On a terminal: show what a template would run and ask. Elsewhere: None (refused)."""
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        return None

    def confirm(code: list[str]) -> bool:
        typer.echo("the template runs code of its own:", err=True)
        for item in code:
            typer.echo(f"  {item}", err=True)
        return bool(typer.confirm("run it?", default=False, err=True))

    return confirm


@app.command()
def adopt(
    template: Annotated[
        str,
        typer.Option(
            "--template",
            help="The shipforge template repository (a git URL or path) `copier update` takes "
            "new versions from. In a project with .copier-answers.yml it must be the template "
            "that file names: a file in the repository never picks the template that runs.",
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
    trust: Annotated[bool, TRUST] = False,
) -> None:
    """Make a project made by `shipforge generate` updatable with `copier update`.

    Writes the .copier-answers.yml copier would have written, and records what the template
    renders in .shipforge/manifest.json. Commit both.
    """
    from generator.lifecycle import adopt as run

    with _handle_errors():
        outcome = run(descriptor.parent, descriptor, template, ref, force, trust, _confirm_code())
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
    template: Annotated[
        str | None,
        typer.Option(
            "--template",
            help="The template you expect (a git URL or path): refused when .copier-answers.yml "
            "names another one.",
        ),
    ] = None,
    trust: Annotated[bool, TRUST] = False,
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
        outcome = run(descriptor.parent, descriptor, to, conflict, template, trust, _confirm_code())
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


class AuditFormat(StrEnum):
    """Formats of an audit report."""

    text = "text"
    markdown = "markdown"
    json = "json"
    sarif = "sarif"


@app.command()
def audit(
    path: Annotated[
        Path, typer.Argument(help="The repository folder to audit.", show_default=True)
    ] = Path("."),
    output_format: Annotated[
        AuditFormat, typer.Option("--format", help="sarif is 2.1.0, for code scanning.")
    ] = AuditFormat.text,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the report there; a summary still prints."),
    ] = None,
    history: Annotated[
        bool, typer.Option("--history", help="Search the git history for committed secrets too.")
    ] = False,
) -> None:
    """Report, with evidence, how ready a repository is for production.

    Any repository, generated by shipforge or not: real deploys, rollback, migrations,
    secrets, images, runtime, observability, environments and tests. Offline; never prints a
    secret value. Exit 1 when a check fails.
    """
    from generator.audit import run_audit
    from generator.audit.report import FORMATS, format_text

    with _handle_errors():
        report = run_audit(path, history=history)
        rendered = FORMATS[str(output_format)](report)
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(rendered, encoding="utf-8")
    if output is None:
        typer.echo(rendered, nl=False)
    else:
        summary = format_text(report).splitlines()[0]
        typer.echo(f"{summary}\nwrote {output}")
    if not report.ok:
        raise typer.Exit(1)


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
