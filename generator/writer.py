"""Write: decide every file's fate first, then write all or nothing, inside the output folder only.

`.shipforge/manifest.json` records, for each generated file, the hash of the version shipforge
generated last; `.shipforge/base/<hex>` keeps that version (named by its hash, so no tool that
picks files by name mistakes it for a Dockerfile or a workflow). A file the user edited is merged
with the new generated version the way `git merge-file` does (the last generated version is the
base); overlapping changes are written as conflict markers. A file that exists without being
recorded (a repository's own Dockerfile) is merged the same way, with an empty base.

The manifest is committed with the repository, so it is untrusted input: it must match
schemas/manifest.schema.json, and every path the writer touches is walked one component at a
time with O_NOFOLLOW, below the output folder, never through a symbolic link. Writing stages
every file as an exclusively created temporary file beside its target, then renames them all
into place; any failure puts back what was there and leaves the tree as it was.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from generator.errors import Issue, ShipforgeError
from generator.render import Rendered

MANIFEST = ".shipforge/manifest.json"
BASES = ".shipforge/base"
MANIFEST_SCHEMA = Path(__file__).resolve().parent / "_data" / "schemas" / "manifest.schema.json"
BLOCK_START = "# >>> shipforge managed block"
BLOCK_END = "# <<< shipforge managed block <<<"
# The labels of a conflict: constant, so the same inputs give the same bytes.
OURS, BASE, THEIRS = "yours", "last generated", "shipforge"
CONFLICT_START = re.compile(rf"^<<<<<<< {OURS}$", re.MULTILINE)
HASH = re.compile(r"(?:sha256:)?([0-9a-f]{64})")
MAX_MANIFEST = 64 * 1024 * 1024
_BAD_PART = re.compile(r"[\\\x00-\x1f\x7f]")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
# O_NONBLOCK: opening a FIFO planted where a file goes must not hang.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_RECOVER = (
    "restore it from git (`git checkout -- .shipforge/manifest.json`), or remove .shipforge/ "
    "(shipforge then merges every existing file as yours), or run `shipforge adopt`"
)


class ManifestError(ShipforgeError):
    """.shipforge/manifest.json is unreadable or breaks its schema: nothing is decided from it."""


class WriteError(ShipforgeError):
    """A path is unsafe or a write failed; the tree is left as it was."""


@dataclass(frozen=True)
class Change:
    """What writing does to one path.

    action: create, update, unchanged, delete; merge (your edit merged with the new version),
    conflict (merged, overlapping lines as conflict markers), hold (your edit kept: the
    generated version did not change), keep (no longer generated, edited: left in place),
    refuse (cannot be merged, e.g. not text: left as it is), record (only recorded: adopt, upgrade).
    `new` is what the file will hold, `generated` what shipforge generated for it (recorded).
    """

    path: str
    action: str
    old: str | None
    new: str | None
    executable: bool = False
    reason: str = ""
    generated: str | None = None
    conflicts: int = 0
    reject: str | None = None  # with --conflict rej: your side of the conflicts, for PATH.rej
    recorded: str | None = None  # the manifest's hash of the path when the plan was made

    @property
    def failing(self) -> bool:
        """Whether this change makes `generate` exit 1 (after writing everything else)."""
        return self.action == "refuse" or self.conflicts > 0


def digest(text: str) -> str:
    """The content hash recorded in the manifest (an OCI-style digest, not a bare hex string)."""
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


# --- paths ---------------------------------------------------------------------------------


def safe_relative(path: str) -> bool:
    """Whether path is a relative POSIX path below the folder, outside .git and .shipforge."""
    if not path or len(path) > 4096 or path.startswith("/"):
        return False
    parts = path.split("/")
    return all(
        part not in ("", ".", "..") and not _BAD_PART.search(part) for part in parts
    ) and not any(part in (".git", ".shipforge") for part in parts)


def _unsafe(path: str, message: str, hint: str = "") -> WriteError:
    return WriteError(
        "refusing to write: a path is unsafe; nothing was written",
        (Issue(message, path, hint=hint or "remove or rename it, then run shipforge again"),),
    )


class Tree:
    """Directory handles below one output folder, opened one component at a time.

    Every component is opened with O_NOFOLLOW relative to its parent's handle, so no symbolic
    link is crossed even if one is planted while shipforge runs.
    """

    def __init__(self, out: Path) -> None:
        self.out = out
        self.created: list[str] = []  # folders made below out by this run, removed on failure
        self.created_out: list[Path] = []  # out itself and its parents, when this run made them
        self._fds: dict[str, int] = {}
        try:
            self._fds[""] = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            pass
        except NotADirectoryError:
            raise _unsafe(
                str(out),
                "is not a folder (it, or a folder above it, is a file): --out must name a folder",
            ) from None

    @property
    def exists(self) -> bool:
        return "" in self._fds

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def folder(self, rel: str, create: bool = False) -> int | None:
        """The handle of folder rel ("" is the output folder); None if it does not exist."""
        if rel in self._fds:
            return self._fds[rel]
        if rel == "":
            if not create:
                return None
            missing = []
            here = self.out
            while not here.exists():
                missing.append(here)
                here = here.parent
            for folder in reversed(missing):
                folder.mkdir()
                self.created_out.append(folder)
            self._fds[""] = os.open(self.out, os.O_RDONLY | os.O_DIRECTORY)
            return self._fds[""]
        parent_rel, _, name = rel.rpartition("/")
        parent = self.folder(parent_rel, create)
        if parent is None:
            return None
        try:
            info = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            if not create:
                return None
            os.mkdir(name, 0o755, dir_fd=parent)
            self.created.append(rel)
            info = os.stat(name, dir_fd=parent, follow_symlinks=False)
        if stat.S_ISLNK(info.st_mode):
            raise _unsafe(
                rel,
                "is a symbolic link: shipforge never writes through a link",
                "replace the link with a real folder, or generate with --out elsewhere",
            )
        if not stat.S_ISDIR(info.st_mode):
            raise _unsafe(rel, "is not a folder, but generated files go inside it")
        try:
            self._fds[rel] = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except OSError as error:
            raise _unsafe(rel, f"cannot be opened: {error.strerror}", _os_hint(error)) from None
        return self._fds[rel]

    def read(self, rel: str) -> bytes | None:
        """The bytes of regular file rel, or None when it does not exist.

        A link, a folder or a special file where a file goes is refused with its path.
        """
        parent_rel, _, name = rel.rpartition("/")
        parent = self.folder(parent_rel)
        if parent is None:
            return None
        try:
            info = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(info.st_mode):
            raise _unsafe(
                rel,
                f"is a symbolic link (to {os.readlink(name, dir_fd=parent)}): shipforge never "
                "writes through or replaces a link",
            )
        if stat.S_ISDIR(info.st_mode):
            raise _unsafe(rel, "is a folder where shipforge writes a file")
        if not stat.S_ISREG(info.st_mode):
            raise _unsafe(rel, "is not a regular file (a FIFO, socket or device)")
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=parent)
            with os.fdopen(fd, "rb") as handle:
                if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                    raise _unsafe(rel, "is not a regular file")
                return handle.read()
        except OSError as error:  # unreadable: named, never taken for an absent file
            raise _unsafe(rel, f"cannot be read: {error.strerror}", _os_hint(error)) from None

    def mode(self, rel: str) -> int:
        parent_rel, _, name = rel.rpartition("/")
        parent = self.folder(parent_rel)
        assert parent is not None
        return stat.S_IMODE(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)

    def stage(self, rel: str, data: bytes, mode: int) -> str:
        """Write data to a new temporary file beside rel; return the temporary file's path."""
        parent_rel, _, name = rel.rpartition("/")
        parent = self.folder(parent_rel, create=True)
        assert parent is not None
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        for _ in range(100):
            temporary = f".{name[:200]}.{os.urandom(4).hex()}.shipforge-tmp"
            try:
                fd = os.open(temporary, flags, 0o600, dir_fd=parent)
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover - a hundred collisions of 32 random bits
            raise FileExistsError(errno.EEXIST, "no free temporary name", rel)
        staged = f"{parent_rel}/{temporary}" if parent_rel else temporary
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fchmod(handle.fileno(), mode)
        except BaseException:
            self.remove(staged)
            raise
        return staged

    def rename(self, staged: str, rel: str) -> None:
        parent_rel, _, name = rel.rpartition("/")
        parent = self.folder(parent_rel)
        assert parent is not None
        os.replace(staged.rpartition("/")[2], name, src_dir_fd=parent, dst_dir_fd=parent)

    def remove(self, rel: str) -> None:
        parent_rel, _, name = rel.rpartition("/")
        parent = self.folder(parent_rel)
        if parent is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=parent)

    def undo_folders(self) -> None:
        """Remove the folders this run created (deepest first), if they are still empty."""
        for rel in reversed(self.created):
            with contextlib.suppress(OSError):
                fd = self._fds.pop(rel, None)
                if fd is not None:
                    os.close(fd)
                parent_rel, _, name = rel.rpartition("/")
                parent = self.folder(parent_rel)
                if parent is not None:
                    os.rmdir(name, dir_fd=parent)
        if self.created_out and "" in self._fds:
            os.close(self._fds.pop(""))
        for folder in reversed(self.created_out):
            with contextlib.suppress(OSError):
                folder.rmdir()


