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


def test_an_edit_is_merged_with_a_descriptor_change_and_force_takes_ours(project: Path) -> None:
    descriptor = project / "shipforge.yaml"
    run("generate", str(descriptor))
    compose = project / "compose.yaml"
    compose.write_text(compose.read_text().replace("services:\n", "services: # my note\n", 1))
    descriptor.write_text(descriptor.read_text().replace("LOG_LEVEL: info", "LOG_LEVEL: debug"))
    code, out, _ = run("generate", str(descriptor))
    assert code == 0, out
    assert "merged: compose.yaml" in out
    merged = compose.read_text()
    assert "services: # my note\n" in merged and 'LOG_LEVEL: "debug"' in merged
    assert 'LOG_LEVEL: "info"' not in merged
    assert run("generate", str(descriptor), "--check")[0] == 0, "a merged edit is up to date"
    code, out, _ = run("generate", str(descriptor), "--force")
    assert code == 0 and "updated: compose.yaml" in out
    assert "# my note" not in compose.read_text()


def test_an_edit_whose_generated_version_did_not_change_is_kept(project: Path) -> None:
    descriptor = project / "shipforge.yaml"
    run("generate", str(descriptor))
    dockerfile = project / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "# my edit\n")
    descriptor.write_text(descriptor.read_text().replace("LOG_LEVEL: info", "LOG_LEVEL: debug"))
    code, out, _ = run("generate", str(descriptor))
    assert code == 0
    assert "kept: Dockerfile (edited; what shipforge generates did not change" in out
    assert "updated: compose.yaml" in out, "the edit blocks no other file"
    assert dockerfile.read_text().endswith("# my edit\n")


def test_overlapping_edits_become_conflict_markers_and_exit_1(project: Path) -> None:
    descriptor = project / "shipforge.yaml"
    run("generate", str(descriptor))
    compose = project / "compose.yaml"
    compose.write_text(compose.read_text().replace('LOG_LEVEL: "info"', 'LOG_LEVEL: "warn"'))
    descriptor.write_text(descriptor.read_text().replace("LOG_LEVEL: info", "LOG_LEVEL: debug"))
    code, out, err = run("generate", str(descriptor))
    assert code == 1
    assert "conflict: compose.yaml" in err and "every other file was written" in err
    text = compose.read_text()
    assert (
        '<<<<<<< yours\n      LOG_LEVEL: "warn"\n=======\n      LOG_LEVEL: "debug"\n>>>>>>> '
        in text
    )
    assert "updated: .env.example" in out, "the conflict blocks no other file"
    # Unresolved markers keep failing, without touching the file again.
    code, _, err = run("generate", str(descriptor))
    assert code == 1 and "compose.yaml (unresolved conflict markers" in err
    compose.write_text(
        text.replace("<<<<<<< yours\n", "").replace(
            '=======\n      LOG_LEVEL: "debug"\n>>>>>>> shipforge\n', ""
        )
    )
    code, out, _ = run("generate", str(descriptor))
    assert code == 0 and "kept: compose.yaml" in out
    assert 'LOG_LEVEL: "warn"' in compose.read_text()


def test_an_existing_file_not_written_by_shipforge_is_merged_line_for_line(project: Path) -> None:
    (project / "compose.yaml").write_text("services: {}\n# my own line\n")
    code, _, err = run("generate", str(project / "shipforge.yaml"))
    assert code == 1 and "conflict: compose.yaml (exists and was not written by shipforge" in err
    text = (project / "compose.yaml").read_text()
    assert "<<<<<<< yours\nservices: {}\n# my own line\n=======\n" in text
    assert (project / "Dockerfile").is_file(), "the other files are written"


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


