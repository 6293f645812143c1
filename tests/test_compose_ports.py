"""Compose: no two services of a compose file publish the same host port, monitoring included.

Every example with compose is generated as it is and with monitoring (Prometheus and Grafana)
switched on, the way a platform review turns every target on: Grafana's 3000 is also Node's
usual port, and two listeners on one port fail at `up` (EADDRINUSE) although `docker compose
config` accepts the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.render import Rendered
from generator.targets import compose
from tests.conftest import EXAMPLES, generate_tree


def _compose_examples() -> list[Path]:
    found = []
    for example in EXAMPLES:
        data = yaml.safe_load((example / "shipforge.yaml").read_text())
        if (data.get("targets") or {}).get("compose", True):
            found.append(example)
    return found


COMPOSE_EXAMPLES = _compose_examples()


def _variant(example: Path, folder: Path, monitoring: bool) -> Path:
    data: dict[str, Any] = yaml.safe_load((example / "shipforge.yaml").read_text())
    if monitoring:
        data["monitoring"] = {**(data.get("monitoring") or {}), "prometheus": True, "grafana": True}
    folder.mkdir(parents=True)
    descriptor = folder / "shipforge.yaml"
    descriptor.write_text(yaml.safe_dump(data, sort_keys=False))
    for extra in example.iterdir():  # lockfiles and sources detection may read
        if extra.name not in ("shipforge.yaml", "out") and extra.is_file():
            (folder / extra.name).write_bytes(extra.read_bytes())
    return descriptor


def _host_ports(document: dict[str, Any]) -> dict[int, list[str]]:
    owners: dict[int, list[str]] = {}
    for name, service in document["services"].items():
        for port in compose.published(service):
            owners.setdefault(port, []).append(name)
    return owners


def test_there_are_compose_examples_with_node_on_port_3000() -> None:
    assert COMPOSE_EXAMPLES
    texts = [(e / "shipforge.yaml").read_text() for e in COMPOSE_EXAMPLES]
    assert any("port: 3000" in text for text in texts), "no example exercises Grafana's 3000"


@pytest.mark.parametrize("monitoring", [False, True], ids=["as-is", "monitoring"])
@pytest.mark.parametrize("example", COMPOSE_EXAMPLES, ids=lambda e: e.name)
def test_no_two_services_publish_one_host_port(
    example: Path, monitoring: bool, tmp_path: Path
) -> None:
    descriptor = _variant(example, tmp_path / "src", monitoring)
    out = generate_tree(descriptor, tmp_path / "out")
    checked = 0
    for name in ("compose.yaml", "compose.production.yaml"):
        file = out / name
        if not file.is_file():
            continue
        document = yaml.safe_load(file.read_text())
        collisions = {p: o for p, o in _host_ports(document).items() if len(o) > 1}
        assert not collisions, f"{example.name}/{name}: host ports published twice: {collisions}"
        if monitoring:
            assert {"prometheus", "grafana"} <= set(document["services"])
        checked += 1
    assert checked, f"{example.name}: no compose file generated"


def test_check_reports_a_host_port_published_twice() -> None:
    text = yaml.safe_dump(
        {
            "services": {
                "web": {"ports": ["127.0.0.1:3000-3001:3000"], "read_only": True},
                "grafana": {"ports": ["127.0.0.1:3001:3000"], "read_only": True},
            }
        },
        sort_keys=False,
    )
    rendered = Rendered("compose.production.yaml", "", text, executable=False)
    issues = compose.check(None, [rendered])  # type: ignore[arg-type]
    assert [i.message for i in issues] == ["host port 3001 is published by web too"]