@contextlib.contextmanager
def _tree(out: Path) -> Iterator[Tree]:
    tree = Tree(out)
    try:
        yield tree
    finally:
        tree.close()


def _text(tree: Tree, rel: str) -> tuple[str | None, bytes | None]:
    """(text, raw bytes) of a file; text is None when it is absent or not UTF-8."""
    raw = tree.read(rel)
    if raw is None:
        return None, None
    try:
        return raw.decode("utf-8"), raw
    except UnicodeDecodeError:
        return None, raw


def read_inside(root: Path, rel: str) -> bytes | None:
    """A file below root without crossing a link (OSError for links and special files).

    For readers outside the writer (check): None when it does not exist.
    """
    if not safe_relative(rel):
        raise OSError(errno.EINVAL, "path leaves the folder", rel)
    try:
        with _tree(root) as tree:
            return tree.read(rel)
    except WriteError as error:
        raise OSError(errno.ELOOP, error.issues[0].message, rel) from None


# --- the manifest --------------------------------------------------------------------------


def _manifest_issue(message: str, line: int | None = None, path: str = "") -> ManifestError:
    return ManifestError(
        "the manifest is invalid: nothing was written or deleted",
        (Issue(message, MANIFEST, line, path, hint=_RECOVER),),
    )


def _load_manifest(tree: Tree) -> dict[str, str]:
    try:
        raw = tree.read(MANIFEST)
    except WriteError as error:
        raise _manifest_issue(f"cannot be read safely: {error.issues[0]}") from None
    if raw is None:
        return {}
    if len(raw) > MAX_MANIFEST:
        raise _manifest_issue(f"is larger than {MAX_MANIFEST // 2**20} MB")
    try:
        text = raw.decode("utf-8")
        data = json.loads(text)
    except UnicodeDecodeError as error:
        raise _manifest_issue(f"is not UTF-8 text (byte {error.start})") from None
    except ValueError as error:
        line = getattr(error, "lineno", None)
        raise _manifest_issue(f"is not JSON: {getattr(error, 'msg', error)}", line) from None
    from generator.loader import schema_valid

    found = []
    if not schema_valid(MANIFEST_SCHEMA, data):
        from jsonschema import Draft202012Validator

        schema = json.loads(MANIFEST_SCHEMA.read_text(encoding="utf-8"))
        found = sorted(
            Draft202012Validator(schema).iter_errors(data), key=lambda e: list(map(str, e.path))
        )
    issues: list[Issue] = []
    for problem in found[:20]:
        where = ".".join(map(str, problem.absolute_path))
        key = problem.instance if "propertyNames" in problem.schema_path else None
        if isinstance(key, str):
            issues.append(Issue(_outside(key), MANIFEST, _line_of(text, key), "files"))
        else:
            issues.append(Issue(problem.message, MANIFEST, _line_of(text, where), where))
    if not found:
        # The schema's `$` would accept a path ending in a line break; the code is the authority.
        for key in [k for k in data["files"] if not safe_relative(k)][:20]:
            issues.append(Issue(_outside(key), MANIFEST, _line_of(text, key), "files"))
    if issues:
        last = issues[-1]
        issues[-1] = Issue(last.message, last.file, last.line, last.path, hint=_RECOVER)
        raise ManifestError(
            "the manifest is invalid: nothing was written or deleted", tuple(issues)
        )
    files: dict[str, str] = data["files"]
    return {path: "sha256:" + HASH.fullmatch(value)[1] for path, value in files.items()}  # type: ignore[index]


