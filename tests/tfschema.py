"""Offline provider-schema check for the generated Terraform stacks.

`terraform validate` needs the provider binaries, which cannot be downloaded here. The CDK
Terrain bindings on PyPI (`cdktn-provider-aws`, `-google`, `-azurerm`) are generated from
`terraform providers schema -json`, and their jsii assembly (JSON inside the wheel) carries
every resource and data source, each argument and nested block, whether it is required, and the
computed attributes; every config property links to the registry docs with its exact Terraform
name. `build` condenses one wheel into a small JSON schema (cached in .tools/tfschema by
tests/install-tools.sh); `check` reads a stack with python-hcl2 and reports, with file and
line, what `terraform validate` would refuse:

- unknown resource/data types and provider-block arguments;
- unknown arguments and nested blocks (following `dynamic` blocks into `content`);
- an attribute written as a block or a block written as an attribute;
- missing required arguments and blocks;
- references to undeclared resources, unknown attributes, instance keys on a resource without
  `count`/`for_each` and missing ones on a resource with them;
- `lifecycle.ignore_changes` paths that do not exist;
- undeclared `var.`/`local.` names, and `local.names` keys some environment lacks.

Usage: python -m tests.tfschema build WHEEL OUT.json.gz
       python -m tests.tfschema check [--schemas DIR] STACK_DIR...
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import re
import sys
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).resolve().parent.parent / ".tools" / "tfschema"

# The schema versions the suite checks against, one per provider major a pin may allow. The
# PyPI package version and the provider version it was generated from (read from its docs links).
SCHEMAS: dict[str, tuple[str, str]] = {
    # provider-major: (pypi requirement, provider version)
    "aws-6": ("cdktn-provider-aws==25.8.1", "6.69.1"),
    "google-7": ("cdktn-provider-google==20.3.1", "7.46.1"),
    "google-8": ("cdktn-provider-google==21.1.0", "8.7.0"),
    "azurerm-5": ("cdktn-provider-azurerm==18.9.0", "5.10.0"),
    "random-3": ("cdktn-provider-random==15.0.1", "3.9.1"),
}

META_ARGUMENTS = {"count", "for_each", "provider", "depends_on", "lifecycle", "provisioner"}
LIFECYCLE = {
    "create_before_destroy",
    "prevent_destroy",
    "ignore_changes",
    "replace_triggered_by",
    "precondition",
    "postcondition",
}
# Providers whose resources a stack may use without a schema here: checked only for references.
UNCHECKED_PROVIDERS = {"terraform", "time", "tls", "null"}


# ---- building a condensed schema from a jsii assembly ----------------------------------------

_DOC_LINK = re.compile(r"Docs at Terraform Registry: \{@link (\S+?)#(\S+) ")
_TYPE_LINK = re.compile(
    r"\{@link https://registry\.terraform\.io/providers/[^/]+/([^/]+)/([^/]+)/docs/"
    r"(resources|data-sources|ephemeral-resources)/(\S+) "
)


def _snake(camel: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", camel).lower()


def _struct_of(jtype: dict[str, Any], types: dict[str, Any]) -> tuple[str | None, bool]:
    """The nested-block struct a property type names (if any), and whether it is a list."""
    if "fqn" in jtype:
        fqn = jtype["fqn"]
        if fqn in types and types[fqn].get("kind") == "interface" and types[fqn].get("datatype"):
            return fqn, False
        return None, False
    if "collection" in jtype:
        inner, _ = _struct_of(jtype["collection"]["elementtype"], types)
        return inner, inner is not None
    if "union" in jtype:
        for option in jtype["union"]["types"]:
            inner, many = _struct_of(option, types)
            if inner:
                return inner, many
    return None, False


def _node(
    struct_fqn: str, types: dict[str, Any], output_fqn: str | None, seen: tuple[str, ...] = ()
) -> dict[str, Any]:
    """{"args": {name: [required, kind, nested]}, "attrs": [computed names]} of one block.

    kind is "a" for an attribute, "b" for a nested block. A block that contains itself (a few
    AWS rule languages do) becomes {"any": true} at its second level: not checked further.
    """
    if struct_fqn in seen:
        return {"any": True, "args": {}, "attrs": []}
    args: dict[str, Any] = {}
    camel_to_tf: dict[str, str] = {}
    for prop in types[struct_fqn].get("properties", []):
        docs = prop.get("docs", {})
        text = f"{docs.get('summary', '')} {docs.get('remarks', '')} "
        link = _DOC_LINK.search(text)
        name = link.group(2) if link else _snake(prop["name"])
        camel_to_tf[prop["name"]] = name
        nested, _ = _struct_of(prop["type"], types)
        # "b": a nested block; "o": an object attribute that Terraform also accepts in block
        # syntax (attributes-as-blocks, like aws_route_table.route); "a": any other attribute.
        # A block typed `any` in the binding (recursive ones, like WAF statements) is not
        # followed.
        is_block = docs.get("summary", "").strip().endswith("block.")
        kind = "b" if is_block else "o" if nested else "a"
        entry: list[Any] = [not prop.get("optional", False), kind]
        if nested:
            entry.append(_node(nested, types, f"{nested}OutputReference", (*seen, struct_fqn)))
        elif is_block:
            entry.append({"any": True, "args": {}, "attrs": []})
        args[name] = entry
    attrs: set[str] = set()
    if output_fqn and output_fqn in types:
        for prop in types[output_fqn].get("properties", []):
            pname = prop["name"]
            if pname.endswith("Input") or pname in {"internalValue", "fqn", "tfResourceType"}:
                continue
            tf_name = camel_to_tf.get(pname, _snake(pname))
            if tf_name not in args:
                attrs.add(tf_name)
    return {"args": args, "attrs": sorted(attrs)}


def read_jsii(wheel: Path) -> dict[str, Any]:
    """The jsii assembly inside a cdktn provider wheel (following a gzip file redirect)."""
    with zipfile.ZipFile(wheel) as whl:
        name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(whl.read(name))) as tgz:
            member = tgz.extractfile("package/.jsii")
            assert member is not None
            assembly: dict[str, Any] = json.load(member)
            if assembly.get("schema") == "jsii/file-redirect":
                target = tgz.extractfile(f"package/{assembly['filename']}")
                assert target is not None
                raw = target.read()
                if assembly.get("compression") == "gzip":
                    raw = gzip.decompress(raw)
                assembly = json.loads(raw)
    return assembly


def build(wheel: Path) -> dict[str, Any]:
    """A condensed schema: provider config, resources and data sources, by Terraform type."""
    types = read_jsii(wheel)["types"]
    out: dict[str, Any] = {
        "resources": {},
        "data": {},
        "ephemeral": {},
        "provider": None,
        "version": "",
    }
    for fqn, jtype in types.items():
        base = jtype.get("base")
        if jtype.get("kind") != "class" or base not in {
            "cdktn.TerraformResource",
            "cdktn.TerraformDataSource",
            "cdktn.TerraformEphemeralResource",
            "cdktn.TerraformProvider",
        }:
            continue
        # The config struct is the initializer's `config` parameter (usually <Class>Config,
        # but e.g. Wafv2WebAclAssociationConfigA where the name would clash).
        params = jtype.get("initializer", {}).get("parameters", [])
        config = next((p["type"].get("fqn") for p in params if p["name"] == "config"), None)
        if config not in types:
            continue
        node = _node(config, types, fqn)
        summary = jtype.get("docs", {}).get("summary", "")
        if base == "cdktn.TerraformProvider":
            match = re.search(r"/providers/[^/]+/([^/]+)/([^/]+)/docs ", summary + " ")
            out["provider"] = node
            if match:
                out["name"], out["version"] = match.group(1), match.group(2)
            continue
        link = _TYPE_LINK.search(summary + " ")
        if not link:
            continue
        provider, version, kind, short = link.groups()
        out["name"], out["version"] = provider, version
        table = {"resources": "resources", "data-sources": "data"}.get(kind, "ephemeral")
        out[table][f"{provider}_{short}"] = node
    return out


def load_schema(key: str, folder: Path = SCHEMA_DIR) -> dict[str, Any]:
    path = folder / f"{key}.json.gz"
    data: dict[str, Any] = json.loads(gzip.decompress(path.read_bytes()))
    return data


# ---- reading a stack ---------------------------------------------------------------------------


@dataclass
class Finding:
    file: str
    line: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: [{self.code}] {self.message}"


@dataclass
class Block:
    kind: str  # resource, data, variable, locals, provider, output, terraform, module
    labels: tuple[str, ...]
    body: dict[str, Any]
    file: str
    line: int


@dataclass
class Stack:
    folder: Path
    blocks: list[Block] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)


def _unquote(key: str) -> str:
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] == '"' else key


def _line_of(text: str, kind: str, labels: tuple[str, ...]) -> int:
    pattern = r"^\s*" + re.escape(kind) + "".join(r'\s+"' + re.escape(lab) + '"' for lab in labels)
    match = re.search(pattern + r"\s*\{", text, re.M)
    return text[: match.start()].count("\n") + 1 if match else 1


def read_stack(folder: Path) -> Stack:
    import hcl2
    from hcl2 import SerializationOptions

    stack = Stack(folder)
    options = SerializationOptions(explicit_blocks=True, with_comments=False)
    for path in sorted(folder.glob("*.tf")):
        text = path.read_text(encoding="utf-8")
        stack.texts[path.name] = text
        doc = hcl2.loads(text, serialization_options=options)
        for kind, entries in doc.items():
            for entry in entries if isinstance(entries, list) else [entries]:
                depth = {
                    "resource": 2,
                    "data": 2,
                    "ephemeral": 2,
                    "variable": 1,
                    "output": 1,
                    "provider": 1,
                    "module": 1,
                }.get(kind, 0)
                _collect(stack, path.name, text, kind, entry, depth, ())
    return stack


def _collect(
    stack: Stack, file: str, text: str, kind: str, entry: Any, depth: int, labels: tuple[str, ...]
) -> None:
    if depth == 0:
        body = {k: v for k, v in entry.items() if k != "__is_block__"}
        stack.blocks.append(Block(kind, labels, body, file, _line_of(text, kind, labels)))
        return
    for label, inner in entry.items():
        if label == "__is_block__":
            continue
        _collect(stack, file, text, kind, inner, depth - 1, (*labels, _unquote(label)))


# ---- expressions -------------------------------------------------------------------------------

_TRAVERSAL = re.compile(
    r"(?<![\w.\"'])([a-zA-Z_][\w-]*)((?:\.[a-zA-Z_][\w-]*|\.\d+|\[[^\[\]]*\]|\.\*|\[\*\])*)"
)
_STEP = re.compile(r"\.([a-zA-Z_][\w-]*)|\.(\d+)|\[([^\[\]]*)\]|\.\*|\[\*\]")


def expressions(value: str) -> list[str]:
    """The expression parts of a python-hcl2 value: `${...}` of a bare expression or of a
    quoted template, with the literal text of quoted strings left out."""
    out: list[str] = []
    if value.startswith("${") and value.endswith("}") and not value.startswith('"'):
        _scan_expression(value[2:-1], out)
    else:
        _scan_template(value, out)
    return out


def _scan_template(text: str, out: list[str]) -> None:
    i = 0
    while i < len(text):
        if text.startswith("$${", i) or text.startswith("%%{", i):
            i += 3
        elif text.startswith("${", i) or text.startswith("%{", i):
            end = _matching(text, i + 2)
            _scan_expression(text[i + 2 : end], out)
            i = end + 1
        else:
            i += 1


def _matching(text: str, start: int) -> int:
    """The index of the `}` closing an interpolation opened just before `start`."""
    depth, i = 1, start
    while i < len(text):
        char = text[i]
        if char == '"':
            i = _string_end(text, i)
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return len(text)


def _string_end(text: str, start: int) -> int:
    """The index just past the quoted string that starts at `start`."""
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text.startswith("${", i) or text.startswith("%{", i):
            i = _matching(text, i + 2) + 1
            continue
        if text[i] == '"':
            return i + 1
        i += 1
    return i


def _scan_expression(expr: str, out: list[str]) -> None:
    """Splits an expression into its code (kept) and its string literals (templates scanned)."""
    code: list[str] = []
    i = 0
    while i < len(expr):
        if expr[i] == '"':
            end = _string_end(expr, i)
            _scan_template(expr[i + 1 : end - 1], out)
            code.append(' "" ')
            i = end
        elif expr.startswith("<<", i):
            # A heredoc: its body is a template.
            match = re.match(r"<<-?(\w+)\n(.*?)\n\s*\1", expr[i:], re.S)
            if not match:
                code.append(expr[i:])
                break
            _scan_template(match.group(2), out)
            i += match.end()
        else:
            code.append(expr[i])
            i += 1
    out.append("".join(code))


def traversals(code: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """Every `root.step[key]...` in expression code: root and its steps (kind, text)."""
    found = []
    for match in _TRAVERSAL.finditer(code):
        root, rest = match.group(1), match.group(2)
        after = code[match.end() : match.end() + 1]
        if after == "(":
            continue  # a function call
        steps: list[tuple[str, str]] = []
        for step in _STEP.finditer(rest):
            if step.group(1) is not None:
                steps.append(("attr", step.group(1)))
            elif step.group(2) is not None:
                steps.append(("index", step.group(2)))
            elif step.group(3) is not None:
                steps.append(("index", step.group(3)))
            else:
                steps.append(("splat", "*"))
        found.append((root, steps))
    return found


def _local_names(code: str) -> set[str]:
    """Names a `for` expression binds inside this code."""
    names: set[str] = set()
    for match in re.finditer(r"\bfor\s+([a-zA-Z_]\w*)(?:\s*,\s*([a-zA-Z_]\w*))?\s+in\b", code):
        names.update(n for n in match.groups() if n)
    return names


# ---- checking ----------------------------------------------------------------------------------

KEYWORDS = {"true", "false", "null", "for", "in", "if", "endif", "else", "endfor"}
OTHER_ROOTS = {"each", "count", "self", "path", "terraform", "module"}


class Checker:
    def __init__(self, stack: Stack, schemas: dict[str, dict[str, Any]]) -> None:
        self.stack = stack
        self.schemas = schemas  # provider name -> condensed schema
        self.findings: list[Finding] = []
        self.counts = {"blocks": 0, "arguments": 0, "references": 0}
        self.resources: dict[tuple[str, str, str], Block] = {}
        self.variables: set[str] = set()
        self.locals: dict[str, Any] = {}
        for block in stack.blocks:
            if block.kind in {"resource", "data", "ephemeral"}:
                self.resources[(block.kind, *block.labels)] = block  # type: ignore[index]
            elif block.kind == "variable":
                self.variables.add(block.labels[0])
            elif block.kind == "locals":
                self.locals.update(block.body)

    def report(self, block: Block, code: str, message: str) -> None:
        self.findings.append(Finding(block.file, block.line, code, message))

    def schema_of(self, kind: str, rtype: str) -> dict[str, Any] | bool | None:
        """The schema node of a type, None when unknown, False when its provider is unchecked."""
        provider = rtype.split("_", 1)[0]
        if provider in UNCHECKED_PROVIDERS or provider not in self.schemas:
            return False
        table = self.schemas[provider][{"resource": "resources"}.get(kind, kind)]
        node: dict[str, Any] | None = table.get(rtype)
        return node

    def run(self) -> list[Finding]:
        for block in self.stack.blocks:
            if block.kind in {"resource", "data", "ephemeral"}:
                self.counts["blocks"] += 1
                rtype, name = block.labels
                node = self.schema_of(block.kind, rtype)
                where = f"{block.kind} {rtype}.{name}"
                if node is None:
                    provider = self.schemas[rtype.split("_", 1)[0]]
                    self.report(
                        block,
                        "unknown-type",
                        f"{where}: no such type in {provider['name']} {provider['version']}",
                    )
                elif node:
                    self.check_body(block, where, block.body, node, top=True)
                self.check_lifecycle(block, node if node else None)
            elif block.kind == "provider":
                schema = self.schemas.get(block.labels[0])
                if schema and schema.get("provider"):
                    body = {k: v for k, v in block.body.items() if k != "alias"}
                    self.check_body(
                        block, f"provider {block.labels[0]}", body, schema["provider"], top=False
                    )
            self.check_references(block)
        self.check_names_keys()
        self.check_ephemeral_use()
        return self.findings

    def check_ephemeral_use(self) -> None:
        """Ephemeral values (ephemeral resources, ephemeral variables) may reach a resource only
        through a write-only argument (`*_wo`); anywhere else Terraform refuses the plan."""
        ephemeral_vars = {
            b.labels[0]
            for b in self.stack.blocks
            if b.kind == "variable" and b.body.get("ephemeral") is True
        }
        pattern = re.compile(
            r"\bephemeral\.[a-z]"
            + "".join(f"|\\bvar\\.{re.escape(v)}\\b" for v in sorted(ephemeral_vars))
        )

        def visit(block: Block, key: str, value: Any) -> None:
            if isinstance(value, dict):
                for k, v in value.items():
                    visit(block, k, v)
            elif isinstance(value, list):
                for item in value:
                    visit(block, key, item)
            elif (
                isinstance(value, str)
                and not key.endswith("_wo")
                and any(pattern.search(code) for code in expressions(value))
            ):
                self.report(
                    block,
                    "ephemeral-value",
                    f"`{key}` is not write-only: an ephemeral value cannot be set there",
                )

        for block in self.stack.blocks:
            if block.kind in {"resource", "data"}:
                visit(block, "", block.body)

    def check_body(
        self, block: Block, where: str, body: dict[str, Any], node: dict[str, Any], top: bool
    ) -> None:
        if node.get("any"):
            return
        args = node["args"]
        present = set()
        for key, value in body.items():
            if key == "__is_block__":
                continue
            if top and key in META_ARGUMENTS:
                continue
            if key == "dynamic":
                for dyn in value:
                    for label, dyn_body in dyn.items():
                        if label == "__is_block__":
                            continue
                        name = _unquote(label)
                        present.add(name)
                        self.check_dynamic(block, where, name, dyn_body, args)
                continue
            present.add(key)
            self.counts["arguments"] += 1
            spec = args.get(key)
            if spec is None:
                if key in node.get("attrs", []):
                    self.report(
                        block, "computed-only", f"{where}: `{key}` is computed, it cannot be set"
                    )
                else:
                    self.report(
                        block, "unknown-argument", f"{where}: unsupported argument or block `{key}`"
                    )
                continue
            is_block = (
                isinstance(value, list)
                and bool(value)
                and all(isinstance(v, dict) and v.get("__is_block__") for v in value)
            )
            if spec[1] == "o":
                for inner in value if isinstance(value, list) else [value]:
                    if isinstance(inner, dict):
                        self.check_body(block, f"{where}.{key}", inner, spec[2], top=False)
            elif spec[1] == "b" and not is_block:
                self.report(
                    block,
                    "block-syntax",
                    f"{where}: `{key}` is a block, write `{key} {{ ... }}`, not `{key} = ...`",
                )
            elif spec[1] == "a" and is_block:
                self.report(
                    block,
                    "attribute-syntax",
                    f"{where}: `{key}` is an argument, write `{key} = ...`, not a block",
                )
            elif is_block:
                for inner in value:
                    self.check_body(block, f"{where}.{key}", inner, spec[2], top=False)
        for name, spec in args.items():
            if spec[0] and name not in present:
                self.report(
                    block,
                    "missing-required",
                    f"{where}: required argument or block `{name}` is missing",
                )

    def check_dynamic(
        self, block: Block, where: str, name: str, body: dict[str, Any], args: dict[str, Any]
    ) -> None:
        spec = args.get(name)
        if spec is None or spec[1] == "a":
            self.report(
                block, "unknown-block", f"{where}: dynamic `{name}` is not a block of this type"
            )
            return
        if "for_each" not in body:
            self.report(block, "dynamic-for-each", f"{where}: dynamic `{name}` has no for_each")
        for content in body.get("content", []):
            self.check_body(block, f"{where}.{name}", content, spec[2], top=False)

    def check_lifecycle(self, block: Block, node: dict[str, Any] | None) -> None:
        for lifecycle in block.body.get("lifecycle", []):
            for key in lifecycle:
                if key != "__is_block__" and key not in LIFECYCLE:
                    self.report(block, "unknown-lifecycle", f"lifecycle: unknown `{key}`")
            paths = lifecycle.get("ignore_changes", [])
            if isinstance(paths, str):
                continue  # `all`
            for path in paths:
                code = expressions(path)[0] if expressions(path) else path
                if node is None:
                    continue
                for root, steps in traversals(code):
                    self.counts["references"] += 1
                    problem = self.walk(node, [("attr", root), *steps])
                    if problem:
                        self.report(
                            block, "ignore-changes", f"ignore_changes path `{code}`: {problem}"
                        )

    def walk(self, node: dict[str, Any], steps: list[tuple[str, str]]) -> str | None:
        """Follows attribute steps through nested blocks; a message when one does not exist."""
        i = 0
        while i < len(steps):
            kind, name = steps[i]
            if kind != "attr" or node.get("any"):
                return None  # an index into a map/list attribute: not typed here
            spec = node["args"].get(name)
            if spec is None:
                if name in node.get("attrs", []):
                    return None  # a computed attribute: its inner type is not followed
                return f"no attribute or block `{name}`"
            if spec[1] == "a":
                return None
            i += 1
            if i < len(steps) and steps[i][0] in {"index", "splat"}:
                i += 1
            node = spec[2]
        return None

    def check_references(self, block: Block) -> None:
        for value in _values(block.body):
            for code in expressions(value):
                bound = _local_names(code) | self.iterators(block)
                for root, steps in traversals(code):
                    if root in KEYWORDS or root in bound or root in OTHER_ROOTS:
                        continue
                    self.counts["references"] += 1
                    self.check_reference(block, root, steps)

    def iterators(self, block: Block) -> set[str]:
        names: set[str] = set()

        def visit(body: Any) -> None:
            if isinstance(body, dict):
                for key, value in body.items():
                    if key == "dynamic":
                        for dyn in value:
                            for label, inner in dyn.items():
                                if label != "__is_block__":
                                    iterator = inner.get("iterator")
                                    names.add(
                                        _unquote(iterator)
                                        if isinstance(iterator, str) and iterator.startswith('"')
                                        else (
                                            iterator.strip("${}") if iterator else _unquote(label)
                                        )
                                    )
                    visit(value)
            elif isinstance(body, list):
                for item in body:
                    visit(item)

        visit(block.body)
        return names

    def check_reference(self, block: Block, root: str, steps: list[tuple[str, str]]) -> None:
        def name_of(i: int) -> str | None:
            return steps[i][1] if len(steps) > i and steps[i][0] == "attr" else None

        if root == "var":
            if name_of(0) not in self.variables:
                self.report(block, "undeclared-variable", f"var.{name_of(0)} is not declared")
            return
        if root == "local":
            if name_of(0) not in self.locals:
                self.report(block, "undeclared-local", f"local.{name_of(0)} is not declared")
            return
        kind = "resource"
        if root in {"data", "ephemeral"}:
            kind, root, steps = root, steps[0][1] if steps else "", steps[1:]
        if "_" not in root:
            return  # an iterator or a name this checker does not model
        provider = root.split("_", 1)[0]
        if provider not in self.schemas and provider not in UNCHECKED_PROVIDERS:
            return
        name = name_of(0)
        prefix = "" if kind == "resource" else f"{kind}."
        target = self.resources.get((kind, root, name or ""))
        if target is None:
            self.report(
                block, "undeclared-resource", f"reference to undeclared {prefix}{root}.{name}"
            )
            return
        rest = steps[1:]
        repeated = "count" in target.body or "for_each" in target.body
        indexed = bool(rest) and rest[0][0] in {"index", "splat"}
        if indexed and not repeated:
            self.report(
                block,
                "instance-key",
                f"{prefix}{root}.{name} has no count or for_each; it takes no instance key",
            )
            return
        if repeated and not indexed and rest:
            self.report(
                block,
                "instance-key",
                f"{prefix}{root}.{name} has count or for_each: "
                f"`{prefix}{root}.{name}.{rest[0][1]}` needs an instance key",
            )
            return
        if indexed:
            rest = rest[1:]
        if not rest:
            return
        node = self.schema_of(kind, root)
        if not node:
            return
        first = rest[0][1]
        if first == "id" or first in node["args"] or first in node["attrs"]:
            problem = self.walk(node, rest) if first in node["args"] else None
            if problem:
                self.report(block, "unknown-attribute", f"{prefix}{root}.{name}: {problem}")
            return
        self.report(block, "unknown-attribute", f"{prefix}{root}.{name} has no attribute `{first}`")

    def check_names_keys(self) -> None:
        """`local.names.X` must exist in every environment's entry of names_by_environment."""
        by_env = self.locals.get("names_by_environment")
        if not isinstance(by_env, dict):
            return
        envs = {_unquote(k): v for k, v in by_env.items() if isinstance(v, dict)}
        for block in self.stack.blocks:
            for value in _values(block.body):
                for code in expressions(value):
                    for root, steps in traversals(code):
                        if root != "local" or not steps or steps[0][1] != "names":
                            continue
                        for env, names in envs.items():
                            current: Any = names
                            for kind, key in steps[1:]:
                                if kind == "splat" or not isinstance(current, dict):
                                    break
                                key = _unquote(key)
                                if not re.fullmatch(r"[\w-]+", key):
                                    break  # a computed key
                                if key not in current:
                                    self.report(
                                        block,
                                        "names-key",
                                        f"local.names has no `{key}` in environment {env}",
                                    )
                                    break
                                current = current[key]


