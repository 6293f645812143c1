"""Finding a repository's deployment files, by kind, without trusting the repository.

Every read goes through a `RepoReader`: a link that leads out of the repository, a FIFO, a
device, a symlink loop, an oversized or binary file is left out of the inventory (so no linter
is handed it either) and becomes a note of the report.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from generator.repofs import NOT_SOURCE, RepoReader

# Folders that never hold a project's own deployment files.
PRUNED = NOT_SOURCE

_COMPOSE = re.compile(r"^(docker-)?compose(\.[\w.-]+)?\.ya?ml$")
_YAML = (".yaml", ".yml")
_ENV_EXAMPLE = re.compile(r"^\.?(?:[\w-]+\.)*env(?:\.[\w-]+)*\.(?:example|sample|template|dist)$")
_SHEBANG = re.compile(rb"^#!\s*(?:/usr/bin/env\s+)?(?:/usr)?(?:/bin/)?(?:ba|da|k)?sh\b")
_KUSTOMIZATION = ("kustomization.yaml", "kustomization.yml", "Kustomization")


@dataclass
class Inventory:
    """A repository's deployment files by kind, as paths relative to its root."""

    dockerfiles: list[str] = field(default_factory=list)
    compose: list[str] = field(default_factory=list)
    workflows: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    gitlab: list[str] = field(default_factory=list)
    kubernetes: list[str] = field(default_factory=list)
    kustomizations: list[str] = field(default_factory=list)
    kustomize_files: list[str] = field(default_factory=list)
    terraform: list[str] = field(default_factory=list)
    terraform_dirs: list[str] = field(default_factory=list)
    shell: list[str] = field(default_factory=list)
    env_examples: list[str] = field(default_factory=list)
    prometheus_configs: list[str] = field(default_factory=list)
    prometheus_rules: list[str] = field(default_factory=list)
    prometheus_tests: list[str] = field(default_factory=list)
    helm_charts: list[str] = field(default_factory=list)
    # Deployment files (by name) not handed to any linter, with why: unsafe or unreadable.
    refused: dict[str, str] = field(default_factory=dict)
    # What the reader skipped or refused, as the report shows it.
    notes: list[str] = field(default_factory=list)

    def yaml_files(self) -> list[str]:
        return sorted(
            {
                *self.compose,
                *self.workflows,
                *self.actions,
                *self.gitlab,
                *self.kubernetes,
                *self.kustomize_files,
                *self.prometheus_configs,
                *self.prometheus_rules,
                *self.prometheus_tests,
            }
        )

    def only(self, files: tuple[str, ...]) -> Inventory:
        """The inventory restricted to these files (pre-commit mode: the staged ones).

        A kustomization is built, and a Terraform folder formatted, when one of its files is
        among them; the refusals and notes stay (they are about the repository).
        """
        given = {PurePosixPath(f).as_posix().removeprefix("./") for f in files}

        def keep(paths: list[str]) -> list[str]:
            return [p for p in paths if p in given]

        def holds(folder: str, paths: list[str]) -> bool:
            return any(folder == "." or p.startswith(folder + "/") for p in paths)

        return Inventory(
            dockerfiles=keep(self.dockerfiles),
            compose=keep(self.compose),
            workflows=keep(self.workflows),
            actions=keep(self.actions),
            gitlab=keep(self.gitlab),
            kubernetes=keep(self.kubernetes),
            # Overlays build on bases elsewhere: any kustomize file given builds them all.
            kustomizations=self.kustomizations if keep(self.kustomize_files) else [],
            kustomize_files=keep(self.kustomize_files),
            terraform=keep(self.terraform),
            terraform_dirs=[d for d in self.terraform_dirs if holds(d, keep(self.terraform))],
            shell=keep(self.shell),
            env_examples=keep(self.env_examples),
            prometheus_configs=keep(self.prometheus_configs),
            prometheus_rules=keep(self.prometheus_rules),
            prometheus_tests=keep(self.prometheus_tests),
            helm_charts=self.helm_charts,
            refused=self.refused,
            notes=self.notes,
        )

    def all_files(self) -> list[str]:
        return sorted(
            {
                *self.yaml_files(),
                *self.dockerfiles,
                *self.terraform,
                *self.shell,
                *self.env_examples,
            }
        )


def _join(folder: str, name: str) -> str:
    return name if folder == "." else f"{folder}/{name}"


def _excluded(path: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatch(path, p) or path.startswith(p.rstrip("/") + "/") for p in patterns)


def _walk(root: Path, exclude: tuple[str, ...]) -> Iterator[str]:
    # Links to folders are not entered (os.walk's default): a loop or a link to `/` must not
    # multiply the walk, and what lies outside the repository is not the repository's.
    for folder, dirs, files in os.walk(root, followlinks=False):
        here = Path(folder).relative_to(root).as_posix()
        dirs[:] = sorted(
            d
            for d in dirs
            if d not in PRUNED
            and not d.startswith(".venv")
            and not _excluded(_join(here, d), exclude)
        )
        for name in sorted(files):
            path = _join(here, name)
            if not _excluded(path, exclude):
                yield path