def _outside(key: str) -> str:
    return f"path {json.dumps(key)} is not a relative path below the output folder"


def _line_of(text: str, key: Any) -> int | None:
    if not isinstance(key, str) or not key:
        return None
    needle = json.dumps(key)
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return number
    return None


def read_manifest(out: Path) -> dict[str, str]:
    """Hashes of the files shipforge last generated under out ({} when there is no manifest).

    The one manifest loader (generate, check, adopt, upgrade): an invalid manifest raises
    ManifestError naming the problem and how to recover; it never reads as empty.
    """
    with _tree(out) as tree:
        return _load_manifest(tree)


def manifest_text(hashes: dict[str, str]) -> str:
    return json.dumps({"version": 2, "files": dict(sorted(hashes.items()))}, indent=2) + "\n"


def _base(tree: Tree, recorded: str) -> str | None:
    """The last generated version recorded under recorded's hash, if kept and intact."""
    try:
        text, _ = _text(tree, f"{BASES}/{recorded.removeprefix('sha256:')}")
    except WriteError:
        return None
    return text if text is not None and digest(text) == recorded else None


# --- merging -------------------------------------------------------------------------------


def merge_block(existing: str | None, block: str) -> str:
    """Put shipforge's marked block into a file the user owns, replacing an older block."""
    if not existing:
        return block
    # The last start marker with an end after it: a stray or reversed marker of the user's is
    # left alone instead of making the block grow on every run.
    start = existing.rfind(BLOCK_START)
    end = existing.find(BLOCK_END, start) if start != -1 else -1
    if start != -1 and end != -1:
        tail = existing[end + len(BLOCK_END) :].removeprefix("\n")
        return existing[:start] + block + tail
    return existing + ("" if existing.endswith("\n") else "\n") + "\n" + block