def _values(body: Any) -> list[str]:
    out: list[str] = []
    if isinstance(body, str):
        out.append(body)
    elif isinstance(body, dict):
        for key, value in body.items():
            if key == "lifecycle":
                # ignore_changes paths are relative to the resource; checked apart.
                for lifecycle in value if isinstance(value, list) else []:
                    out.extend(
                        _values({k: v for k, v in lifecycle.items() if k != "ignore_changes"})
                    )
                continue
            out.extend(_values(value))
    elif isinstance(body, list):
        for item in body:
            out.extend(_values(item))
    return out


# ---- name lengths ------------------------------------------------------------------------------

# Platform limits on the names a stack sets (resource type, argument) -> longest allowed.
NAME_LIMITS: dict[tuple[str, str], int] = {
    ("aws_efs_file_system", "creation_token"): 64,
    ("aws_lb", "name"): 32,
    ("aws_lb_target_group", "name"): 32,
    ("aws_iam_role", "name"): 64,
    ("aws_iam_policy", "name"): 128,
    ("aws_db_instance", "identifier"): 63,
    ("aws_db_instance", "final_snapshot_identifier"): 255,
    ("aws_db_subnet_group", "name"): 255,
    ("aws_db_parameter_group", "name"): 255,
    ("aws_elasticache_replication_group", "replication_group_id"): 40,
    ("aws_elasticache_subnet_group", "name"): 255,
    ("aws_elasticache_parameter_group", "name"): 255,
    ("aws_elasticache_user", "user_id"): 40,
    ("aws_elasticache_user_group", "user_group_id"): 40,
    ("aws_ecs_cluster", "name"): 255,
    ("aws_ecs_service", "name"): 255,
    ("aws_ecs_task_definition", "family"): 255,
    ("aws_security_group", "name"): 255,
    ("aws_wafv2_web_acl", "name"): 128,
    ("aws_s3_bucket", "bucket"): 63,
    ("aws_s3_bucket", "bucket_prefix"): 37,
    ("aws_ecr_repository", "name"): 256,
    ("aws_secretsmanager_secret", "name"): 512,
    ("google_compute_network", "name"): 63,
    ("google_compute_subnetwork", "name"): 63,
    ("google_compute_firewall", "name"): 63,
    ("google_compute_global_address", "name"): 63,
    ("google_compute_router", "name"): 63,
    ("google_compute_router_nat", "name"): 63,
    ("google_service_account", "account_id"): 30,
    ("google_iam_workload_identity_pool", "workload_identity_pool_id"): 32,
    ("google_iam_workload_identity_pool_provider", "workload_identity_pool_provider_id"): 32,
    ("google_cloud_run_v2_service", "name"): 49,
    ("google_cloud_run_v2_job", "name"): 63,
    ("google_cloud_run_v2_worker_pool", "name"): 49,
    ("google_cloud_run_domain_mapping", "name"): 253,
    ("google_redis_instance", "name"): 40,
    ("google_sql_database_instance", "name"): 84,
    ("google_storage_bucket", "name"): 63,
    ("google_artifact_registry_repository", "repository_id"): 63,
    ("google_secret_manager_secret", "secret_id"): 255,
    ("azurerm_resource_group", "name"): 90,
    ("azurerm_container_app", "name"): 32,
    ("azurerm_container_app_job", "name"): 32,
    ("azurerm_container_app_environment", "name"): 60,
    ("azurerm_container_app_environment_storage", "name"): 32,
    ("azurerm_container_app_custom_domain", "name"): 253,
    ("azurerm_storage_account", "name"): 24,
    ("azurerm_storage_share", "name"): 63,
    ("azurerm_key_vault", "name"): 24,
    ("azurerm_key_vault_secret", "name"): 127,
    ("azurerm_container_registry", "name"): 50,
    ("azurerm_log_analytics_workspace", "name"): 63,
    ("azurerm_virtual_network", "name"): 64,
    ("azurerm_subnet", "name"): 80,
    ("azurerm_network_security_group", "name"): 80,
    ("azurerm_user_assigned_identity", "name"): 128,
    ("azurerm_postgresql_flexible_server", "name"): 63,
    ("azurerm_redis_cache", "name"): 63,
    ("azurerm_managed_redis", "name"): 60,
    ("azurerm_private_endpoint", "name"): 64,
    ("azurerm_private_dns_zone_virtual_network_link", "name"): 80,
    ("azurerm_federated_identity_credential", "name"): 120,
}

