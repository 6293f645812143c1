"""`shipforge generate`: checking, diffs, edit protection, stale files, idempotence."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from generator.cli import app
from tests.conftest import EXAMPLES, tree

EXAMPLE = EXAMPLES[0] / "shipforge.yaml"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    assert isinstance(result.exception, SystemExit | None), result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A repository holding only the example descriptor."""
    shutil.copy(EXAMPLE, tmp_path / "shipforge.yaml")
    return tmp_path


def test_generate_writes_next_to_the_descriptor_and_then_is_clean(project: Path) -> None:
    code, out, _ = run("generate", str(project / "shipforge.yaml"))
    assert code == 0 and "created: Dockerfile" in out
    assert (project / "Dockerfile").is_file() and (project / ".shipforge/manifest.json").is_file()
    before = {p: p.stat().st_mtime_ns for p in project.rglob("*") if p.is_file()}
    code, out, _ = run("generate", str(project / "shipforge.yaml"))
    assert code == 0 and out.startswith("0 changed")
    assert before == {p: p.stat().st_mtime_ns for p in project.rglob("*") if p.is_file()}
    assert run("generate", str(project / "shipforge.yaml"), "--check")[0] == 0


def test_check_names_every_file_that_would_change_and_writes_nothing(project: Path) -> None:
    code, _, err = run("generate", str(project / "shipforge.yaml"), "--check")
    assert code == 1
    assert "would create: Dockerfile" in err and "would create: compose.yaml" in err
    assert sorted(p.name for p in project.iterdir()) == ["shipforge.yaml"]


def test_diff_prints_unified_diffs_without_writing(project: Path) -> None:
    run("generate", str(project / "shipforge.yaml"))
    descriptor = project / "shipforge.yaml"
    descriptor.write_text(descriptor.read_text().replace("LOG_LEVEL: info", "LOG_LEVEL: debug"))
    code, out, _ = run("generate", str(descriptor), "--diff")
    assert code == 0
    assert '-      LOG_LEVEL: "info"' in out and '+      LOG_LEVEL: "debug"' in out
    assert 'LOG_LEVEL: "info"' in (project / "compose.yaml").read_text()


def test_an_edited_file_is_refused_named_and_nothing_is_written(project: Path) -> None:
    descriptor = project / "shipforge.yaml"
    run("generate", str(descriptor))
    dockerfile = project / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "# my edit\n")
    descriptor.write_text(descriptor.read_text().replace("LOG_LEVEL: info", "LOG_LEVEL: debug"))
    compose_before = (project / "compose.yaml").read_text()
    code, _, err = run("generate", str(descriptor))
    assert code == 1
    assert "Dockerfile: refusing to overwrite: edited since shipforge wrote it" in err
    assert "--force" in err
    assert dockerfile.read_text().endswith("# my edit\n")
    assert (project / "compose.yaml").read_text() == compose_before, "nothing may be written"
    assert run("generate", str(descriptor), "--check")[0] == 1
    code, out, _ = run("generate", str(descriptor), "--force")
    assert code == 0 and "updated: Dockerfile" in out
    assert "# my edit" not in dockerfile.read_text()


def test_an_existing_file_not_written_by_shipforge_is_refused(project: Path) -> None:
    (project / "compose.yaml").write_text("services: {}\n")
    code, _, err = run("generate", str(project / "shipforge.yaml"))
    assert code == 1 and "compose.yaml: refusing to overwrite: exists and was not written" in err
    assert (project / "compose.yaml").read_text() == "services: {}\n"


def test_a_file_identical_to_the_output_is_adopted(project: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    run("generate", str(project / "shipforge.yaml"), "--out", str(other))
    shutil.copy(other / "Dockerfile", project / "Dockerfile")
    code, out, _ = run("generate", str(project / "shipforge.yaml"))
    assert code == 0 and "Dockerfile" not in out.split("changed")[0].replace("created: .", "")


def test_stale_files_are_removed_unless_edited(project: Path) -> None:
    descriptor = project / "shipforge.yaml"
    text = descriptor.read_text()
    assert "  docker: true\n" in text
    assert run("generate", str(descriptor))[0] == 0
    descriptor.write_text(text.replace("  docker: true\n", "  docker: false\n"))
    code, out, _ = run("generate", str(descriptor))
    assert code == 0 and "deleted: Dockerfile" in out and not (project / "Dockerfile").exists()

    descriptor.write_text(text)
    run("generate", str(descriptor))
    (project / "Dockerfile").write_text("FROM scratch\n")
    descriptor.write_text(text.replace("  docker: true\n", "  docker: false\n"))
    code, out, _ = run("generate", str(descriptor))
    assert code == 0 and "kept: Dockerfile" in out
    assert (project / "Dockerfile").read_text() == "FROM scratch\n"


def test_gitignore_lines_are_merged_into_the_users_file(project: Path) -> None:
    (project / ".gitignore").write_text("node_modules/\n")
    run("generate", str(project / "shipforge.yaml"))
    first = (project / ".gitignore").read_text()
    assert first.startswith("node_modules/\n") and "\n.env\n" in first
    run("generate", str(project / "shipforge.yaml"))
    assert (project / ".gitignore").read_text() == first, "the block is replaced, not appended"


def test_missing_descriptor_and_usage_errors(tmp_path: Path) -> None:
    code, _, err = run("generate", str(tmp_path / "nope.yaml"))
    assert code == 1 and "nope.yaml: file not found" in err and "shipforge init" in err
    assert run("generate", "--no-such-flag")[0] == 2
    code, out, _ = run("--version")
    assert code == 0 and out.startswith("shipforge ")


def test_validate_says_valid(project: Path) -> None:
    code, out, _ = run("validate", str(project / "shipforge.yaml"))
    assert code == 0 and "valid (2 services)" in out


def test_out_tree_has_no_bookkeeping_in_goldens(project: Path) -> None:
    run("generate", str(project / "shipforge.yaml"))
    assert ".shipforge/manifest.json" not in tree(project)


def test_plain_scalars_that_yaml_11_retypes_are_kept_and_noted(project: Path) -> None:
    descriptor = project / "shipforge.yaml"
    descriptor.write_text(
        descriptor.read_text().replace(
            "LOG_LEVEL: info\n      ENVIRONMENT",
            "LOG_LEVEL: on\n      MODE: 0755\n      ENVIRONMENT",
        )
    )
    code, _, err = run("generate", str(descriptor))
    assert code == 0
    assert "services.api.env.LOG_LEVEL: `on` is kept as written" in err and "read it as true" in err
    assert "`0755` is kept as written" in err and "read it as 493" in err
    compose = (project / "compose.yaml").read_text()
    assert 'LOG_LEVEL: "on"' in compose and 'MODE: "0755"' in compose