def merge3(ours: str, base: str, theirs: str) -> tuple[str, int] | None:
    """`git merge-file -p`: (merged text, number of conflicts), or None when git cannot merge.

    git runs in a scratch folder with no configuration read (a hostile repository's
    .git/config never applies) and the default conflict style, so output is reproducible.
    """
    git = shutil.which("git")
    if git is None:
        return None
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    with tempfile.TemporaryDirectory(prefix="shipforge-merge-") as scratch:
        env.update(
            GIT_CONFIG_NOSYSTEM="1",
            GIT_CONFIG_GLOBAL=os.devnull,
            GIT_CEILING_DIRECTORIES=scratch,
            LC_ALL="C",
        )
        names = []
        for label, text in (("ours", ours), ("base", base), ("theirs", theirs)):
            Path(scratch, label).write_bytes(text.encode("utf-8", "surrogateescape"))
            names.append(label)
        labels = ["-L", OURS, "-L", BASE, "-L", THEIRS]
        result = subprocess.run(
            [git, "merge-file", "-p", *labels, *names],
            cwd=scratch,
            env=env,
            capture_output=True,
            check=False,
        )
    if result.returncode < 0 or result.returncode > 127 or result.stderr.strip():
        return None
    try:
        return result.stdout.decode("utf-8"), result.returncode
    except UnicodeDecodeError:
        return None


