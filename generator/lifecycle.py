"""Living with copier: adopt a generated project, and upgrade it to a newer template.

`shipforge adopt` turns a repository made by `shipforge generate` into a copier project (it
writes the `.copier-answers.yml` copier itself would have written), so `copier update` can
carry template changes into it while keeping the user's edits. `shipforge upgrade` is that
`copier update`, with the answers taken from shipforge.yaml as shipforge reads it (copier's own
`--data-file` reads YAML 1.1, where `on` becomes true), every top-level block passed (a block
removed from the descriptor is removed from the answers too), and the manifest refreshed so
`shipforge check` and `shipforge generate` keep telling edits from drift.

copier is imported here only, lazily: the generate path never pays for it.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.errors import Issue, ShipforgeError
from generator.loader import TOP_LEVEL_KEYS
from generator.repofs import RepoReader
from generator.writer import BLOCK_START, MANIFEST, digest, read_manifest, record_rendered

ANSWERS = ".copier-answers.yml"
CONFLICT_MARKER = "<<<<<<< before updating"


class LifecycleError(ShipforgeError):
    """Adopting or upgrading cannot go on (no git, a dirty tree, copier refused)."""


@dataclass
class Outcome:
    """What adopt or upgrade did."""

    template: str = ""
    commit: str = ""
    changed: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    edited: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)


def answers_from_descriptor(descriptor: Path) -> dict[str, Any]:
    """The copier answers of a valid descriptor: every question, absent blocks as null."""
    from generator.loader import read_descriptor, validate

    data, lines = read_descriptor(descriptor)
    validate(data, str(descriptor), lines)
    answers = {key: data.get(key) for key in TOP_LEVEL_KEYS}
    answers["deploy"] = data.get("deploy", "none")
    return answers


def read_answers(root: Path) -> dict[str, Any]:
    """The answers file copier wrote, or an error saying how to get one."""
    import yaml

    path = root / ANSWERS
    text = RepoReader(root).read_text(path) if os.path.lexists(path) else None
    if os.path.lexists(path) and text is None:
        raise LifecycleError(
            "broken answers file",
            (Issue("cannot be read (not a regular text file in the repository)", str(path)),),
        )
    try:
        if text is None:
            raise FileNotFoundError(path)
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise LifecycleError(
            "broken answers file",
            (
                Issue(
                    f"not valid YAML ({getattr(error, 'problem', None) or error})",
                    str(path),
                    line=mark.line + 1 if mark is not None else None,
                    hint="restore it from git, or remove it and `shipforge adopt` again",
                ),
            ),
        ) from None
    except FileNotFoundError:
        raise LifecycleError(
            "not a copier project",
            (
                Issue(
                    "no .copier-answers.yml",
                    str(path),
                    hint="make it one with `shipforge adopt --template <the shipforge template "
                    "repository>`",
                ),
            ),
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("_src_path"), str):
        raise LifecycleError(
            "broken answers file", (Issue("no _src_path in it", str(path), hint="adopt again"),)
        )
    return data


# The one Jinja extension shipforge's own template loads: its code is the installed shipforge's
# (generator.formats), not the template's. Any other extension, task or migration is code the
# template brings, which runs only when the user trusts it.
OWN_EXTENSIONS = ("generator.formats.ShipforgeExtension",)


def same_template(a: str, b: str) -> bool:
    """Whether two template sources name the same template (a local path or a URL)."""
    if a == b:
        return True
    if "://" in a or "://" in b or a.startswith("git@") or b.startswith("git@"):
        return a.rstrip("/").removesuffix(".git") == b.rstrip("/").removesuffix(".git")
    return os.path.realpath(os.path.expanduser(a)) == os.path.realpath(os.path.expanduser(b))


def require_named_template(root: Path, recorded: dict[str, Any], template: str) -> None:
    """The answers file is the repository's: it never picks the template that runs."""
    named = str(recorded["_src_path"])
    if not same_template(named, template):
        raise LifecycleError(
            "the answers file names another template",
            (
                Issue(
                    f"_src_path is {named!r}, not the template you named ({template!r})",
                    str(root / ANSWERS),
                    hint="shipforge runs only the template you name: if you trust "
                    f"{named!r}, name it with --template; else fix _src_path in the file",
                ),
            ),
        )


def template_code(template: str, ref: str | None) -> list[str]:
    """What the template at ref would run: its tasks, migrations and foreign Jinja extensions."""
    from copier._template import Template

    loaded = Template(url=template, ref=ref)
    try:
        with _copier_errors(template, ref):
            config = loaded.config_data
            extensions = loaded.jinja_extensions
            tasks = loaded.tasks
    finally:
        loaded._cleanup()
    code = [f"task: {task.cmd}" for task in tasks]
    code += [f"migration: {m}" for m in config.get("migrations") or []]
    code += [f"Jinja extension: {e}" for e in extensions if e not in OWN_EXTENSIONS]
    return code


