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

import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.errors import Issue, ShipforgeError
from generator.writer import BLOCK_START, MANIFEST, digest, read_manifest, write_manifest

ANSWERS = ".copier-answers.yml"
# copier.yml's questions: the descriptor's top-level keys.
QUESTIONS = (
    "version",
    "project",
    "services",
    "datastores",
    "environments",
    "targets",
    "deploy",
    "monitoring",
)
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
    answers = {key: data.get(key) for key in QUESTIONS}
    answers["deploy"] = data.get("deploy", "none")
    return answers


def read_answers(root: Path) -> dict[str, Any]:
    """The answers file copier wrote, or an error saying how to get one."""
    import yaml

    path = root / ANSWERS
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
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
    if not isinstance(data, dict) or not data.get("_src_path"):
        raise LifecycleError(
            "broken answers file", (Issue("no _src_path in it", str(path), hint="adopt again"),)
        )
    return data


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
def _copier_errors() -> Iterator[None]:
    from copier.errors import CopierError

    try:
        yield
    except CopierError as error:
        raise LifecycleError("copier failed", (Issue(str(error)),)) from None


def pristine(template: str, ref: str | None, answers: dict[str, Any], into: Path) -> str:
    """Render the template at ref with the answers into a folder; return the commit rendered."""
    from copier import run_copy

    with _copier_errors():
        run_copy(
            template,
            into,
            data=answers,
            vcs_ref=ref,
            defaults=True,
            unsafe=True,
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
    write_manifest(
        root,
        {path: digest(text) for path, text in rendered.items() if not text.startswith(BLOCK_START)},
    )


def adopt(
    root: Path, descriptor: Path, template: str, ref: str | None, force: bool = False
) -> Outcome:
    """Make a project generated by `shipforge generate` updatable by `copier update`.

    Writes the answers file that `copier copy` of the template at ref would have written, after
    checking that the template at ref renders what shipforge wrote here (else copier would
    take the difference for the user's edits). In a copier project, only refreshes the manifest.
    """
    outcome = Outcome()
    existing = (root / ANSWERS).is_file()
    if existing:
        recorded = read_answers(root)
        template = str(recorded["_src_path"])
        ref = str(recorded.get("_commit") or "") or None
    answers = answers_from_descriptor(descriptor)
    with tempfile.TemporaryDirectory(prefix="shipforge-adopt-") as scratch:
        rendered_dir = Path(scratch) / "pristine"
        outcome.commit = pristine(template, ref, answers, rendered_dir)
        rendered = _files(rendered_dir)
        manifest = read_manifest(root)
        for path, text in rendered.items():
            current = root / path
            written = manifest.get(path)
            if written is not None and written != digest(text) and not text.startswith(BLOCK_START):
                outcome.mismatched.append(path)
            if current.is_file() and current.read_text(encoding="utf-8") != text:
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


def upgrade(root: Path, descriptor: Path, to: str | None, conflict: str = "inline") -> Outcome:
    """`copier update` with the descriptor's answers, then the manifest refreshed.

    to: a tag or commit, `:current:` to keep the template version (to apply a descriptor
    change), or None for the template's newest tag.
    """
    from copier import VcsRef, run_update

    recorded = read_answers(root)
    require_clean_git(root)
    answers = answers_from_descriptor(descriptor)
    outcome = Outcome(template=str(recorded["_src_path"]))
    with _copier_errors():
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
    for line in status.splitlines():
        path = line[3:].strip().strip('"')
        if " -> " in path:
            path = path.split(" -> ", 1)[1]
        if path == MANIFEST:
            continue
        outcome.changed.append(path)
        target = root / path
        if path.endswith(".rej") or line.startswith(("UU", "AA")):
            outcome.conflicts.append(path)
        elif target.is_file():
            try:
                if CONFLICT_MARKER in target.read_text(encoding="utf-8"):
                    outcome.conflicts.append(path)
            except UnicodeDecodeError:
                pass
    with tempfile.TemporaryDirectory(prefix="shipforge-upgrade-") as scratch:
        record(root, _rendered(str(recorded["_src_path"]), outcome.commit, answers, scratch))
    return outcome


def _rendered(template: str, commit: str, answers: dict[str, Any], scratch: str) -> dict[str, str]:
    folder = Path(scratch) / "pristine"
    pristine(template, commit or None, answers, folder)
    return _files(folder)