_INTERPOLATION = re.compile(r"\$\{([^{}]*)\}")


def name_lengths(stack: Stack) -> tuple[list[Finding], int]:
    """Every limited name, evaluated per environment from local.names; (over-long, evaluated).

    A name is evaluated when every part of it is known: a literal, `local.names.*`,
    `var.environment`, `local.suffix` or `substr(..., 0, N)` (N characters); others are skipped.
    """
    checker = Checker(stack, {})
    by_env = checker.locals.get("names_by_environment")
    if not isinstance(by_env, dict):
        return [], 0
    suffix_len = None
    suffix = checker.locals.get("suffix")
    if isinstance(suffix, str):
        found = re.search(r"substr\(.*,\s*0,\s*(\d+)\)", suffix)
        suffix_len = int(found.group(1)) if found else None
    findings: list[Finding] = []
    evaluated = 0
    for block in stack.blocks:
        if block.kind != "resource":
            continue
        for (rtype, arg), limit in NAME_LIMITS.items():
            if block.labels[0] != rtype or not isinstance(block.body.get(arg), str):
                continue
            raw: str = block.body[arg]
            for env, names in by_env.items():
                value = _evaluate(raw, _unquote(env), names, suffix_len)
                if value is None:
                    continue
                evaluated += 1
                if len(value) > limit:
                    findings.append(
                        Finding(
                            block.file,
                            block.line,
                            "name-too-long",
                            f"{rtype}.{block.labels[1]}.{arg} in environment "
                            f"{_unquote(env)} is {len(value)} characters "
                            f"(limit {limit}): {value}",
                        )
                    )
    return findings, evaluated


