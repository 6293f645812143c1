"""The descriptor reference (docs/descriptor.md), rendered from the JSON Schema.

The schema is the single source; a test keeps the committed page equal to this rendering.
"""

from __future__ import annotations

from typing import Any

from generator.loader import schema

HEADER = """# shipforge.yaml reference

Rendered from `schemas/shipforge.schema.json` (do not edit by hand: `pytest --update-golden`
rewrites this page). `<name>` stands for a key you choose: a service, an environment or an
environment variable name. Unknown keys are errors.

| key | type | description |
| --- | --- | --- |
"""


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    if "$ref" not in node:
        return node
    target = dict(root["definitions"][node["$ref"].rsplit("/", 1)[1]])
    target.update({k: v for k, v in node.items() if k != "$ref"})
    return _resolve(target, root) if "$ref" in target else target


def _type(node: dict[str, Any]) -> str:
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])
    if "const" in node:
        return f"`{node['const']}`"
    kind = node.get("type", "object")
    kind = " or ".join(kind) if isinstance(kind, list) else kind
    if kind == "array" and "items" in node:
        items = node["items"]
        inner = "object" if "$ref" in items else _type(items)
        return f"list of {inner}"
    return str(kind)


def _rows(node: dict[str, Any], path: str, root: dict[str, Any]) -> list[str]:
    node = _resolve(node, root)
    rows = []
    if path:
        description = " ".join(str(node.get("description", "")).split()).replace("|", "\\|")
        required = " Required." if node.get("_required") else ""
        rows.append(f"| `{path}` | {_type(node)} | {description}{required} |")
    required_keys = set(node.get("required", []))
    for key, child in node.get("properties", {}).items():
        child = dict(_resolve(child, root), _required=key in required_keys)
        rows += _rows(child, f"{path}.{key}" if path else key, root)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        placeholder = "<NAME>" if path.endswith(".env") else "<name>"
        rows += _rows(extra, f"{path}.{placeholder}", root)
    items = node.get("items")
    if isinstance(items, dict) and "$ref" in items:
        rows += _rows(items, f"{path}[]", root)
    return rows


def render_reference() -> str:
    """The whole reference page."""
    root = schema()
    return HEADER + "\n".join(_rows(root, "", root)) + "\n"