# A YAML file whose aliases expand to more nodes than this is refused before any linter sees
# it (a "billion laughs" file takes linters minutes and gigabytes). Real manifests, CRDs
# included, stay far below it.
MAX_YAML_NODES = 200_000


class _Bomb(Exception):
    pass


def _expanded_size(documents: list[Any]) -> int:
    """How many nodes the documents have once every alias is expanded (capped)."""
    import yaml

    sizes: dict[int, int] = {}

    def size(node: yaml.Node, depth: int) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if depth > 500:
            raise _Bomb
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k, depth + 1) + size(v, depth + 1) for k, v in node.value)
        sizes[id(node)] = total
        if total > MAX_YAML_NODES:
            raise _Bomb
        return total

    try:
        return sum(size(d, 0) for d in documents)
    except (_Bomb, RecursionError):
        return MAX_YAML_NODES + 1


def _yaml_documents(text: str) -> tuple[list[Any], str]:
    """The YAML documents of a text (empty ones left out), or why the file is not linted.

    The why is empty for a file that is simply not valid YAML: the linters say what is wrong.
    """
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        nodes = [n for n in yaml.compose_all(text, Loader=loader) if n is not None]
        if _expanded_size(nodes) > MAX_YAML_NODES:
            return [], f"its aliases expand to more than {MAX_YAML_NODES} YAML nodes"
        documents = [d for d in yaml.load_all(text, Loader=loader) if d]
    except RecursionError:
        return [], "nested too deeply to read"
    except (yaml.YAMLError, ValueError):
        return [], ""
    return documents, ""


def _strings(value: Any) -> Iterator[str]:
    """A compose path field's strings: a string, a list of strings, or `{path: ...}` entries."""
    for item in value if isinstance(value, list) else [value]:
        item = item.get("path") if isinstance(item, dict) else item
        if isinstance(item, str):
            yield item
        elif isinstance(item, list):
            yield from (i for i in item if isinstance(i, str))


def _compose_references(documents: list[Any]) -> Iterator[str]:
    """The files a compose file makes compose read: env_file, label_file, extends, include."""
    for document in documents:
        if not isinstance(document, dict):
            continue
        include = document.get("include")
        for entry in include if isinstance(include, list) else []:
            yield from _strings(entry)
            if isinstance(entry, dict):
                yield from _strings(entry.get("env_file"))
                yield from _strings(entry.get("project_directory"))
        services = document.get("services")
        for service in services.values() if isinstance(services, dict) else []:
            if not isinstance(service, dict):
                continue
            yield from _strings(service.get("env_file"))
            yield from _strings(service.get("label_file"))
            extends = service.get("extends")
            if isinstance(extends, dict):
                yield from _strings(extends.get("file"))


def _is_dockerfile(name: str) -> bool:
    return (
        name in ("Dockerfile", "Containerfile")
        or name.startswith(("Dockerfile.", "Containerfile."))
        or name.endswith((".Dockerfile", ".Containerfile"))
    )


class _Scan:
    """One discovery's reads: each file read once through the reader, refusals collected."""

    def __init__(self, root: Path, reader: RepoReader, found: Inventory) -> None:
        self.root, self.reader, self.found = root, reader, found
        self.texts: dict[str, str | None] = {}

    def text(self, path: str) -> str | None:
        if path not in self.texts:
            self.texts[path] = self.reader.read_text(self.root / path)
        return self.texts[path]

    def accept(self, path: str, kind: list[str], is_yaml: bool = False) -> None:
        """A file named as a deployment file: linted when it can be read safely, else refused."""
        text = self.text(path)
        if text is None:
            self.refuse(path, self.why(path))
            return
        if is_yaml:
            documents, why = _yaml_documents(text)
            if kind is self.found.compose and not why:
                why = self.compose_escape(path, documents)
            if why:
                self.refuse(path, why)
                return
        kind.append(path)

    def compose_escape(self, path: str, documents: list[Any]) -> str:
        """Why docker-compose must not read this compose file: it names a file outside.

        compose reads env_file, extends and include files itself, and its error messages quote
        their lines: a reference out of the repository would copy an outside file into the report.
        """
        folder = (self.root / path).parent
        for reference in _compose_references(documents):
            if "$" in reference:
                return f"names the file {reference!r} through a variable, which cannot be checked"
            target = Path(os.path.realpath(folder / reference))
            if target != self.root and self.root not in target.parents:
                return f"names {reference!r}, a file outside the repository"
        return ""

    def why(self, path: str) -> str:
        shown = self.reader.display(self.root / path)
        return next((n.message for n in self.reader.notes if n.file == shown), "could not be read")

    def refuse(self, path: str, why: str) -> None:
        self.found.refused[path] = why.removeprefix("skipped: ")

    def documents(self, path: str) -> list[Any]:
        text = self.text(path)
        if text is None:
            return []
        documents, why = _yaml_documents(text)
        if why:
            self.refuse(path, why)
        return documents

    def is_shell(self, path: str) -> bool:
        pure = PurePosixPath(path)
        if pure.suffix in (".sh", ".bash"):
            return True
        target = self.root / path
        # Only an executable without a suffix is sniffed, and only its first bytes.
        if pure.suffix or not self.reader.is_file(target) or not os.access(target, os.X_OK):
            return False
        head = self.reader.read_head(target, 80)
        return head is not None and bool(_SHEBANG.match(head))


