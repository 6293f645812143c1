"""Write: decide every file's fate first, then write atomically; never overwrite a user's edit.

`.shipforge/manifest.json` records the hash of each file as shipforge last wrote it. A file
whose current hash differs from it (or that exists without being recorded) is the user's:
it is only replaced with --force. Nothing is written when any file is refused.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from generator.errors import Issue, RefusedOverwrite
from generator.render import Rendered

MANIFEST = ".shipforge/manifest.json"
BLOCK_START = "# >>> shipforge managed block"
BLOCK_END = "# <<< shipforge managed block <<<"


@dataclass(frozen=True)
class Change:
    """What writing does to one path. `action` is create, update, unchanged, delete or refuse."""

    path: str
    action: str
    old: str | None
    new: str | None
    executable: bool = False
    reason: str = ""


def digest(text: str) -> str:
    """The content hash recorded in the manifest."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_manifest(out: Path) -> dict[str, str]:
    """Hashes of the files shipforge last wrote under out (empty when there is no manifest)."""
    try:
        data = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
        files = data["files"]
        return {str(k): str(v) for k, v in files.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _read(path: Path) -> str | None:
    try:
        # newline="": a carriage return in a value must read back exactly as it was written.
        with path.open(encoding="utf-8", newline="") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        return ""  # unreadable counts as the user's content: it is refused, not clobbered


def merge_block(existing: str | None, block: str) -> str:
    """Put shipforge's marked block into a file the user owns, replacing an older block."""
    if not existing:
        return block
    start, end = existing.find(BLOCK_START), existing.find(BLOCK_END)
    if start != -1 and end > start:
        tail = existing[end + len(BLOCK_END) :].removeprefix("\n")
        return existing[:start] + block + tail
    return existing + ("" if existing.endswith("\n") else "\n") + "\n" + block


def plan_changes(out: Path, files: list[Rendered], force: bool) -> list[Change]:
    """Decide, for every rendered file and every stale recorded file, what writing does."""
    manifest = read_manifest(out)
    changes: list[Change] = []
    planned = set()
    for file in files:
        planned.add(file.path)
        old = _read(out / file.path)
        if file.content.startswith(BLOCK_START):
            changes.append(_change(file.path, old, merge_block(old, file.content), file.executable))
            continue
        new = file.content
        recorded = manifest.get(file.path)
        if old is None or old == new or recorded == digest(old) or force:
            changes.append(_change(file.path, old, new, file.executable))
        else:
            reason = (
                "edited since shipforge wrote it"
                if recorded
                else "exists and was not written by shipforge"
            )
            changes.append(Change(file.path, "refuse", old, new, file.executable, reason))
    for path, recorded in sorted(manifest.items()):
        if path in planned:
            continue
        old = _read(out / path)
        if old is None:
            continue
        if digest(old) == recorded or force:
            changes.append(Change(path, "delete", old, None))
        else:
            changes.append(
                Change(
                    path,
                    "keep",
                    old,
                    None,
                    reason=(
                        "no longer generated, but edited since shipforge wrote it: left in place"
                    ),
                )
            )
    return changes


def _change(path: str, old: str | None, new: str, executable: bool) -> Change:
    action = "create" if old is None else ("unchanged" if old == new else "update")
    return Change(path, action, old, new, executable)


def refusals(changes: list[Change]) -> list[Issue]:
    """The files that writing would destroy edits in, each named with what to do."""
    return [
        Issue(
            f"refusing to overwrite: {c.reason}",
            c.path,
            hint="review with --diff, then keep your version or rerun with --force",
        )
        for c in changes
        if c.action == "refuse"
    ]


def diff(change: Change) -> str:
    """A unified diff of one change."""
    return "".join(
        difflib.unified_diff(
            (change.old or "").splitlines(keepends=True),
            (change.new or "").splitlines(keepends=True),
            fromfile=f"a/{change.path}" if change.old is not None else "/dev/null",
            tofile=f"b/{change.path}" if change.new is not None else "/dev/null",
        )
    )


def apply(out: Path, changes: list[Change]) -> None:
    """Write every change atomically per file, then record the new hashes."""
    problems = refusals(changes)
    if problems:
        raise RefusedOverwrite(
            "edited files would be overwritten; nothing was written", tuple(problems)
        )
    manifest = read_manifest(out)
    for change in changes:
        target = out / change.path
        if change.action in ("create", "update"):
            assert change.new is not None
            _atomic_write(target, change.new, change.executable)
        elif change.action == "delete":
            target.unlink()
            manifest.pop(change.path, None)
        if change.new is not None and not change.new.startswith(BLOCK_START):
            manifest[change.path] = digest(change.new)
    write_manifest(out, manifest)


def write_manifest(out: Path, hashes: dict[str, str]) -> None:
    """Record the hashes of the files shipforge wrote (rewriting only when they changed)."""
    text = json.dumps({"version": 1, "files": dict(sorted(hashes.items()))}, indent=2) + "\n"
    if _read(out / MANIFEST) != text:
        _atomic_write(out / MANIFEST, text, executable=False)


def _atomic_write(target: Path, content: str, executable: bool) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(content)
        os.chmod(temporary, 0o755 if executable else 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
