"""Load a descriptor: YAML with line numbers, then the JSON Schema, then the contract's rules.

Every problem of a stage is collected before failing, each with its file, line and path.
"""

from __future__ import annotations

import difflib
import json
import shlex
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from generator.errors import InvalidDescriptor, Issue

SCHEMA_PATH = Path(__file__).resolve().parent / "_data" / "schemas" / "shipforge.schema.json"

# Guards against alias bombs and absurd nesting: a descriptor is a small hand-written file.
MAX_NODES = 20_000
MAX_DEPTH = 32

# Leaves where YAML's implicit typing would change what the user wrote (`on` -> true,
# `0755` -> 493, `3.10` -> 3.1): these keep the scalar's source text.
_VERBATIM_LEAVES = (
    ("services", "*", "env", "*"),
    ("services", "*", "version"),
    ("services", "*", "cpu"),
    ("datastores", "*", "version"),
)

Lines = dict[str, int]


def _matches(path: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    return len(path) == len(pattern) and all(
        p in ("*", s) for s, p in zip(path, pattern, strict=True)
    )


class _Builder:
    """Turns a composed YAML node tree into plain data, noting each path's line."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: Lines = {}
        self.issues: list[Issue] = []
        self.notes: list[Issue] = []
        self.nodes = 0
        self._constructor = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: tuple[str, ...] = ()) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES or len(path) > MAX_DEPTH:
            raise InvalidDescriptor(
                "descriptor too large",
                (
                    Issue(
                        "the descriptor is too large or too deeply nested (aliases?)",
                        self.file,
                        node.start_mark.line + 1,
                        ".".join(path),
                        "write it out plainly; a descriptor is a small file",
                    ),
                ),
            )
        self.lines.setdefault(".".join(path), node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            self._constructor.flatten_mapping(node)
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    self.issues.append(
                        Issue(
                            "keys must be plain text",
                            self.file,
                            key_node.start_mark.line + 1,
                            ".".join(path),
                        )
                    )
                    continue
                key = key_node.value
                child = (*path, key)
                if key in out:
                    self.issues.append(
                        Issue(
                            f"duplicate key `{key}`",
                            self.file,
                            key_node.start_mark.line + 1,
                            ".".join(child),
                            "keep one of them",
                        )
                    )
                self.lines[".".join(child)] = key_node.start_mark.line + 1
                out[key] = self.build(value_node, child)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, str(i))) for i, item in enumerate(node.value)]
        value = self._constructor.construct_object(node, deep=True)
        if (
            isinstance(node, yaml.ScalarNode)
            and node.style is None
            and isinstance(value, int | float | bool)
            and any(_matches(path, p) for p in _VERBATIM_LEAVES)
        ):
            shown = str(value).lower() if isinstance(value, bool) else str(value)
            if shown != node.value:
                self.notes.append(
                    Issue(
                        f"`{node.value}` is kept as written, but YAML 1.1 readers such as copier "
                        f"read it as {shown}",
                        self.file,
                        node.start_mark.line + 1,
                        ".".join(path),
                        f'quote it ("{node.value}") so every tool reads the same text',
                    )
                )
            return node.value
        return value


def read_descriptor(path: Path) -> tuple[dict[str, Any], Lines]:
    """Parse the YAML file into data and a map from dotted path to line number."""
    data, lines, _ = _read(path)
    return data, lines


def _read(path: Path) -> tuple[dict[str, Any], Lines, list[Issue]]:
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidDescriptor(
            "no descriptor",
            (
                Issue(
                    "file not found",
                    file,
                    hint="run `shipforge init` to write one, or pass its path",
                ),
            ),
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidDescriptor(
            "unreadable descriptor",
            (Issue(f"cannot read it: {error}", file, hint="save it as a UTF-8 text file"),),
        ) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        raise InvalidDescriptor(
            "invalid YAML",
            (
                Issue(
                    f"invalid YAML: {error.problem or error.context}",
                    file,
                    mark.line + 1 if mark else None,
                    hint="fix the YAML syntax at that line",
                ),
            ),
        ) from None
    except yaml.YAMLError as error:
        raise InvalidDescriptor("invalid YAML", (Issue(f"invalid YAML: {error}", file),)) from None
    if node is None:
        raise InvalidDescriptor(
            "empty descriptor",
            (
                Issue(
                    "the descriptor is empty",
                    file,
                    1,
                    hint="start from `shipforge init` or docs/descriptor.md",
                ),
            ),
        )
    builder = _Builder(file)
    try:
        data = builder.build(node)
    except yaml.YAMLError as error:
        raise InvalidDescriptor("invalid YAML", (Issue(f"invalid YAML: {error}", file),)) from None
    if builder.issues:
        raise InvalidDescriptor("invalid descriptor", tuple(builder.issues))
    if not isinstance(data, dict):
        raise InvalidDescriptor(
            "invalid descriptor",
            (
                Issue(
                    "the descriptor must be a mapping of keys such as version, project and services",
                    file,
                    1,
                ),
            ),
        )
    return data, builder.lines, builder.notes


@cache
def schema() -> dict[str, Any]:
    """The descriptor's JSON Schema."""
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return loaded


def _type_name(value: Any) -> str:
    return {
        dict: "a mapping",
        list: "a list",
        str: "text",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "nothing (null)",
    }.get(type(value), type(value).__name__)


def _schema_issue(error: Any, file: str, lines: Lines) -> list[Issue]:
    """Turn one jsonschema error into issues that say what to do."""
    path = [str(p) for p in error.absolute_path]
    dotted = ".".join(path)
    kind, sub = error.validator, error.schema

    def here(message: str, hint: str = "", at: str | None = None) -> list[Issue]:
        where = dotted if at is None else at
        return [Issue(message, file, lines.get(where), where or "(top level)", hint)]

    if kind == "additionalProperties":
        allowed = sorted(sub.get("properties", {}))
        issues = []
        for key in error.instance:
            if key in allowed:
                continue
            close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            hint = f"did you mean `{close[0]}`?" if close else f"allowed keys: {', '.join(allowed)}"
            issues += here(f"unknown key `{key}`", hint, at=".".join([*path, key]))
        return issues
    if kind == "required":
        missing = error.message.split("'")[1]
        described = sub.get("properties", {}).get(missing, {}).get("description", "")
        return here(f"missing required key `{missing}`", described)
    if "propertyNames" in error.schema_path:
        # jsonschema reports a bad key as its value failing the name pattern, at the parent.
        hint = (
            "use an environment variable name: A-Z, 0-9 and _"
            if path[-1:] == ["env"]
            else "use a lowercase DNS label: a letter first, then letters, digits or '-', "
            "ending with a letter or digit, at most 40 characters"
        )
        key_path = ".".join([*path, str(error.instance)])
        return here(f"`{error.instance}` is not a valid name", hint, at=key_path)
    if kind == "type" and path[-1:] == ["secrets"] and isinstance(error.instance, dict):
        return here(
            "secrets must be a list of names, not values",
            "values belong in the platform's secret store (GitHub/GitLab environment secrets, "
            "Kubernetes Secrets, a cloud secret manager); "
            f"write `secrets: [{', '.join(map(str, error.instance))}]`",
        )
    if kind == "type":
        expected = sub["type"] if isinstance(sub["type"], str) else " or ".join(sub["type"])
        return here(f"expected {expected}, got {_type_name(error.instance)}", _description_at(path))
    if kind == "enum":
        return here(f"`{error.instance}` is not one of: {', '.join(map(str, sub['enum']))}")
    if kind in ("minimum", "maximum"):
        low, high = sub.get("minimum"), sub.get("maximum")
        return here(f"{error.instance} is out of range ({low} to {high})")
    if kind == "pattern":
        return here(f"`{error.instance}` is not valid here", _description_at(path))
    if kind == "const":
        return here(f"must be {sub['const']}", "this shipforge reads descriptor version 1")
    return here(error.message, _description_at(path))


def _description_at(path: list[str]) -> str:
    """The schema description of the property at path, to explain a refused value."""
    root = schema()
    node: dict[str, Any] = root
    for part in path:
        node = _deref(node, root)
        props = node.get("properties", {})
        if part in props:
            node = props[part]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        elif "items" in node:
            node = node["items"]
        else:
            return ""
    node = _deref(node, root)
    return str(node.get("description", ""))


def _deref(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node and "description" not in node:
        node = root["$defs"][node["$ref"].rsplit("/", 1)[1]]
    if "$ref" in node:
        merged = dict(root["$defs"][node["$ref"].rsplit("/", 1)[1]])
        merged.update({k: v for k, v in node.items() if k != "$ref"})
        return merged
    return node


def validate_schema(data: dict[str, Any], file: str, lines: Lines) -> list[Issue]:
    """Check the raw data against the JSON Schema, one clear issue per problem."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema())
    issues: list[Issue] = []
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        for issue in _schema_issue(error, file, lines):
            if issue not in issues:
                issues.append(issue)
    return issues


def semantic_issues(data: dict[str, Any], file: str, lines: Lines) -> list[Issue]:
    """The contract's rules that a JSON Schema cannot state."""
    issues: list[Issue] = []

    def add(path: str, message: str, hint: str = "") -> None:
        issues.append(Issue(message, file, lines.get(path), path, hint))

    targets = data.get("targets", {})
    datastores = data.get("datastores", {})
    for name, service in data["services"].items():
        where = f"services.{name}"
        raw_path = service.get("path", ".")
        pure = PurePosixPath(raw_path)
        if pure.is_absolute() or raw_path.startswith("~") or ".." in pure.parts or "\\" in raw_path:
            add(
                f"{where}.path",
                f"path `{raw_path}` leaves the repository",
                "use a folder relative to the repository root, without '..'",
            )
        for key in ("command", "release"):
            if isinstance(service.get(key), str):
                try:
                    words = shlex.split(service[key])
                except ValueError as error:
                    add(
                        f"{where}.{key}",
                        f"cannot split `{key}` into words: {error}",
                        "quote it as a POSIX shell would; no shell runs it",
                    )
                    continue
                if not words:
                    add(f"{where}.{key}", f"`{key}` is empty", "write the command to run")
        runtime, manager = service["runtime"], service.get("package_manager")
        allowed = {"python": ("pip", "poetry", "uv"), "node": ("npm", "pnpm", "yarn")}[runtime]
        if manager is not None and manager not in allowed:
            add(
                f"{where}.package_manager",
                f"`{manager}` is not a {runtime} package manager",
                f"use one of: {', '.join(allowed)}",
            )
        for store in service.get("uses", []):
            if store not in datastores:
                index = service["uses"].index(store)
                add(
                    f"{where}.uses.{index}",
                    f"datastore `{store}` is not declared",
                    f"add `datastores: {{{store}: {{}}}}` or remove it from uses",
                )
        if "port" not in service:
            for key in ("health", "public"):
                if service.get(key):
                    add(
                        f"{where}.{key}",
                        f"`{key}` needs a port: only web services have one",
                        "add `port:` or remove it",
                    )
        scale = service.get("autoscale")
        if scale and scale["min"] > scale["max"]:
            add(f"{where}.autoscale", f"min {scale['min']} is above max {scale['max']}")
        most = max(service.get("replicas", 1), scale["max"] if scale else 1)
        if service.get("volumes") and most > 1:
            add(
                f"{where}.volumes",
                f"volumes need a single instance, and this service can run {most}",
                "one disk cannot be safely shared by several instances: use replicas 1 without "
                "autoscale, or keep the state in a datastore",
            )
        seen: set[str] = set()
        for i, volume in enumerate(service.get("volumes", [])):
            if volume["name"] in seen:
                add(f"{where}.volumes.{i}.name", f"volume `{volume['name']}` is declared twice")
            seen.add(volume["name"])
        reserved = {"DATABASE_URL": "postgres", "REDIS_URL": "redis"}
        for key, store in reserved.items():
            if store in service.get("uses", []) and (
                key in service.get("env", {}) or key in service.get("secrets", [])
            ):
                add(
                    f"{where}.uses",
                    f"{key} is provided by `uses: [{store}]`",
                    f"remove {key} from env/secrets",
                )
        for key in set(service.get("env", {})) & set(service.get("secrets", [])):
            add(f"{where}.env.{key}", f"`{key}` is both configuration and a secret", "keep one")

    # Names the generated files already use beside the services' own.
    monitoring = data.get("monitoring", {})
    reserved = {store: "a declared datastore" for store in datastores}
    if monitoring.get("prometheus"):
        reserved["prometheus"] = "the monitoring profile's Prometheus"
    if monitoring.get("grafana"):
        reserved["grafana"] = "the monitoring profile's Grafana"
    if targets.get("kubernetes"):
        reserved["default-deny"] = "the Kubernetes default-deny NetworkPolicy"
    names = set(data["services"])
    for name in data["services"]:
        if f"{name}-release" in names:
            add(
                f"services.{name}-release",
                f"`{name}-release` is also the name of the release job of `{name}`",
                "rename one of the services",
            )
        if name in reserved:
            add(
                f"services.{name}",
                f"`{name}` is also the name of {reserved[name]}",
                "rename the service",
            )

    deploy = data.get("deploy", "none")
    needs = {
        "kubernetes": ("kubernetes", True),
        "pm2": ("pm2", True),
        "compose": ("compose", True),
        "aws-ecs": ("terraform", "aws-ecs"),
        "gcp-cloud-run": ("terraform", "gcp-cloud-run"),
        "azure-container-apps": ("terraform", "azure-container-apps"),
    }
    if deploy in needs:
        target, value = needs[deploy]
        defaults = {"compose": True}
        if targets.get(target, defaults.get(target)) != value:
            shown = "true" if value is True else value
            add(
                "deploy",
                f"deploy: {deploy} needs targets.{target}: {shown}",
                f"set targets.{target}: {shown}, or choose another deploy value",
            )
        if targets.get("ci", "none") == "none":
            add(
                "deploy",
                f"deploy: {deploy} is driven by CI, and targets.ci is none",
                "set targets.ci: github or gitlab",
            )
    if monitoring.get("grafana") and not monitoring.get("prometheus"):
        add(
            "monitoring.grafana",
            "grafana dashboards need prometheus as their data source",
            "set monitoring.prometheus: true",
        )
    return issues


def load(path: Path) -> Any:
    """Read, validate and resolve a descriptor into a Project, or raise with every issue."""
    return load_with_notes(path)[0]


def load_with_notes(path: Path) -> tuple[Any, list[Issue]]:
    """load(), plus the plain scalars kept as written that YAML 1.1 tools would retype."""
    from generator.model import build_project

    data, lines, notes = _read(path)
    return build_project(validate(data, str(path), lines)), notes


def validate(data: dict[str, Any], file: str, lines: Lines | None = None) -> dict[str, Any]:
    """Raise InvalidDescriptor listing every issue; return the data when it is valid."""
    lines = lines or {}
    issues = validate_schema(data, file, lines)
    if not issues:
        issues = semantic_issues(data, file, lines)
    if issues:
        count = f"{len(issues)} problem{'s' if len(issues) > 1 else ''}"
        raise InvalidDescriptor(f"{file}: {count}", tuple(issues))
    return data