def _merge(
    path: str, old: str, base: str, new: str, executable: bool, why: str, style: str
) -> Change:
    merged = merge3(old, base, new)
    if merged is None:
        return Change(
            path,
            "refuse",
            old,
            None,
            executable,
            f"{why}, and git could not merge it (is git installed?): left as it is; "
            "take shipforge's version with --force",
        )
    text, conflicts = merged
    if conflicts and style == "rej":
        text, reject = _split_conflicts(path, text)
        reason = (
            f"{why}: {conflicts} conflict(s): shipforge's lines are in the file, yours in "
            f"{path}.rej; put back what you need, delete {path}.rej, run shipforge generate again"
        )
        return Change(path, "conflict", old, text, executable, reason, new, conflicts, reject)
    if conflicts:
        reason = (
            f"{why}: {conflicts} conflict(s) marked <<<<<<< {OURS} / >>>>>>> {THEIRS}; "
            "resolve them, then run shipforge generate again"
        )
        return Change(path, "conflict", old, text, executable, reason, new, conflicts)
    return Change(path, "merge", old, text, executable, f"{why}: merged", new)


def _split_conflicts(path: str, merged: str) -> tuple[str, str]:
    """(the file with shipforge's side of every conflict, a .rej file with your side)."""
    kept: list[str] = []
    rejected = [
        f"# shipforge generate --conflict rej: your lines of {path} that overlap shipforge's\n",
        "# changes. The file holds shipforge's lines there: put back what you need, then delete\n",
        "# this file (generate exits 1 while it exists).\n",
    ]
    side = ""
    for line in merged.splitlines(keepends=True):
        if side == "" and line == f"<<<<<<< {OURS}\n":
            side = "ours"
            rejected.append(f"@@ {path}:{len(kept) + 1} yours:\n")
        elif side == "ours" and line == "=======\n":
            side = "theirs"
        elif side == "theirs" and line.rstrip("\n") == f">>>>>>> {THEIRS}":
            side = ""
        elif side == "ours":
            rejected.append(line if line.endswith("\n") else line + "\n")
        else:
            kept.append(line)
    return "".join(kept), "".join(rejected)


# --- planning ------------------------------------------------------------------------------


def plan_changes(
    out: Path, files: list[Rendered], force: bool, conflict: str = "inline"
) -> list[Change]:
    """Decide, for every rendered file and every stale recorded file, what writing does.

    Reads only. Raises ManifestError for an invalid manifest and WriteError for a path that
    cannot be written safely (every such path is listed).
    """
    with _tree(out) as tree:
        manifest = _load_manifest(tree)
        changes: list[Change] = []
        problems: list[Issue] = []
        planned = set()
        for file in files:
            planned.add(file.path)
            try:
                change = _plan_one(tree, file, manifest.get(file.path), force, conflict)
                changes.append(replace(change, recorded=manifest.get(file.path)))
            except WriteError as error:
                problems.extend(error.issues)
        for path, recorded in sorted(manifest.items()):
            if path in planned:
                continue
            try:
                text, raw = _text(tree, path)
            except WriteError as error:
                reason = f"{error.issues[0].message}: left alone"
                changes.append(Change(path, "keep", None, None, reason=reason, recorded=recorded))
                continue
            if raw is None:
                continue
            if text is not None and digest(text) == recorded:
                changes.append(Change(path, "delete", text, None, recorded=recorded))
            else:
                reason = "no longer generated, but edited since shipforge wrote it: left in place"
                changes.append(Change(path, "keep", text, None, reason=reason, recorded=recorded))
    problems = list(dict.fromkeys(problems))  # a linked folder is named once, not per file
    if problems:
        raise WriteError(
            "refusing to write: some paths are unsafe; nothing was written", tuple(problems)
        )
    return changes