@pytest.mark.parametrize("example", ["06", "08"])
def test_edits_in_every_file_kind_survive_a_descriptor_change(tmp_path: Path, example: str) -> None:
    """One line added in the middle of every generated file, then the descriptor changes."""
    source = next(e for e in EXAMPLES if e.name.startswith(example)) / "shipforge.yaml"
    descriptor = tmp_path / "shipforge.yaml"
    shutil.copy(source, descriptor)
    assert run("generate", str(descriptor))[0] == 0
    edits = {}
    for path in sorted(p for p in tmp_path.rglob("*") if p.is_file()):
        rel = path.relative_to(tmp_path).as_posix()
        if rel.startswith(".shipforge/") or rel in ("shipforge.yaml", ".gitignore"):
            continue
        lines = path.read_text().splitlines(keepends=True)
        edits[rel] = f"EDIT {rel}\n"
        lines.insert(len(lines) // 2, edits[rel])
        path.write_text("".join(lines))
    assert len(edits) > 20
    text = descriptor.read_text()
    changed = text.replace("replicas: 2", "replicas: 4", 1).replace("name: ", "name: x", 1)
    assert changed != text
    descriptor.write_text(changed)
    code, out, err = run("generate", str(descriptor))
    conflicts = {line.split()[1] for line in err.splitlines() if line.startswith("  conflict:")}
    assert code == (1 if conflicts else 0), out + err
    assert "merged:" in out, "some edits merge cleanly"
    for rel, line in edits.items():
        assert line in (tmp_path / rel).read_text(), f"{rel} lost the user's line"
    for rel in conflicts:
        assert "<<<<<<< yours\n" in (tmp_path / rel).read_text()
    assert run("generate", str(descriptor), "--check")[0] == (1 if conflicts else 0)


@pytest.mark.parametrize("name", ["Dockerfile", "compose.yaml", ".env.example"])
def test_a_repositorys_own_file_loses_no_line_on_the_first_generate(
    project: Path, name: str
) -> None:
    own = "# our own file\nFIRST=1\nSECOND=2\n"
    (project / name).write_text(own)
    code, _, err = run("generate", str(project / "shipforge.yaml"))
    assert code == 1 and f"conflict: {name} (exists and was not written by shipforge" in err
    merged = (project / name).read_text()
    assert all(line in merged.splitlines() for line in own.splitlines())
    assert merged.startswith("<<<<<<< yours\n") and ">>>>>>> shipforge\n" in merged


def test_reversed_gitignore_markers_do_not_grow_the_file(project: Path) -> None:
    from generator.writer import BLOCK_END, BLOCK_START

    gitignore = project / ".gitignore"
    gitignore.write_text(f"{BLOCK_END}\nmine/\n{BLOCK_START}\n")
    run("generate", str(project / "shipforge.yaml"))
    first = gitignore.read_text()
    assert "mine/" in first
    run("generate", str(project / "shipforge.yaml"))
    assert gitignore.read_text() == first


def test_the_rej_style_puts_shipforges_lines_in_the_file_and_yours_beside_it(
    project: Path,
) -> None:
    descriptor = project / "shipforge.yaml"
    run("generate", str(descriptor))
    compose = project / "compose.yaml"
    compose.write_text(compose.read_text().replace('LOG_LEVEL: "info"', 'LOG_LEVEL: "warn"'))
    descriptor.write_text(descriptor.read_text().replace("LOG_LEVEL: info", "LOG_LEVEL: debug"))
    code, _, err = run("generate", str(descriptor), "--conflict", "rej")
    assert code == 1 and "compose.yaml.rej" in err
    assert "<<<<<<<" not in compose.read_text() and 'LOG_LEVEL: "debug"' in compose.read_text()
    reject = (project / "compose.yaml.rej").read_text()
    assert 'LOG_LEVEL: "warn"' in reject and "@@ compose.yaml:" in reject
    # While the .rej file is there, the file counts as unresolved, even for a new version.
    code, _, err = run("generate", str(descriptor))
    assert code == 1 and "compose.yaml.rej from an earlier merge is still there" in err
    descriptor.write_text(descriptor.read_text().replace("LOG_LEVEL: debug", "LOG_LEVEL: error"))
    before = compose.read_text()
    code, _, err = run("generate", str(descriptor))
    assert code == 1 and "the new version is merged after that" in err
    assert compose.read_text() == before
    (project / "compose.yaml.rej").unlink()
    code, out, _ = run("generate", str(descriptor))
    assert code == 0 and 'LOG_LEVEL: "error"' in compose.read_text(), out
    assert run("generate", str(descriptor), "--conflict", "nope")[0] == 2
