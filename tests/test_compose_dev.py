"""The development compose file is a development loop: `docker compose up --watch` rebuilds a
service when a file of its build context changes, and only the long-running services watch.

The rule is `rebuild`, not `sync`: Compose syncs only into paths the container's user can
write, and the generated images keep /app root-owned (the app user 10001 cannot write it).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import EXAMPLES

DEV_FILES = [e / "out" / "compose.yaml" for e in EXAMPLES if (e / "out" / "compose.yaml").exists()]


def test_there_are_dev_compose_files() -> None:
    assert len(DEV_FILES) >= 5


@pytest.mark.parametrize("path", DEV_FILES, ids=lambda p: p.parent.parent.name)
def test_every_built_service_rebuilds_on_a_change_of_its_context(path: Path) -> None:
    services = yaml.safe_load(path.read_text())["services"]
    built = {name: s for name, s in services.items() if "build" in s}
    assert built
    for name, service in built.items():
        rules = (service.get("develop") or {}).get("watch", [])
        if name.endswith("-release"):
            assert not rules, f"{name} runs once: a change must not re-run it"
            continue
        assert rules == [{"path": service["build"]["context"], "action": "rebuild"}], name
    for name, service in services.items():
        if "build" not in service:  # datastores and monitoring come from images
            assert "develop" not in service, name


def test_the_image_keeps_its_code_unwritable_to_the_app_user() -> None:
    """Why `sync` would fail: the code is copied as root and the image runs as 10001."""
    dockerfile = (EXAMPLES[0] / "out" / "Dockerfile").read_text()
    assert "COPY . /app/" in dockerfile and "--chown" not in dockerfile
    assert "USER 10001:10001" in dockerfile