def _plan_one(
    tree: Tree, file: Rendered, recorded: str | None, force: bool, style: str = "inline"
) -> Change:
    path, new, executable = file.path, file.content, file.executable
    if not safe_relative(path):
        raise _unsafe(path, "a generated path leaves the output folder (a shipforge bug)")
    try:
        new.encode("utf-8")
    except UnicodeEncodeError as error:
        raise _unsafe(
            path, f"cannot be written as UTF-8: {error.reason}", "fix the value"
        ) from None
    old, raw = _text(tree, path)
    if new.startswith(BLOCK_START):
        if raw is not None and old is None:
            return Change(path, "refuse", None, None, executable, "not UTF-8 text: left as it is")
        return _change(path, old, merge_block(old, new), executable, None)
    if raw is None:
        return _change(path, None, new, executable, new)
    if old is None:
        if force:
            return Change(path, "update", "", new, executable, "", new)
        return Change(
            path, "refuse", None, None, executable,
            "not UTF-8 text, so it cannot be merged: left as it is; --force replaces it",
        )  # fmt: skip
    if force:
        unresolved = ""
    elif CONFLICT_START.search(old):
        unresolved = "unresolved conflict markers from an earlier merge: resolve them"
    elif tree.read(path + ".rej") is not None:
        unresolved = f"{path}.rej from an earlier merge is still there: resolve it, delete it"
    else:
        unresolved = ""
    if unresolved and recorded != digest(new):
        # Never merge into an unresolved merge: the new version waits (its record too).
        reason = f"{unresolved}; the new version is merged after that"
        return Change(path, "refuse", old, None, executable, reason)
    if unresolved:
        return Change(path, "hold", old, None, executable, unresolved, new, 1)
    if old == new or force or recorded == digest(old):
        return _change(path, old, new, executable, new)
    if recorded is None:
        why = "exists and was not written by shipforge"
        return _merge(path, old, "", new, executable, why, style)
    if recorded == digest(new):
        reason = "edited; what shipforge generates did not change: your version is kept"
        return Change(path, "hold", old, None, executable, reason, new)
    base = _base(tree, recorded)
    why = "edited since shipforge wrote it"
    if base is None:
        why += " (the version it wrote is not kept in .shipforge/base: merged as new)"
    return _merge(path, old, base or "", new, executable, why, style)


def _change(
    path: str, old: str | None, new: str, executable: bool, generated: str | None
) -> Change:
    action = "create" if old is None else ("unchanged" if old == new else "update")
    return Change(path, action, old, new, executable, generated=generated)


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


# --- writing -------------------------------------------------------------------------------


@dataclass
class _Step:
    """One file of a transaction: where, what goes there (None: delete) and what was there."""

    path: str
    data: bytes | None
    mode: int
    old: bytes | None
    old_mode: int = 0o644
    staged: str = ""
    label: str = ""  # how a message names it, when not by its path


def apply(out: Path, changes: list[Change]) -> None:
    """Write every change and the manifest, all or nothing.

    Conflicts and refusals do not stop the other files: they are reported by the caller.
    """
    # Two runs into one folder take turns; the later one then finds the files changed since
    # it planned and stops, instead of interleaving with the first. The lock is the parent
    # folder's, which exists before either run (the output folder may not: both would then
    # create it unlocked), and the tree is opened under it, so it sees the first run's files.
    with _turn(out), _tree(out) as tree:
        # Under the lock, every file must still be what the plan read, written or not, and so
        # must its manifest entry: the plan told edits from shipforge's writes by it, and the
        # manifest about to be written records the plan's view of all of them.
        old_manifest = _load_manifest(tree)
        for change in changes:
            moved = change.action not in ("keep", "refuse", "record") and not _same(
                tree.read(change.path), change.old
            )
            if moved or (
                change.action != "record" and old_manifest.get(change.path) != change.recorded
            ):
                raise _unsafe(
                    change.path,
                    "changed while shipforge was planning (another shipforge run?)",
                    "run shipforge generate again",
                )
        hashes: dict[str, str] = {}
        blobs: dict[str, str] = {}
        steps: list[_Step] = []
        for change in changes:
            if change.action == "delete":
                steps.append(_Step(change.path, None, 0, None))
                continue
            if change.generated is not None:
                hashes[change.path] = digest(change.generated)
                blobs[hashes[change.path]] = change.generated
            elif change.path in old_manifest and change.action in ("keep", "refuse"):
                hashes[change.path] = old_manifest[change.path]
            if change.new is not None and change.new != change.old:
                mode = 0o755 if change.executable else 0o644
                steps.append(_Step(change.path, change.new.encode("utf-8"), mode, None))
            if change.reject is not None:
                steps.append(
                    _Step(change.path + ".rej", change.reject.encode("utf-8"), 0o644, None)
                )
        owners = {h: p for p, h in sorted(hashes.items(), reverse=True)}
        for recorded, text in sorted(blobs.items()):
            rel = f"{BASES}/{recorded.removeprefix('sha256:')}"
            if _base(tree, recorded) is None:
                label = f"{rel} (the copy of {owners[recorded]} that later merges start from)"
                steps.append(_Step(rel, text.encode("utf-8"), 0o644, None, label=label))
        # Bases no longer recorded go; only files named by a hash and holding that content.
        kept = {h.removeprefix("sha256:") for h in hashes.values()}
        for name in _base_names(tree):
            if name not in kept and _base(tree, "sha256:" + name) is not None:
                steps.append(_Step(f"{BASES}/{name}", None, 0, None))
        text = manifest_text(hashes)
        current, _ = _text(tree, MANIFEST) if tree.exists else (None, None)
        if current != text and (hashes or current is not None):
            steps.append(_Step(MANIFEST, text.encode("utf-8"), 0o644, None))
        _transaction(tree, steps, {c.path: c for c in changes})