def vet_template(
    template: str, ref: str | None, trust: bool, confirm: Callable[[list[str]], bool] | None
) -> None:
    """Refuse a template that runs code, unless trusted (--trust) or confirmed by the user."""
    if ref is not None and ref.startswith("-"):
        # A ref from an answers file reaches `git checkout`: it must not read as an option.
        raise LifecycleError(
            "not a tag or commit", (Issue(f"{ref!r} starts with '-'", template + f"@{ref}"),)
        )
    code = template_code(template, ref)
    if not code or trust or (confirm is not None and confirm(code)):
        return
    raise LifecycleError(
        f"the template {template} at {ref or 'its newest tag'} runs code of its own",
        tuple(Issue(item, template, hint="review it, then rerun with --trust") for item in code),
    )


def require_no_ignored_edits(root: Path) -> None:
    """copier update rewrites or deletes generated files git ignores, and git cannot give the
    old content back: refuse while one of them holds an edit (its hash differs from the one
    the manifest recorded)."""
    manifest = read_manifest(root)
    if not manifest:
        return
    result = subprocess.run(
        ["git", "-C", str(root), "check-ignore", "--stdin", "-z"],
        input="\0".join(manifest),
        capture_output=True,
        text=True,
        check=False,
    )
    reader = RepoReader(root)
    edited = []
    for path in filter(None, result.stdout.split("\0")):
        if not os.path.lexists(root / path):
            continue
        text = reader.read_text(root / path)
        if text is None or digest(text) != manifest.get(path):
            edited.append(path)
    if edited:
        raise LifecycleError(
            "edited files git does not keep",
            tuple(
                Issue(
                    "git-ignored, and edited since shipforge wrote it: the update would lose "
                    "the edit",
                    str(root / path),
                    hint="commit it (git add -f), or move it aside, then upgrade",
                )
                for path in sorted(edited)
            ),
        )


