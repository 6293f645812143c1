"""Load a descriptor: YAML with line numbers, then the JSON Schema, then the contract's rules.

Every problem of a stage is collected before failing, each with its file, line and path.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shlex
import stat
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from generator import naming
from generator.errors import InvalidDescriptor, Issue

SCHEMA_PATH = Path(__file__).resolve().parent / "_data" / "schemas" / "shipforge.schema.json"

# The descriptor's top-level keys in the contract's order (copier.yml asks them in this order).
TOP_LEVEL_KEYS = (
    "version",
    "project",
    "services",
    "datastores",
    "environments",
    "targets",
    "deploy",
    "monitoring",
)

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
            explicit = sum(k.tag != "tag:yaml.org,2002:merge" for k, _ in node.value)
            self._constructor.flatten_mapping(node)
            # flatten_mapping puts the merged pairs (`<<: *base`) first: a key written here
            # overrides a merged one, as YAML's merge key says; only written keys can clash.
            merged = len(node.value) - explicit
            out: dict[str, Any] = {}
            written: set[str] = set()
            for index, (key_node, value_node) in enumerate(node.value):
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
                # Merged pairs override each other in flatten_mapping's order (so the first
                # mapping of `<<: [*a, *b]` wins) and written keys override merged ones.
                if index >= merged and key in written:
                    self.issues.append(
                        Issue(
                            f"duplicate key `{key}`",
                            self.file,
                            key_node.start_mark.line + 1,
                            ".".join(child),
                            "keep one of them",
                        )
                    )
                if index >= merged:
                    written.add(key)
                self.lines[".".join(child)] = key_node.start_mark.line + 1
                out[key] = self.build(value_node, child)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, str(i))) for i, item in enumerate(node.value)]
        value = self._constructor.construct_object(node, deep=True)
        if (
            isinstance(node, yaml.ScalarNode)
            and not node.style  # plain: None from PyYAML, "" from libyaml
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


MAX_DESCRIPTOR_BYTES = 1024 * 1024


def _read_text(path: Path) -> str:
    """The descriptor's text; a folder, FIFO, device or huge file is refused before reading."""
    file = str(path)
    # O_NONBLOCK: a FIFO would otherwise block the open until someone writes to it.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            hint = "pass the descriptor file, e.g. <folder>/shipforge.yaml"
            raise InvalidDescriptor(
                "not a file", (Issue("this is a folder, not a descriptor", file, hint=hint),)
            )
        if not stat.S_ISREG(mode):
            raise InvalidDescriptor(
                "not a file",
                (
                    Issue(
                        "not a regular file (a FIFO, socket or device)",
                        file,
                        hint="pass the descriptor file itself",
                    ),
                ),
            )
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(MAX_DESCRIPTOR_BYTES + 1)
    if len(data) > MAX_DESCRIPTOR_BYTES:
        raise InvalidDescriptor(
            "descriptor too large",
            (
                Issue(
                    f"larger than {MAX_DESCRIPTOR_BYTES} bytes",
                    file,
                    hint="a descriptor is a small hand-written file",
                ),
            ),
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise InvalidDescriptor(
            "unreadable descriptor",
            (
                Issue(
                    f"not UTF-8 text (byte {error.start})",
                    file,
                    line,
                    hint="save it as a UTF-8 text file",
                ),
            ),
        ) from None


def _read(path: Path) -> tuple[dict[str, Any], Lines, list[Issue]]:
    file = str(path)
    try:
        text = _read_text(path)
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
    except OSError as error:
        raise InvalidDescriptor(
            "unreadable descriptor",
            (
                Issue(
                    f"cannot read it: {error.strerror or error}", file, hint="check its permissions"
                ),
            ),
        ) from None
    too_deep = InvalidDescriptor(
        "descriptor too large",
        (
            Issue(
                "nested too deeply", file, hint="write it out plainly; a descriptor is a small file"
            ),
        ),
    )
    try:
        node = yaml.compose(text, Loader=yaml.CSafeLoader)  # libyaml: 10x faster, same nodes
    except RecursionError:
        # Composing may recurse: absurd nesting ends here, before MAX_DEPTH can count it.
        raise too_deep from None
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
    except RecursionError:
        raise too_deep from None
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
        choices = [str(c) for c in sub["enum"]]
        close = difflib.get_close_matches(str(error.instance), choices, n=1, cutoff=0.6)
        hint = f"did you mean `{close[0]}`?" if close else ""
        return here(f"`{error.instance}` is not one of: {', '.join(choices)}", hint)
    if kind == "minProperties":
        return here("must not be empty", _description_at(path))
    if kind in ("minimum", "maximum"):
        low, high = sub.get("minimum"), sub.get("maximum")
        return here(f"{error.instance} is out of range ({low} to {high})")
    if kind == "pattern":
        rule = _PATTERN_RULES.get(sub["pattern"], "")
        shown = f"`{error.instance}` is not valid here" + (f": {rule}" if rule else "")
        return here(shown, _description_at(path))
    if kind == "const":
        return here(f"must be {sub['const']}", "this shipforge reads descriptor version 1")
    return here(error.message, _description_at(path))


# What each schema pattern demands, in words: a regular expression is no message.
_PATTERN_RULES = {
    "^/[A-Za-z0-9._~/-]*$": "an HTTP path must start with / and hold only letters, digits "
    "and . _ ~ / -",
    "^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$": "a lowercase DNS label: a letter first, then "
    "letters, digits or '-', ending with a letter or digit, at most 40 characters",
    "^([1-9][0-9]*m|[0-9]+(\\.[0-9]{1,3})?)$": "a CPU quantity such as 500m or 0.5",
    "^[1-9][0-9]*(Mi|Gi)$": "a memory quantity in Mi or Gi such as 512Mi",
    "^[0-9]+(\\.[0-9]+)?$": "a version such as 16 or 3.12, quoted",
    "^[A-Z_][A-Z0-9_]*$": "an environment variable name: A-Z, 0-9 and _",
}


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
        node = root["definitions"][node["$ref"].rsplit("/", 1)[1]]
    if "$ref" in node:
        merged = dict(root["definitions"][node["$ref"].rsplit("/", 1)[1]])
        merged.update({k: v for k, v in node.items() if k != "$ref"})
        return merged
    return node


@cache
def _fast_validator(path: Path) -> Any:
    """A compiled jsonschema-rs validator for the schema at path, or None without the library."""
    try:
        import jsonschema_rs
    except ImportError:
        return None
    return jsonschema_rs.validator_for(json.loads(path.read_text(encoding="utf-8")))


def schema_valid(path: Path, data: Any) -> bool:
    """Whether data is valid against the schema at path, asked of jsonschema-rs.

    Importing it costs a few milliseconds against jsonschema's ~100 (a tenth of a generate):
    only an invalid document pays for jsonschema, whose errors the messages are made from.
    False when in doubt (no library, a value it cannot read): the full check then decides.
    """
    validator = _fast_validator(path)
    if validator is None:
        return False
    try:
        return bool(validator.is_valid(data))
    except (ValueError, TypeError, OverflowError):
        return False


def validate_schema(data: dict[str, Any], file: str, lines: Lines) -> list[Issue]:
    """Check the raw data against the JSON Schema, one clear issue per problem."""
    if schema_valid(SCHEMA_PATH, data):
        return []
    from jsonschema import Draft7Validator

    validator = Draft7Validator(schema())
    issues: list[Issue] = []
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        for issue in _schema_issue(error, file, lines):
            if issue not in issues:
                issues.append(issue)
    return issues


def _get(mapping: Any, key: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
    """mapping[key] when it has the expected type, else default.

    The contract's rules run even when the schema found problems (every problem is listed in
    one run), so they must read data whose shape is not yet known to be right.
    """
    value = mapping.get(key, default) if isinstance(mapping, dict) else default
    if isinstance(value, bool) and kind in (int, (int, float)):
        return default
    return value if isinstance(value, kind) else default


# Names and value shapes that say "this is a credential": such a value belongs in the
# platform's secret store, never in `env:` (which lands in committed files).
_SECRET_NAME = re.compile(
    r"(^|_)(PASSWORD|PASSWD|PASS|SECRET|SECRET_KEY|TOKEN|API_?KEY|PRIVATE_KEY|ACCESS_KEY|"
    r"CREDENTIALS?|AUTH_KEY)$"
)
_SECRET_VALUE = re.compile(
    r"(-----BEGIN [A-Z ]*PRIVATE KEY-----"
    r"|\bAKIA[0-9A-Z]{16}\b"
    r"|\bgh[pousr]_[A-Za-z0-9]{30,}"
    r"|\bglpat-[A-Za-z0-9_-]{20,}"
    r"|\bsk-[A-Za-z0-9_-]{20,}"
    r"|\bxox[baprs]-[A-Za-z0-9-]{10,}"
    r"|\bAIza[0-9A-Za-z_-]{35}"
    r"|[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@)"
)


def _looks_secret(key: str, value: str) -> bool:
    """Whether an env entry carries a credential: a secret-like name with a value, or a key shape."""
    if _SECRET_VALUE.search(value):
        return True
    return bool(value.strip()) and bool(_SECRET_NAME.search(key))


def semantic_issues(data: dict[str, Any], file: str, lines: Lines) -> list[Issue]:
    """The contract's rules that a JSON Schema cannot state (data may still be ill-shaped)."""
    issues: list[Issue] = []

    def add(path: str, message: str, hint: str = "") -> None:
        issues.append(Issue(message, file, lines.get(path), path, hint))

    targets = _get(data, "targets", dict, {})
    datastores = _get(data, "datastores", dict, {})
    services = _get(data, "services", dict, {})
    for name, service in services.items():
        if not isinstance(service, dict):
            continue
        where = f"services.{name}"
        raw_path = _get(service, "path", str, ".")
        pure = PurePosixPath(raw_path)
        if pure.is_absolute() or raw_path.startswith("~") or ".." in pure.parts or "\\" in raw_path:
            add(
                f"{where}.path",
                f"path `{raw_path}` leaves the repository",
                "use a folder relative to the repository root, without '..'",
            )
        elif any(part in (".git", ".shipforge") for part in pure.parts):
            add(
                f"{where}.path",
                f"path `{raw_path}` lies in .git or .shipforge, which shipforge never writes",
                "move the service's code to a folder of its own and point `path` there",
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
        runtime = _get(service, "runtime", str)
        manager = _get(service, "package_manager", str)
        allowed = {"python": ("pip", "poetry", "uv"), "node": ("npm", "pnpm", "yarn")}.get(
            runtime or "", ()
        )
        if manager is not None and allowed and manager not in allowed:
            add(
                f"{where}.package_manager",
                f"`{manager}` is not a {runtime} package manager",
                f"use one of: {', '.join(allowed)}",
            )
        raw_uses = service.get("uses", [])
        # `uses` is a list of datastores, or a map from datastore to the variable it reads.
        uses_map = raw_uses if isinstance(raw_uses, dict) else None
        uses = [
            u for u in (raw_uses if isinstance(raw_uses, list | dict) else []) if isinstance(u, str)
        ]
        for index, store in enumerate(uses):
            if store not in datastores:
                close = difflib.get_close_matches(store, list(datastores), n=1, cutoff=0.6)
                add(
                    f"{where}.uses.{store if uses_map is not None else index}",
                    f"datastore `{store}` is not declared",
                    f"did you mean `{close[0]}`?"
                    if close
                    else f"add `datastores: {{{store}: {{}}}}` or remove it from uses",
                )
        if "port" not in service:
            for key in ("health", "public"):
                if service.get(key):
                    add(
                        f"{where}.{key}",
                        f"`{key}` needs a port: only web services have one",
                        "add `port:` or remove it",
                    )
        scale = _get(service, "autoscale", dict, {})
        # JSON Schema's integer admits 8000.0 and 1e3; they would land as `EXPOSE 8000.0`.
        for key, value in [
            *((k, service.get(k)) for k in ("port", "replicas")),
            *((f"autoscale.{k}", scale.get(k)) for k in ("min", "max", "cpu")),
        ]:
            if isinstance(value, float):
                add(
                    f"{where}.{key}",
                    f"`{value}` is not a whole number",
                    "write it without a decimal point or exponent",
                )
        cpu = _get(service, "cpu", str)
        if cpu is not None and not re.search(r"[1-9]", cpu):
            add(f"{where}.cpu", f"cpu `{cpu}` is no CPU at all", "ask for more than 0, e.g. 250m")
        low, high = _get(scale, "min", int), _get(scale, "max", int)
        if low is not None and high is not None and low > high:
            add(f"{where}.autoscale", f"min {low} is above max {high}")
        most = max(_get(service, "replicas", int, 1), high or 1)
        volumes = [v for v in _get(service, "volumes", list, []) if isinstance(v, dict)]
        if volumes and most > 1:
            add(
                f"{where}.volumes",
                f"volumes need a single instance, and this service can run {most}",
                "one disk cannot be safely shared by several instances: use replicas 1 without "
                "autoscale, or keep the state in a datastore",
            )
        seen: set[str] = set()
        for i, volume in enumerate(_get(service, "volumes", list, [])):
            volume_name = _get(volume, "name", str)
            if volume_name is None:
                continue
            if volume_name in seen:
                add(f"{where}.volumes.{i}.name", f"volume `{volume_name}` is declared twice")
            seen.add(volume_name)
        env = _get(service, "env", dict, {})
        secrets = [s for s in _get(service, "secrets", list, []) if isinstance(s, str)]
        reserved = {"DATABASE_URL": "postgres", "REDIS_URL": "redis"}
        if uses_map is not None:
            reserved = {v: store for store, v in uses_map.items() if isinstance(v, str)}
            if len(reserved) < len(uses_map):
                add(f"{where}.uses", "two datastores are given the same variable", "name each once")
        for key, store in reserved.items():
            if store in uses and (key in env or key in secrets):
                add(
                    f"{where}.uses",
                    f"{key} is provided by `uses` ({store})",
                    f"remove {key} from env/secrets",
                )
        issues.extend(_image_issues(service, where, file, lines))
        for key in sorted(set(env) & set(secrets)):
            add(f"{where}.env.{key}", f"`{key}` is both configuration and a secret", "keep one")
        for key, value in sorted(env.items()):
            if isinstance(value, str) and key not in secrets and _looks_secret(key, value):
                add(
                    f"{where}.env.{key}",
                    f"`{key}` looks like a secret, and env values are written into committed files",
                    f"move it to `secrets: [{key}]` and keep the value in the platform's secret "
                    "store (GitHub/GitLab environment secrets, Kubernetes Secrets, a cloud "
                    "secret manager); a value that is not a secret can be renamed",
                )

    # compose.yaml and compose.production.yaml publish every web service's ports (one per
    # replica) and the development datastores' on the host: two listeners cannot share one.
    if targets.get("compose", True) is not False:
        published = {
            port: f"the development {store}"
            for store, port in (("postgres", 5432), ("redis", 6379))
            if store in datastores
        }
        for name, service in services.items():
            port = _get(service, "port", int)
            if port is None:
                continue
            replicas = max(_get(service, "replicas", int, 1), 1)
            for one in range(port, port + replicas):
                if one in published:
                    add(
                        f"services.{name}.port",
                        f"host port {one} is published by {published[one]} too, in the compose "
                        "files",
                        "give each service its own port (replicas take the ports after it)",
                    )
                    break
                published[one] = f"service `{name}`"

    # Names the generated files already use beside the services' own.
    monitoring = _get(data, "monitoring", dict, {})
    reserved = {store: "a declared datastore" for store in datastores}
    if monitoring.get("prometheus"):
        reserved["prometheus"] = "the monitoring profile's Prometheus"
    if monitoring.get("grafana"):
        reserved["grafana"] = "the monitoring profile's Grafana"
    if targets.get("kubernetes"):
        reserved["default-deny"] = "the Kubernetes default-deny NetworkPolicy"
    names = set(services)
    for name in services:
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

    deploy = _get(data, "deploy", str, "none")
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
    # A registry the platform cannot run images from (generator/naming.py decides, for CI and
    # Terraform alike).
    literal = _get(_get(data, "project", dict, {}), "registry", str, "")
    clouds = {targets.get("terraform", "none"), _get(data, "deploy", str, "none")}
    for cloud in sorted(clouds & set(naming.CLOUD_REGISTRY)):
        refusal = naming.registry_refusal(literal, targets.get("ci", "none"), cloud)
        if refusal:
            add("project.registry", *refusal)
            break
    if monitoring.get("grafana") and not monitoring.get("prometheus"):
        add(
            "monitoring.grafana",
            "grafana dashboards need prometheus as their data source",
            "set monitoring.prometheus: true",
        )
    issues.extend(_line_break_issues(data, file, lines))
    return issues


# Line breaks besides \n that some readers honour (YAML 1.1, Python's splitlines, JavaScript,
# Markdown renderers): a value holding one could read back as two lines or two arguments.
_SEPARATORS = {"\u0085": "U+0085 (NEL)", "\u2028": "U+2028", "\u2029": "U+2029"}
# Free text that only ever lands in comments and prose (whitespace folded there); env values
# are exempt too (see below).
_FREE_TEXT = ("project.description",)
# One shell command each, emitted as one Dockerfile instruction or one Markdown cell.
_ONE_LINE = ("build", "release")


def _free_form(where: str) -> bool:
    """Values the schema constrains by no pattern: commands, env values, free text."""
    key = where.rsplit(".", 1)[-1]
    return where in _FREE_TEXT or ".env." in where or key in ("command", *_ONE_LINE)


def _control_characters(text: str) -> list[str]:
    """C0 controls besides tab and line breaks, and DEL."""
    return [c for c in text if (c < " " and c not in "\t\n\r") or c == "\x7f"]


def _line_break_issues(data: Any, file: str, lines: Lines, where: str = "") -> list[Issue]:
    """Unicode line separators anywhere but free text; any line break in build and release."""
    found: list[Issue] = []
    if isinstance(data, dict):
        for key, value in data.items():
            found += _line_break_issues(value, file, lines, f"{where}.{key}" if where else str(key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += _line_break_issues(value, file, lines, f"{where}[{index}]")
    elif isinstance(data, str) and _free_form(where) and (controls := _control_characters(data)):
        # No argument or environment value can hold one (execve ends strings at NUL; the
        # others corrupt the files they are written into). Fields with a pattern refuse
        # them in the schema already.
        found.append(
            Issue(
                f"contains the control character U+{ord(controls[0]):04X}",
                file,
                lines.get(where),
                where,
                "remove it; a YAML escape such as \\0 or \\x01 writes one",
            )
        )
    elif isinstance(data, str) and where not in _FREE_TEXT and ".env." not in where:
        # Environment values are data every writer escapes or quotes (JSON, YAML, HCL escapes;
        # inside .env double quotes, where readers end lines at \n only): they may hold them.
        named = [name for char, name in _SEPARATORS.items() if char in data]
        key = where.rsplit(".", 1)[-1]
        if named:
            found.append(
                Issue(
                    f"contains the line separator {named[0]}, which some readers of the "
                    "generated files take as a line break",
                    file,
                    lines.get(where),
                    where,
                    "remove it; write a plain space where one is meant",
                )
            )
        elif where.startswith("services.") and key in _ONE_LINE and ("\n" in data or "\r" in data):
            found.append(
                Issue(
                    f"`{key}` is one command on one line: a line break would start another "
                    "Dockerfile instruction",
                    file,
                    lines.get(where),
                    where,
                    "join the commands with && (or put them in a script the image runs)",
                )
            )
    return found


# What the image has at run time besides the service's own files and the runtime.
_RUNTIME_TOOLS = {"python": ("pip", "poetry", "uv"), "node": ("npm", "pnpm", "yarn")}


def _image_issues(service: dict[str, Any], where: str, file: str, lines: Lines) -> list[Issue]:
    """What the generated image cannot run: its port, or a command whose tool it lacks."""
    issues: list[Issue] = []

    def add(path: str, message: str, hint: str = "") -> None:
        issues.append(Issue(message, file, lines.get(path), path, hint))

    runtime = _get(service, "runtime", str)
    if runtime not in ("python", "node"):
        return issues  # the schema says what is wrong with it
    manager = _get(service, "package_manager", str) or {"python": "pip", "node": "npm"}[runtime]
    port = service.get("port")
    if isinstance(port, int) and port < 1024:
        add(
            f"{where}.port",
            f"port {port} needs root: the image runs as a non-root user with every capability "
            "dropped, which cannot listen below 1024",
            "listen on a port from 1024 up (e.g. 8080); compose, the Kubernetes Service and "
            "the load balancers publish it on 80/443 for you",
        )
    for key in ("command", "release", "build"):
        try:
            first = shlex.split(_get(service, key, str, ""))[:1]
        except ValueError:
            continue  # reported above
        tool = first[0] if first else ""
        others = [t for t in _RUNTIME_TOOLS[runtime] if t != manager and t != "npm"]
        if tool in others:
            lockfile = {"pnpm": "pnpm-lock.yaml", "yarn": "yarn.lock"}.get(tool, tool)
            add(
                f"{where}.{key}",
                f"`{key}` runs {tool}, and the service's package manager is {manager}",
                f"set package_manager: {tool} (with its {lockfile}), or run the script's "
                "command itself",
            )
        elif runtime == "python" and tool in ("poetry", "uv", "pip") and key != "build":
            add(
                f"{where}.{key}",
                f"`{key}` runs {tool}, which the runtime image does not carry",
                "the virtualenv's bin folder is on PATH: run the program itself "
                "(e.g. `uvicorn app:app` instead of `poetry run uvicorn app:app`)",
            )
    return issues


def load(path: Path) -> Any:
    """Read, validate and resolve a descriptor into a Project, or raise with every issue."""
    return load_with_notes(path)[0]


def load_with_notes(path: Path) -> tuple[Any, list[Issue]]:
    """load(), plus the plain scalars kept as written that YAML 1.1 tools would retype."""
    from generator.model import build_project

    data, lines, notes = _read(path)
    project = build_project(validate(data, str(path), lines))
    issues = path_collisions(project, str(path), lines)
    if issues:
        count = f"{len(issues)} problem{'s' if len(issues) > 1 else ''}"
        raise InvalidDescriptor(f"{path}: {count}", tuple(issues))
    return project, notes + _silent_gaps(project, str(path), lines)


def path_collisions(project: Any, file: str, lines: Lines) -> list[Issue]:
    """Service paths that would put a build context where shipforge writes its own files.

    A path equal to (or below) a generated file, or inside a folder the enabled targets
    generate (k8s, deploy, monitoring ...), is refused here, before anything is written.
    """
    files, folders = _generated_names(project)
    issues: list[Issue] = []
    for service in project.services:
        parts = PurePosixPath(service.path).parts
        where = f"services.{service.name}.path"
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        # (.git and .shipforge are refused with the contract's other rules, semantic_issues.)
        if hit := next((p for p in prefixes if p in files), None):
            message = f"path `{service.path}` collides with the generated file `{hit}`"
        elif parts and (hit := parts[0]) in folders:
            message = f"path `{service.path}` lies in the generated folder `{hit}`"
        else:
            continue
        hint = "move the service's code to a folder of its own and point `path` there"
        issues.append(Issue(message, file, lines.get(where), where, hint))
    return issues


def _generated_names(project: Any) -> tuple[set[str], set[str]]:
    """The files and top-level folders the enabled targets generate, cheaply.

    Only the template tree's top level is rendered (its names read `model.targets` and
    friends, not the per-target views, which cost as much as a generate); the Dockerfiles and
    .dockerignores of the services come from the model.
    """
    import jinja2

    from generator.render import (
        COPIER_ONLY,
        MACROS,
        SUFFIX,
        TEMPLATE_DIR,
        _render_part,
        environment,
    )

    env = environment()
    variables = {"model": project.context()}
    files = {image.dockerfile for image in project.dockerfiles} | set(project.dockerignores)
    folders: set[str] = set()
    for entry in TEMPLATE_DIR.iterdir():
        if COPIER_ONLY in entry.name or f"{entry.name}/" == MACROS or "yield" in entry.name:
            continue
        part = entry.name if entry.is_dir() else entry.name.removesuffix(SUFFIX)
        try:
            names = [name for name, _ in _render_part(env, part, variables) if name]
        except jinja2.UndefinedError:  # a top-level name reading a view: render them all
            from generator.targets import context

            names = [name for name, _ in _render_part(env, part, context(project)) if name]
        (folders if entry.is_dir() else files).update(names)
    return files, folders


def _silent_gaps(project: Any, file: str, lines: Lines) -> list[Issue]:
    """Valid choices whose consequence is easy to miss: said once, as notes."""
    gaps: list[Issue] = []
    if project.targets.kubernetes:
        bare = [e.name for e in project.environments if not e.domain]
        for service in project.services:
            if service.public and bare:
                where = f"services.{service.name}.public"
                gaps.append(
                    Issue(
                        f"public, but {', '.join(bare)} ha{'ve' if len(bare) > 1 else 's'} no "
                        "domain: no Ingress is generated there",
                        file,
                        lines.get(where),
                        where,
                        "set environments.<name>.domain to serve it from the internet",
                    )
                )
    return gaps


def validate(data: dict[str, Any], file: str, lines: Lines | None = None) -> dict[str, Any]:
    """Raise InvalidDescriptor listing every issue; return the data when it is valid."""
    lines = lines or {}
    issues = validate_schema(data, file, lines)
    if isinstance(data, dict):
        # Every problem in one run: the contract's rules run on whatever is well-shaped.
        issues += [i for i in semantic_issues(data, file, lines) if i not in issues]
    # In the order of the file, so a user can fix them top to bottom.
    issues.sort(key=lambda i: (i.line is None, i.line or 0, i.path))
    if issues:
        count = f"{len(issues)} problem{'s' if len(issues) > 1 else ''}"
        raise InvalidDescriptor(f"{file}: {count}", tuple(issues))
    return data