@contextlib.contextmanager
def _turn(out: Path) -> Iterator[None]:
    """Hold the lock shipforge runs writing into `out` take turns on (an advisory flock)."""
    here = Path(os.path.abspath(out)).parent
    while not here.is_dir() and here != here.parent:
        here = here.parent
    try:
        fd = os.open(here, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        yield  # a parent this user may not open: the run goes unlocked
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _base_names(tree: Tree) -> list[str]:
    try:
        fd = tree.folder(BASES)
    except WriteError:
        return []
    if fd is None:
        return []
    return sorted(n for n in os.listdir(fd) if re.fullmatch(r"[0-9a-f]{64}", n))


def write_manifest(out: Path, hashes: dict[str, str]) -> None:
    """Record hashes as the manifest (rewriting only when they changed), safely and atomically."""
    text = manifest_text({path: "sha256:" + HASH.fullmatch(h)[1] for path, h in hashes.items()})  # type: ignore[index]
    with _tree(out) as tree:
        current, _ = _text(tree, MANIFEST) if tree.exists else (None, None)
        if current != text:
            _transaction(tree, [_Step(MANIFEST, text.encode("utf-8"), 0o644, None)], {})


def record_rendered(out: Path, rendered: dict[str, str]) -> None:
    """Record rendered files as what shipforge generated last: manifest and kept versions."""
    changes = [
        Change(path, "record", None, None, generated=text)
        for path, text in sorted(rendered.items())
        if not text.startswith(BLOCK_START) and safe_relative(path)
    ]
    apply(out, changes)


def _transaction(tree: Tree, steps: list[_Step], changes: dict[str, Change]) -> None:
    """Stage every file, then rename them all into place; on any failure undo everything.

    Ctrl-C, SIGTERM and SIGHUP wait until the transaction is done or undone (they are then
    delivered), so an interrupted run never leaves half a tree or a temporary file behind.
    """
    held = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    try:
        _transact(tree, steps, changes)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


_HELD = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def _transact(tree: Tree, steps: list[_Step], changes: dict[str, Change]) -> None:
    done: list[_Step] = []
    current = ""
    try:
        for step in steps:
            current = step.label or step.path
            step.old = tree.read(step.path)
            expected = changes.get(step.path)
            if expected is not None and not _same(step.old, expected.old):
                raise _unsafe(
                    step.path,
                    "changed while shipforge was planning (another shipforge run?)",
                    "run shipforge generate again",
                )
            if step.old is not None:
                step.old_mode = tree.mode(step.path)
            if step.data is not None:
                step.staged = tree.stage(step.path, step.data, step.mode)
        for step in steps:
            current = step.label or step.path
            if step.data is None:
                tree.remove(step.path)
            else:
                tree.rename(step.staged, step.path)
                step.staged = ""
            done.append(step)
    except BaseException as error:
        _undo(tree, steps, done)
        if isinstance(error, WriteError):
            raise
        if isinstance(error, OSError):
            raise WriteError(
                "writing failed; nothing was changed (every file is as it was)",
                (
                    Issue(
                        f"{error.strerror or error}", current or str(tree.out), hint=_os_hint(error)
                    ),
                ),
            ) from None
        raise


def _same(on_disk: bytes | None, planned: str | None) -> bool:
    if planned is None:
        return on_disk is None
    if on_disk is None:
        return False
    if on_disk == planned.encode("utf-8"):
        return True
    # A file that is not UTF-8 text, replaced with --force, was planned as "".
    try:
        on_disk.decode("utf-8")
    except UnicodeDecodeError:
        return planned == ""
    return False


def _os_hint(error: OSError) -> str:
    if error.errno == errno.ENOSPC:
        return "free some space on that disk, then run shipforge again"
    if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return "that part of the tree is read-only for you: make it writable, or use --out"
    return "fix the cause, then run shipforge again"


def _undo(tree: Tree, steps: list[_Step], done: list[_Step]) -> None:
    """Remove staged files, put back what renames and deletions replaced, remove new folders."""
    for step in steps:
        if step.staged:
            with contextlib.suppress(OSError):
                tree.remove(step.staged)
    for step in reversed(done):
        with contextlib.suppress(OSError):
            if step.old is None:
                tree.remove(step.path)
            else:
                tree.rename(tree.stage(step.path, step.old, step.old_mode), step.path)
    tree.undo_folders()


# --- one file, for init --------------------------------------------------------------------


@contextlib.contextmanager
def staged_file(target: Path, text: str, replace_existing: bool = False) -> Iterator[Path]:
    """Stage text beside target; yield the staged file's path; on success move it into place.

    The temporary file is created exclusively (O_EXCL, O_NOFOLLOW) in target's folder; a link
    at target (dangling or not) is refused with its path; without replace_existing an existing
    target is refused too, even if it appears while the caller works (a hard link, not a rename).
    On failure, or if the body raises, nothing is left behind.
    """
    folder, name = target.parent, target.name
    with _tree(folder) as tree:
        if not tree.exists:
            raise _unsafe(str(folder), "is not a folder")
        try:
            info = os.stat(name, dir_fd=tree.folder(""), follow_symlinks=False)
        except FileNotFoundError:
            info = None
        if info is not None and stat.S_ISLNK(info.st_mode):
            link = os.readlink(name, dir_fd=tree.folder(""))
            raise _unsafe(
                str(target), f"is a symbolic link (to {link}): refusing to write through it"
            )
        if info is not None and not replace_existing:
            raise _unsafe(str(target), "already exists: not overwritten")
        staged = tree.stage(name, text.encode("utf-8"), 0o644)
        try:
            yield folder / staged
            parent = tree.folder("")
            try:
                if replace_existing:
                    os.replace(staged, name, src_dir_fd=parent, dst_dir_fd=parent)
                else:
                    os.link(
                        staged, name, src_dir_fd=parent, dst_dir_fd=parent, follow_symlinks=False
                    )
            except FileExistsError:
                raise _unsafe(
                    str(target), "appeared while shipforge was writing it: not overwritten"
                ) from None
        finally:
            tree.remove(staged)


def write_file(target: Path, text: str, replace_existing: bool = True) -> None:
    """Write one file atomically beside itself, never through a link."""
    with staged_file(target, text, replace_existing):
        pass


__all__ = [
    "BLOCK_END",
    "BLOCK_START",
    "MANIFEST",
    "Change",
    "ManifestError",
    "WriteError",
    "apply",
    "diff",
    "digest",
    "merge_block",
    "plan_changes",
    "read_inside",
    "read_manifest",
    "record_rendered",
    "staged_file",
    "write_file",
    "write_manifest",
]
