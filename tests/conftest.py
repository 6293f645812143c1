"""Shared fixtures: the examples, a generate helper, and the --update-golden flag."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# shipforge looks for tools only on PATH and in folders the user names, never in the current
# directory: name the repository's own tool folders (.venv-checkov, .tools/npm, filled by
# tests/install-tools.sh) for every test, in-process and in the shipforge processes tests start.
os.environ["SHIPFORGE_TOOLS_DIR"] = str(ROOT)
EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if (p / "shipforge.yaml").is_file())
# shipforge's own bookkeeping is not part of a golden tree.
BOOKKEEPING = ".shipforge"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite examples/*/out from the current templates (refused under CI)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--update-golden") and os.environ.get("CI"):
        raise pytest.UsageError(
            "--update-golden is refused when CI is set: goldens are reviewed "
            "changes, regenerate them locally and commit the diff"
        )


@pytest.fixture(scope="session")
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


def tree(root: Path) -> dict[str, bytes]:
    """Every file under root (without shipforge's bookkeeping) by relative path."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and BOOKKEEPING not in p.relative_to(root).parts
    }


def generate_tree(descriptor: Path, out: Path) -> Path:
    """Generate a descriptor's files into out through the public pipeline."""
    from generator.pipeline import generate
    from generator.writer import apply

    _, changes = generate(descriptor, out)
    apply(out, changes)
    return out


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each example generated once per session, for the linter tests to share."""
    root = tmp_path_factory.mktemp("generated")
    return {
        example.name: generate_tree(example / "shipforge.yaml", root / example.name)
        for example in EXAMPLES
    }


@pytest.fixture(scope="session")
def template_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template as copier sees it (copier.yml and template/), outside any git checkout."""
    source = tmp_path_factory.mktemp("template-source")
    shutil.copy(ROOT / "copier.yml", source / "copier.yml")
    shutil.copytree(ROOT / "template", source / "template")
    return source


def copy_without_bookkeeping(source: Path, destination: Path) -> None:
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns(BOOKKEEPING))