def _git(root: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise LifecycleError(
            f"git {' '.join(args)} failed",
            (Issue(result.stderr.strip() or f"exit code {result.returncode}", str(root)),),
        )
    return result.stdout


def require_clean_git(root: Path) -> None:
    """copier update merges through git: the project must be a git repository, committed."""
    if _git(root, "rev-parse", "--is-inside-work-tree").strip() != "true":
        raise LifecycleError("not a git repository", (Issue("copier update needs git", str(root)),))
    # copier counts untracked files as changes too (the manifest included).
    dirty = _git(root, "status", "--porcelain").strip()
    if dirty:
        raise LifecycleError(
            "uncommitted changes",
            (
                Issue(
                    "commit (or set aside) your changes first: the update is reviewed as a diff",
                    str(root),
                    hint=dirty.splitlines()[0].strip(),
                ),
            ),
        )


@contextmanager
def _copier_errors(template: str = "", ref: str | None = None) -> Iterator[None]:
    """copier's errors about the user's input (a template that is not there, an unknown ref),
    as located messages instead of the catch-all for shipforge's bugs."""
    from copier.errors import CopierError

    where = template + (f"@{ref}" if ref else "")
    try:
        yield
    except CopierError as error:
        raise LifecycleError("copier failed", (Issue(str(error), where),)) from None
    except ValueError as error:
        # copier raises ValueError for "Unknown revision: 'v9'" and "Local template must be a
        # directory.": both name what the user gave.
        hint = "name a tag or commit the template has (git tag -l in it)"
        if "directory" in str(error):
            hint = "name a folder holding copier.yml, or a git URL"
        raise LifecycleError(
            "copier cannot use the template", (Issue(str(error), where, hint=hint),)
        ) from None
    except subprocess.CalledProcessError as error:
        detail = (
            (error.stderr or b"").decode(errors="replace")
            if isinstance(error.stderr, bytes)
            else str(error.stderr or error)
        )
        raise LifecycleError(
            "copier cannot use the template", (Issue(detail.strip() or str(error), where),)
        ) from None


def pristine(template: str, ref: str | None, answers: dict[str, Any], into: Path) -> str:
    """Render the template at ref with the answers into a folder; return the commit rendered.

    Its tasks are skipped: rendering to compare runs none of the template's commands (they ran,
    if trusted, in the project itself). Callers vet the template first (vet_template).
    """
    from copier import run_copy

    with _copier_errors(template, ref):
        run_copy(
            template,
            into,
            data=answers,
            vcs_ref=ref,
            defaults=True,
            unsafe=True,
            skip_tasks=True,
            quiet=True,
            overwrite=True,
        )
    return str(read_answers(into).get("_commit", ""))


def _files(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.relative_to(folder).as_posix() != ANSWERS
    }


def record(root: Path, rendered: dict[str, str]) -> None:
    """Make the manifest say what the template rendered, so edits stay told from drift."""
    record_rendered(root, rendered)  # the manifest and the versions `generate` merges from


def adopt(
    root: Path,
    descriptor: Path,
    template: str,
    ref: str | None,
    force: bool = False,
    trust: bool = False,
    confirm: Callable[[list[str]], bool] | None = None,
) -> Outcome:
    """Make a project generated by `shipforge generate` updatable by `copier update`.

    Writes the answers file that `copier copy` of the template at ref would have written, after
    checking that the template at ref renders what shipforge wrote here (else copier would
    take the difference for the user's edits). In a copier project, only refreshes the manifest.
    """
    outcome = Outcome()
    existing = os.path.lexists(root / ANSWERS)
    if existing:
        recorded = read_answers(root)
        require_named_template(root, recorded, template)
        ref = str(recorded.get("_commit") or "") or ref
    answers = answers_from_descriptor(descriptor)
    vet_template(template, ref, trust, confirm)
    with tempfile.TemporaryDirectory(prefix="shipforge-adopt-") as scratch:
        rendered_dir = Path(scratch) / "pristine"
        outcome.commit = pristine(template, ref, answers, rendered_dir)
        rendered = _files(rendered_dir)
        manifest = read_manifest(root)
        # The repository's files through the safe reader: a link out, a FIFO or a device is
        # not read (and counts as edited: it is not what the template renders).
        reader = RepoReader(root)
        for path, text in rendered.items():
            current = root / path
            written = manifest.get(path)
            if written is not None and written != digest(text) and not text.startswith(BLOCK_START):
                outcome.mismatched.append(path)
            if os.path.lexists(current) and reader.read_text(current) != text:
                outcome.edited.append(path)
        if outcome.mismatched and not existing and not force:
            raise LifecycleError(
                f"the template at {outcome.commit or 'its default version'} does not render "
                "what shipforge wrote here",
                tuple(
                    Issue(
                        "shipforge wrote something else",
                        path,
                        hint="adopt at the template version of the shipforge that generated "
                        "these files (--ref), or pass --force to let copier treat the "
                        "difference as your edits",
                    )
                    for path in outcome.mismatched
                ),
            )
        if not existing:
            answers_text = (rendered_dir / ANSWERS).read_text(encoding="utf-8")
            (root / ANSWERS).write_text(answers_text, encoding="utf-8")
            outcome.changed.append(ANSWERS)
        record(root, rendered)
        outcome.changed.append(MANIFEST)
    outcome.template = template
    return outcome


def upgrade(
    root: Path,
    descriptor: Path,
    to: str | None,
    conflict: str = "inline",
    template: str | None = None,
    trust: bool = False,
    confirm: Callable[[list[str]], bool] | None = None,
) -> Outcome:
    """`copier update` with the descriptor's answers, then the manifest refreshed.

    to: a tag or commit, `:current:` to keep the template version (to apply a descriptor
    change), or None for the template's newest tag.
    """
    from copier import VcsRef, run_update

    recorded = read_answers(root)
    source = str(recorded["_src_path"])
    if template is not None:
        require_named_template(root, recorded, template)
    elif trust:
        # --trust runs the template's tasks without asking; the answers file is the
        # repository's (a pull request can change it), so it never picks what is trusted.
        raise LifecycleError(
            "--trust needs --template",
            (
                Issue(
                    f"_src_path names {source!r}, and --trust would run its code without "
                    "asking; the answers file is the repository's, so it does not choose "
                    "the template you trust",
                    str(root / ANSWERS),
                    hint=f"name the template you trust: --template {source} --trust",
                ),
            ),
        )
    require_clean_git(root)
    require_no_ignored_edits(root)
    answers = answers_from_descriptor(descriptor)
    outcome = Outcome(template=source)
    current = str(recorded.get("_commit") or "") or None
    # Both versions: copier update renders the old one too, and runs the new one's tasks and
    # the migrations between them.
    vet_template(source, current if to == VcsRef.CURRENT.value else to, trust, confirm)
    if to != VcsRef.CURRENT.value:
        vet_template(source, current, trust, confirm)
    with _copier_errors(source, to):
        run_update(
            root,
            data=answers,
            vcs_ref=VcsRef.CURRENT if to == VcsRef.CURRENT.value else to,
            defaults=True,
            unsafe=True,
            overwrite=True,
            quiet=True,
            conflict="rej" if conflict == "rej" else "inline",
        )
    outcome.commit = str(read_answers(root).get("_commit", ""))
    status = _git(root, "status", "--porcelain", "--untracked-files=all")
    reader = RepoReader(root)
    for line in status.splitlines():
        path = line[3:].strip().strip('"')
        if " -> " in path:
            path = path.split(" -> ", 1)[1]
        if path == MANIFEST:
            continue
        outcome.changed.append(path)
        marked = line.startswith(("UU", "AA")) or path.endswith(".rej")
        if marked or CONFLICT_MARKER in (reader.read_text(root / path) or ""):
            outcome.conflicts.append(path)
    with tempfile.TemporaryDirectory(prefix="shipforge-upgrade-") as scratch:
        record(root, _rendered(str(recorded["_src_path"]), outcome.commit, answers, scratch))
    return outcome


def _rendered(template: str, commit: str, answers: dict[str, Any], scratch: str) -> dict[str, str]:
    folder = Path(scratch) / "pristine"
    pristine(template, commit or None, answers, folder)
    return _files(folder)