def _evaluate(raw: str, env: str, names: dict[str, Any], suffix_len: int | None) -> str | None:
    if raw.startswith("${") and raw.endswith("}") and not raw.startswith('"'):
        template = raw  # a bare expression: one interpolation
    elif raw.startswith('"') and raw.endswith('"'):
        template = raw[1:-1]
    else:
        return None
    unknown = False

    def part(match: re.Match[str]) -> str:
        nonlocal unknown
        expr = match.group(1).strip()
        if expr == "var.environment":
            return env
        if expr == "local.suffix" and suffix_len is not None:
            return "x" * suffix_len
        cut = re.fullmatch(r"substr\(.*,\s*0,\s*(\d+)\)", expr)
        if cut:
            return "x" * int(cut.group(1))
        if expr.startswith("local.names."):
            current: Any = names
            for key in expr[len("local.names.") :].split("."):
                if not isinstance(current, dict) or key not in current:
                    unknown = True
                    return ""
                current = current[key]
            if isinstance(current, str):
                return _unquote(current)
        unknown = True
        return ""

    value = _INTERPOLATION.sub(part, template)
    return None if unknown or "${" in value else value


# ---- version pins ------------------------------------------------------------------------------


def required_providers(stack: Stack) -> dict[str, str]:
    """provider local name -> version constraint, from the terraform block."""
    out: dict[str, str] = {}
    for block in stack.blocks:
        if block.kind != "terraform":
            continue
        for required in block.body.get("required_providers", []):
            for name, spec in required.items():
                if isinstance(spec, dict) and "version" in spec:
                    out[name] = _unquote(spec["version"])
    return out


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def allows(constraint: str, version: str) -> bool:
    """Whether a Terraform version constraint (`~>`, `>=`, `<`, `=`, ...) allows a version."""
    have = _version(version)
    for part in constraint.split(","):
        match = re.fullmatch(r"\s*(~>|>=|<=|!=|>|<|=)?\s*([\d.]+)\s*", part)
        if not match:
            raise ValueError(f"unreadable version constraint {constraint!r}")
        op, raw = match.group(1) or "=", match.group(2)
        want = _version(raw)
        padded = have[: len(want)] + (0,) * max(0, len(want) - len(have))
        if op == "~>":
            upper = (*want[:-2], want[-2] + 1) if len(want) > 1 else (want[0] + 1,)
            ok = have >= want and have[: len(upper)] < upper
        else:
            ok = {
                ">=": have >= want,
                ">": have > want,
                "<=": padded <= want,
                "<": have < want,
                "=": padded == want,
                "!=": padded != want,
            }[op]
        if not ok:
            return False
    return True


