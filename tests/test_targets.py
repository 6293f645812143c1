"""The target registry: every template belongs to exactly one target."""

from __future__ import annotations

from fnmatch import fnmatch

from generator.render import TEMPLATE_DIR
from generator.targets import TARGETS


def test_every_template_has_exactly_one_owner() -> None:
    for path in sorted(p for p in TEMPLATE_DIR.rglob("*") if p.is_file()):
        template = path.relative_to(TEMPLATE_DIR).as_posix()
        if "_copier_conf" in template:
            continue
        owners = [
            t.name for t in TARGETS if any(fnmatch(template, pattern) for pattern in t.templates)
        ]
        assert len(owners) == 1, f"{template} is owned by {owners}"
