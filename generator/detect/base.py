"""What detection produces, and the one reader every detector reads the repository through.

Every detected value carries a `Why`: the sentence that becomes its comment in shipforge.yaml
and the file and line it came from, which `shipforge init --explain` prints.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from generator.repofs import NOT_SOURCE, RepoReader

# Folders never searched for projects or code: vendored, generated, or not part of a deployable.
SKIPPED_DIRS = NOT_SOURCE | frozenset(
    {
        "env",
        "dist",
        "build",
        "docs",
        "doc",
        "tests",
        "test",
        "__tests__",
        "e2e",
        "examples",
        "example",
        "fixtures",
        "scripts",
        "notebooks",
        "benchmarks",
        "eval",
        "evals",
        "evaluation",
        "evaluations",
    }
)
MAX_DEPTH = 3
MAX_SOURCE_FILES = 2000

DEFAULT_PORTS = {"python": 8000, "node": 3000}
DEFAULT_HEALTH = "/healthz"
DEFAULT_COMMANDS = {"python": "python -m app", "node": "npm start"}
DEFAULT_PROJECT = "app"
DATASTORE_VERSIONS = {"postgres": "16", "redis": "7"}
SUPPORTED = {"python": ("3.12", "3.13", "3.11", "3.10", "3.9"), "node": ("22", "20", "24", "18")}

_HEALTH = re.compile(
    r"^/(?:api/)?(?:v\d+/)?(?:_?health(?:z|[-_]?check)?|heartbeat|livez|readyz|ready|live|ping"
    r"|status|up)/?$"
)
SECRET_NAME = re.compile(r"(SECRET|TOKEN|PASSWORD|PASSWD|API_KEY|_KEY$|^KEY$|DSN|CREDENTIALS)")
# Values the client bundle inlines at build time: public by design, never secrets.
PUBLIC_PREFIXES = ("NEXT_PUBLIC_", "VITE_", "EXPO_PUBLIC_", "REACT_APP_", "PUBLIC_", "NUXT_PUBLIC_")


@dataclass(frozen=True)
class Why:
    """Where a value came from: a sentence for the comment, and the file and line."""

    text: str
    file: str = ""
    line: int = 0

    def where(self) -> str:
        if not self.file:
            return "(no file)"
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass
class Service:
    """A service as detected: each value is None when detection could not tell."""

    name: str
    runtime: str
    path: str = "."
    package_manager: str = ""
    version: str = ""
    command: str | None = None
    web: bool | None = None
    port: int | None = None
    health: str | None = None
    build: str = ""
    default_command: str = ""
    release: str = ""
    working_dir: str = ""
    uses: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    why: dict[str, Why] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def copy(self, **changes: Any) -> Service:
        """Another service of the same project: same runtime, path, manager and datastores."""
        fresh = replace(
            self,
            uses=list(self.uses),
            secrets=list(self.secrets),
            env=dict(self.env),
            why=dict(self.why),
            warnings=list(self.warnings),
        )
        return replace(fresh, **changes)


@dataclass
class Detection:
    """What `shipforge init` found in a repository."""

    root: Path
    name: str | None = None
    name_why: Why = Why("")
    services: list[Service] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def datastores(self) -> list[str]:
        return [d for d in ("postgres", "redis") if any(d in s.uses for s in self.services)]


@dataclass(frozen=True)
class Question:
    """A value detection could not find: asked interactively; with --yes see `guess`."""

    key: str
    prompt: str
    default: str
    why: str
    # Asked only when the answer to this other question is not empty (health needs a port).
    needs: str = ""
    # With --yes: True writes the default as the value (the descriptor needs one, e.g. a
    # command) marked as guessed; False leaves the value out and writes it as a commented
    # `# guessed:` line, so nothing the code does not show becomes configuration.
    required: bool = False


class Repo:
    """The repository being described: a safe reader plus path helpers for evidence."""

    def __init__(self, root: Path) -> None:
        self.reader = RepoReader(root)
        self.root = self.reader.root
        # Each file is read once: evidence lookups ask for the same file many times.
        self._texts: dict[Path, str] = {}
        # Parsed files and other per-run results, keyed by (kind, path).
        self.memo: dict[tuple[str, Path], Any] = {}

    def rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix() or "."
        except ValueError:
            return path.as_posix()

    # A missing file is simply absent; anything else at the path (a FIFO, a link out of the
    # repository, binary data) goes through the reader, which refuses it with a note.
    def text(self, path: Path) -> str:
        if path not in self._texts:
            exists = os.path.lexists(path)
            self._texts[path] = (self.reader.read_text(path) or "") if exists else ""
        return self._texts[path]

    def exists(self, path: Path) -> bool:
        return self.reader.is_file(path)

    def json(self, path: Path) -> dict[str, Any]:
        return (self.reader.json_object(path) or {}) if os.path.lexists(path) else {}

    def toml(self, path: Path) -> dict[str, Any]:
        return (self.reader.toml_table(path) or {}) if os.path.lexists(path) else {}

    def files(self, folder: Path, suffixes: tuple[str, ...], skip: set[Path]) -> list[Path]:
        """Source files under folder (not tests, vendored code or `skip` folders), shallow first."""
        found: list[Path] = []
        for path in self.reader.walk(folder, prune=SKIPPED_DIRS):
            if any(path.is_relative_to(s) for s in skip if s != folder):
                continue
            parts = path.relative_to(folder).parts
            if any(p.startswith(".") for p in parts):
                continue
            if path.name.endswith(suffixes) and not path.name.startswith("test_"):
                found.append(path)
            if len(found) >= MAX_SOURCE_FILES:
                break
        return sorted(found, key=lambda p: (len(p.relative_to(folder).parts), str(p)))

    def line_of(self, path: Path, needle: str) -> int:
        """The first line of the file holding `needle` (1-based), 0 when none does."""
        for number, line in enumerate(self.text(path).splitlines(), 1):
            if needle in line:
                return number
        return 0

    def why(self, text: str, path: Path, needle: str | int = "") -> Why:
        line = needle if isinstance(needle, int) else (self.line_of(path, needle) if needle else 0)
        return Why(text, self.rel(path), line)


def get(data: Any, *keys: str) -> Any:
    """data[k1][k2]... where each level is a dict, else None: real files hold any type."""
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def strings(value: Any) -> list[str]:
    """The strings of a list (wrong types in a manifest are ignored, not a crash)."""
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def dns_label(text: str) -> str:
    """The closest valid shipforge name (a lowercase DNS label), or "" when none is close."""
    label = re.sub(r"[^a-z0-9-]+", "-", text.lower().rsplit("/", 1)[-1]).strip("-")
    label = re.sub(r"^[^a-z]+", "", label)[:40].rstrip("-")
    return label


def health_route(routes: list[tuple[str, Why]]) -> tuple[str, Why] | None:
    """The first route that is a health endpoint by its name."""
    for route, why in routes:
        path = route if route.startswith("/") else "/" + route
        if _HEALTH.match(path):
            return (path.rstrip("/") if path != "/" and not route.endswith("/") else path), why
    return None


# Names that look secret by a word in them but hold settings: JWT_RESET_PASSWORD_EXPIRATION_MINUTES.
_SETTING = re.compile(
    r"_(?:MINUTES|HOURS|DAYS|SECONDS|TTL|EXPIRATION|EXPIRY|EXPIRES|LENGTH|SIZE|COUNT|ENABLED"
    r"|ALGORITHM|FILE|PATH|HOST|PORT|USER|USERNAME|NAME|ID|URL|ENDPOINT|REGION)$"
)


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name)) and not _SETTING.search(name) and not is_public(name)


def is_public(name: str) -> bool:
    return name.startswith(PUBLIC_PREFIXES)