def discover(
    root: Path, exclude: tuple[str, ...] = (), reader: RepoReader | None = None
) -> Inventory:
    """Find every deployment file under root, by kind (what each linter of the field reads).

    A file that is a deployment file by its name but cannot be read safely (a link out of the
    repository, a FIFO, a device, too large, not text, a YAML alias bomb) is not handed to any
    linter: it is listed in `refused` with the reason.
    """
    root = Path(os.path.realpath(root))
    reader = reader if reader is not None else RepoReader(root)
    found = Inventory()
    scan = _Scan(root, reader, found)
    paths = list(_walk(root, exclude))
    parents = {path: str(PurePosixPath(path).parent) for path in paths}
    names = {path: PurePosixPath(path).name for path in paths}
    charts = sorted({parents[p] for p in paths if names[p] == "Chart.yaml"})
    # Each folder's kustomization file, in kustomize's order of preference.
    kustomizations: dict[str, str] = {}
    for kustomization in _KUSTOMIZATION:
        for p in paths:
            if names[p] == kustomization and reader.is_file(root / p):
                kustomizations.setdefault(parents[p], p)
    found.helm_charts = charts
    tf_dirs: set[str] = set()
    for path in paths:
        name, parent = names[path], parents[path]
        if _is_dockerfile(name):
            scan.accept(path, found.dockerfiles)
        elif _COMPOSE.match(name):
            scan.accept(path, found.compose, is_yaml=True)
        elif parent.endswith(".github/workflows") and name.endswith(_YAML):
            scan.accept(path, found.workflows, is_yaml=True)
        elif name in ("action.yml", "action.yaml"):
            scan.accept(path, found.actions, is_yaml=True)
        elif name.endswith((".gitlab-ci.yml", ".gitlab-ci.yaml")):
            scan.accept(path, found.gitlab, is_yaml=True)
        elif name.endswith(".tf"):
            before = len(found.terraform)
            scan.accept(path, found.terraform)
            if len(found.terraform) > before:
                tf_dirs.add(parent)
        elif _ENV_EXAMPLE.match(name):
            scan.accept(path, found.env_examples)
        elif name.endswith(_YAML):
            # Helm templates are not YAML until rendered: a chart is reported, not linted.
            if any(parent == c or parent.startswith(c + "/") or c == "." for c in charts):
                continue
            if parent in kustomizations:
                # A kustomization's files may be partial patches: they are linted as YAML,
                # and the built output is what the Kubernetes validators see.
                scan.accept(path, found.kustomize_files, is_yaml=True)
            else:
                _classify_yaml(scan, path)
        elif scan.is_shell(path):
            scan.accept(path, found.shell)
    found.kustomizations = _leaf_kustomizations(scan, kustomizations)
    # terraform fmt -recursive covers sub-folders: run it on the top-most folders only.
    found.terraform_dirs = sorted(
        d
        for d in tf_dirs
        if not any(o != d and (o == "." or d.startswith(o + "/")) for o in tf_dirs)
    )
    # A folder holding a refused .tf file is not handed to terraform fmt either (it reads
    # every .tf file below the folder it is given).
    refused_tf = [p for p in found.refused if p.endswith(".tf")]
    found.terraform_dirs = [
        d
        for d in found.terraform_dirs
        if not any(d == "." or p == d or p.startswith(d + "/") for p in refused_tf)
    ]
    found.notes = [str(n) for n in reader.notes]
    return found


def _classify_yaml(scan: _Scan, path: str) -> None:
    documents = [d for d in scan.documents(path) if isinstance(d, dict)]
    if not documents:
        return
    first, found = documents[0], scan.found
    if "scrape_configs" in first:
        found.prometheus_configs.append(path)
    elif "rule_files" in first and "tests" in first:
        found.prometheus_tests.append(path)
    elif isinstance(first.get("groups"), list) and all(
        isinstance(g, dict) and "rules" in g for g in first["groups"]
    ):
        found.prometheus_rules.append(path)
    elif all("apiVersion" in d and "kind" in d for d in documents):
        found.kubernetes.append(path)


def _leaf_kustomizations(scan: _Scan, folders: dict[str, str]) -> list[str]:
    """The kustomizations no other one builds on (overlays): building them covers the bases."""
    used: set[str] = set()
    for folder, path in sorted(folders.items()):
        documents = scan.documents(path)
        if not documents or not isinstance(documents[0], dict):
            continue
        for key in ("resources", "bases", "components"):
            entries = documents[0].get(key) or []
            for entry in entries if isinstance(entries, list) else []:
                target = os.path.normpath(os.path.join(folder, str(entry)))
                used.add(PurePosixPath(target).as_posix())
    # A kustomization that was refused (a link out, a bomb) is not built.
    candidates = sorted(f for f, p in folders.items() if p not in scan.found.refused)
    leaves = [f for f in candidates if f not in used]
    return leaves or candidates
