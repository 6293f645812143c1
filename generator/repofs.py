"""Reading a repository that may be hostile: no link out of it, no special file, bounded bytes.

Everything that reads a user's repository (`check`, `init`, `audit`, `adopt`, `upgrade`) goes
through a `RepoReader`. A repository someone cloned can hold a `compose.yaml` that links to
`~/.aws/credentials`, a `package.json` that is a FIFO or a link to `/dev/zero`, a symlink loop or
a binary file named `*.yaml`; each of those must become a note the report shows, never a leak,
a hang or a traceback.
"""

from __future__ import annotations

import json
import os
import stat
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from generator.errors import Issue

# A source or configuration file larger than this is not read: real ones are far smaller, and a
# hostile one must not cost memory. The total cap bounds a whole run over a huge repository.
MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_TOTAL_BYTES = 256 * 1024 * 1024

# Folders that never hold a repository's own files: version control, installed dependencies,
# caches and tool state. Every reader of a repository (check, init, audit) skips them.
NOT_SOURCE = frozenset(
    {
        *(".git", ".hg", ".svn"),
        *("node_modules", ".pnpm-store", ".venv", "venv", "site-packages"),
        *("__pycache__", ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache"),
        *(".hypothesis", ".next", ".terraform", ".shipforge", ".tools", ".venv-checkov"),
    }
)

_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
}


class RepoReader:
    """Reads files below one root, refusing what could leak, hang or explode.

    Links that stay inside the root are followed (repositories use them for shared config);
    a link that leads out of it, a dangling link and a link loop are refused. Whatever is
    refused or skipped is recorded in `notes`, once per file, so the caller can report it.
    """

    def __init__(
        self,
        root: Path,
        max_file_bytes: int = MAX_FILE_BYTES,
        max_total_bytes: int = MAX_TOTAL_BYTES,
    ) -> None:
        self.root = Path(os.path.realpath(root))
        self.max_file_bytes = max_file_bytes
        self.max_total_bytes = max_total_bytes
        self.notes: list[Issue] = []
        self._noted: set[str] = set()
        self._total = 0

    def _note(self, path: Path, message: str) -> None:
        name = self.display(path)
        if name not in self._noted:
            self._noted.add(name)
            self.notes.append(Issue(message, file=name))

    def display(self, path: Path) -> str:
        """The path as the report shows it: relative to the root where it lies below it."""
        absolute = path if path.is_absolute() else self.root / path
        try:
            return absolute.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def resolve(self, path: Path) -> Path | None:
        """The real path of `path` when it stays below the root, else None (with a note)."""
        absolute = path if path.is_absolute() else self.root / path
        try:
            real = Path(os.path.realpath(absolute, strict=True))
        except FileNotFoundError:
            if absolute.is_symlink():
                self._note(path, "skipped: a dangling symbolic link")
            return None
        except (OSError, RuntimeError):
            # realpath(strict=True) raises OSError (ELOOP) or RuntimeError on a link loop.
            self._note(path, "skipped: a symbolic link loop")
            return None
        if real != self.root and self.root not in real.parents:
            self._note(path, "skipped: a symbolic link that leads out of the repository")
            return None
        return real

    def is_file(self, path: Path) -> bool:
        """Whether `path` is a regular file below the root (links resolved, nothing noted)."""
        absolute = path if path.is_absolute() else self.root / path
        try:
            real = Path(os.path.realpath(absolute, strict=True))
            mode = real.stat().st_mode
        except (OSError, RuntimeError):
            return False
        inside = real == self.root or self.root in real.parents
        return inside and stat.S_ISREG(mode)

    def read_bytes(self, path: Path) -> bytes | None:
        """The file's bytes, or None when it is missing, refused or too large (with a note)."""
        real = self.resolve(path)
        if real is None:
            return None
        try:
            # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
            fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as error:
            self._note(path, f"skipped: cannot be opened ({error.strerror})")
            return None
        with os.fdopen(fd, "rb") as handle:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
                self._note(path, f"skipped: {kind}, not a regular file")
                return None
            budget = min(self.max_file_bytes, self.max_total_bytes - self._total)
            data = handle.read(budget + 1)
        if len(data) > budget:
            limit = "the total read limit" if budget < self.max_file_bytes else "the size limit"
            self._note(path, f"skipped: larger than {limit} ({budget} bytes)")
            return None
        self._total += len(data)
        return data

    def read_head(self, path: Path, size: int) -> bytes | None:
        """The first `size` bytes of a regular file below the root (to sniff a shebang), or None.

        Nothing is noted: a file that is only sniffed is not one the caller meant to read.
        """
        if not self.is_file(path):
            return None
        absolute = path if path.is_absolute() else self.root / path
        try:
            fd = os.open(
                os.path.realpath(absolute),
                os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC,
            )
        except OSError:
            return None
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            return handle.read(size)

    def read_text(self, path: Path) -> str | None:
        """The file as UTF-8 text, or None when unreadable or not text (with a note)."""
        data = self.read_bytes(path)
        if data is None:
            return None
        if b"\0" in data:
            self._note(path, "skipped: binary data, not text")
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as error:
            self._note(path, f"skipped: not UTF-8 text (byte {error.start})")
            return None

    def json_object(self, path: Path) -> dict[str, Any] | None:
        """The file's top-level JSON object, or None when absent or not one (with a note)."""
        text = self.read_text(path)
        if text is None:
            return None
        try:
            data = json.loads(text)
        except RecursionError:
            self._note(path, "skipped: nested too deeply to read")
            return None
        except ValueError as error:
            self._note(path, f"skipped: not valid JSON ({error})")
            return None
        if not isinstance(data, dict):
            self._note(path, "skipped: the top level is not a JSON object")
            return None
        return data

    def toml_table(self, path: Path) -> dict[str, Any] | None:
        """The file parsed as TOML, or None when absent or invalid (with a note)."""
        text = self.read_text(path)
        if text is None:
            return None
        try:
            return tomllib.loads(text)
        except RecursionError:
            self._note(path, "skipped: nested too deeply to read")
        except tomllib.TOMLDecodeError as error:
            self._note(path, f"skipped: not valid TOML ({error})")
        return None

    def walk(self, top: Path | None = None, prune: frozenset[str] = frozenset()) -> Iterator[Path]:
        """Every file below `top` (default the root) in name order, without entering links.

        Directories named in `prune` are not entered. Links to directories are not entered
        either (a link loop or a link to `/` must not multiply the walk); links to files are
        yielded, and `read_*` decides whether they may be read.
        """
        start = self.root if top is None else top
        for folder, dirs, files in os.walk(start, followlinks=False):
            dirs[:] = sorted(d for d in dirs if d not in prune)
            for name in sorted(files):
                yield Path(folder) / name
