"""docs/descriptor.md is the schema rendered: it can never drift from what is validated."""

from __future__ import annotations

from generator.loader import schema
from generator.reference import render_reference
from tests.conftest import ROOT

PAGE = ROOT / "docs" / "descriptor.md"


def test_reference_page_matches_the_schema(update_golden: bool) -> None:
    if update_golden:
        PAGE.write_text(render_reference())
    assert PAGE.read_text() == render_reference(), "run pytest --update-golden"


def _walk(node: object) -> list[dict[str, object]]:
    found = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found += _walk(value)
    return found


def test_every_property_is_described() -> None:
    for node in _walk(schema()):
        for key, child in node.get("properties", {}).items():  # type: ignore[union-attr]
            assert "description" in child or "$ref" in child, f"{key} has no description"


def test_every_contract_key_is_documented() -> None:
    page = PAGE.read_text()
    for key in [
        "project.name",
        "project.registry",
        "services.<name>.runtime",
        "services.<name>.autoscale.cpu",
        "services.<name>.volumes[].mount",
        "datastores.postgres.version",
        "environments.<name>.approval",
        "targets.terraform",
        "deploy",
        "monitoring.metrics_path",
        "services.<name>.env.<NAME>",
    ]:
        assert f"`{key}`" in page, key