def majors_allowed(constraint: str, limit: int = 30) -> set[int]:
    """Every major version a constraint lets in (probing x.0.0 ... x.999.999 of each major)."""
    out = set()
    for major in range(limit):
        if any(
            allows(constraint, f"{major}.{minor}.{patch}")
            for minor in (0, 1, 2, 5, 10, 20, 27, 50, 99, 999)
            for patch in (0, 99)
        ):
            out.add(major)
    return out


def schemas_for(stack: Stack, folder: Path = SCHEMA_DIR) -> list[dict[str, dict[str, Any]]]:
    """One set of schemas per allowed major of each pinned provider (the cross product)."""
    sets: list[dict[str, dict[str, Any]]] = [{}]
    for name, constraint in sorted(required_providers(stack).items()):
        keys = [
            f"{name}-{m}" for m in sorted(majors_allowed(constraint)) if f"{name}-{m}" in SCHEMAS
        ]
        if not keys:
            continue
        sets = [{**s, name: load_schema(k, folder)} for s in sets for k in keys]
    return sets


def check(folder: Path, schema_dir: Path = SCHEMA_DIR) -> list[Finding]:
    stack = read_stack(folder)
    findings: list[Finding] = []
    for schemas in schemas_for(stack, schema_dir):
        label = ", ".join(f"{s['name']} {s['version']}" for s in schemas.values())
        for finding in Checker(stack, schemas).run():
            finding.message += f" ({label})"
            findings.append(finding)
    return findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tfschema")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="condense a cdktn provider wheel into a schema")
    b.add_argument("wheel", type=Path)
    b.add_argument("out", type=Path)
    c = sub.add_parser("check", help="check stacks against the cached schemas")
    c.add_argument("--schemas", type=Path, default=SCHEMA_DIR)
    c.add_argument("stacks", type=Path, nargs="+")
    args = parser.parse_args(argv)
    if args.command == "build":
        schema = build(args.wheel)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".tmp")
        tmp.write_bytes(gzip.compress(json.dumps(schema, sort_keys=True).encode(), mtime=0))
        tmp.replace(args.out)
        print(
            f"{args.out}: {schema['name']} {schema['version']}, {len(schema['resources'])} "
            f"resources, {len(schema['data'])} data sources"
        )
        return 0
    total = 0
    for folder in args.stacks:
        for finding in check(folder, args.schemas):
            print(f"{folder}/{finding}")
            total += 1
    print(f"{total} findings", file=sys.stderr)
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
