"""Property tests: the loader never crashes, output is deterministic, a rerun changes nothing."""

from __future__ import annotations

import string
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.errors import InvalidDescriptor
from generator.loader import load
from generator.pipeline import generate, render_project
from generator.writer import apply

HOSTILE = [
    "on",
    "0755",
    "${{ x }}",
    "{{ x }}",
    "$(cmd)",
    "a\nb",
    "'\"",
    "#x",
    "yes",
    "~",
    "%{x}",
    "${HOME}",
    "\\",
    "null",
    "-1",
    "1e3",
    "é ü ✓",
    "*alias",
    "&anchor",
    "[a]",
    "{b: 1}",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 70000),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(HOSTILE),
)
keys = st.one_of(
    st.sampled_from(
        [
            "version",
            "project",
            "services",
            "name",
            "runtime",
            "command",
            "port",
            "env",
            "secrets",
            "uses",
            "volumes",
            "targets",
            "deploy",
            "datastores",
            "postgres",
            "api",
            "replicas",
            "path",
        ]
    ),
    st.text(max_size=8),
)
data = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=25,
)


def _load_text(text: str) -> Any:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "shipforge.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            return load(path)
        except InvalidDescriptor as error:
            assert error.issues, "an invalid descriptor must say what is wrong"
            return None


@settings(max_examples=150, deadline=None)
@given(data)
def test_loader_never_crashes_on_arbitrary_yaml_data(value: Any) -> None:
    _load_text(yaml.safe_dump(value))


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_loader_never_crashes_on_arbitrary_text(text: str) -> None:
    _load_text(text)


names = st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True)
env_names = st.from_regex(r"[A-Z][A-Z0-9_]{0,6}", fullmatch=True)
hostile_text = st.one_of(st.sampled_from(HOSTILE), st.text(string.printable, max_size=10))


@st.composite
def descriptors(draw: st.DrawFn) -> dict[str, Any]:
    services = {}
    for name in draw(st.lists(names, min_size=1, max_size=3, unique=True)):
        runtime = draw(st.sampled_from(["python", "node"]))
        service: dict[str, Any] = {
            "runtime": runtime,
            "command": draw(
                st.sampled_from(
                    [
                        "python app.py",
                        "node 'a b.js' --x=$(y)",
                        "uvicorn m:app --port 8000",
                        "sh -c 'echo {{ x }}'",
                    ]
                )
            ),
            "package_manager": draw(
                st.sampled_from(
                    ["pip", "poetry", "uv"] if runtime == "python" else ["npm", "pnpm", "yarn"]
                )
            ),
            "env": draw(st.dictionaries(env_names, hostile_text, max_size=3)),
            "secrets": draw(st.lists(env_names.map(lambda n: f"S_{n}"), max_size=2, unique=True)),
        }
        if draw(st.booleans()):
            service["port"] = draw(st.integers(1024, 9000))
            service["public"] = draw(st.booleans())
        if draw(st.booleans()):
            service["release"] = draw(hostile_text) or "migrate"
        if draw(st.booleans()):
            service["build"] = draw(st.sampled_from(["npm run build", "make 'x y'"]))
        services[name] = service
    return {
        "version": 1,
        "project": {"name": draw(names), "description": draw(hostile_text)},
        "services": services,
    }


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(descriptors())
def test_output_is_deterministic_and_a_rerun_changes_nothing(descriptor: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "shipforge.yaml"
        path.write_text(yaml.safe_dump(descriptor), encoding="utf-8")
        try:
            project = load(path)
        except InvalidDescriptor:
            return
        first, second = render_project(project), render_project(load(path))
        assert first == second
        out = Path(folder) / "out"
        _, changes = generate(path, out)
        apply(out, changes)
        _, again = generate(path, out)
        assert all(change.action == "unchanged" for change in again)
