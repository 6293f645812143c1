"""generator.repofs: a hostile repository is read without leaks, hangs or tracebacks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from generator.repofs import RepoReader


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "ok.yaml").write_text("a: 1\n")
    (tmp_path / "secret.txt").write_text("aws_secret_access_key = hunter2\n")
    return root


def notes(reader: RepoReader) -> dict[str, str]:
    return {n.file: n.message for n in reader.notes}


def test_a_plain_file_is_read(repo: Path) -> None:
    reader = RepoReader(repo)
    assert reader.read_text(repo / "ok.yaml") == "a: 1\n"
    assert reader.read_text(Path("ok.yaml")) == "a: 1\n"
    assert reader.notes == []


def test_a_link_inside_the_repository_is_followed(repo: Path) -> None:
    (repo / "inner.yaml").symlink_to("ok.yaml")
    assert RepoReader(repo).read_text(repo / "inner.yaml") == "a: 1\n"


def test_a_link_out_of_the_repository_is_refused_and_noted(repo: Path) -> None:
    (repo / "compose.yaml").symlink_to(repo.parent / "secret.txt")
    (repo / "passwd.yaml").symlink_to("/etc/passwd")
    reader = RepoReader(repo)
    assert reader.read_text(repo / "compose.yaml") is None
    assert reader.read_bytes(repo / "passwd.yaml") is None
    assert "leads out of the repository" in notes(reader)["compose.yaml"]
    assert "leads out of the repository" in notes(reader)["passwd.yaml"]


def test_a_link_to_dev_zero_and_a_fifo_do_not_hang(repo: Path) -> None:
    os.mkfifo(repo / "package.json")
    (repo / "zero.yaml").symlink_to("/dev/zero")
    reader = RepoReader(repo)
    assert reader.read_text(repo / "package.json") is None
    assert reader.read_text(repo / "zero.yaml") is None
    assert "a FIFO" in notes(reader)["package.json"]
    assert "leads out" in notes(reader)["zero.yaml"]


def test_a_device_inside_the_root_is_refused(tmp_path: Path) -> None:
    # A root that holds a device: the reader refuses it by kind, not by place.
    reader = RepoReader(Path("/dev"))
    assert reader.read_bytes(Path("/dev/zero")) is None
    assert "character device" in notes(reader)["zero"]


def test_loops_dangling_links_binary_and_oversized_files_are_notes(repo: Path) -> None:
    (repo / "a.yaml").symlink_to("b.yaml")
    (repo / "b.yaml").symlink_to("a.yaml")
    (repo / "gone.yaml").symlink_to("missing.yaml")
    (repo / "bin.yaml").write_bytes(b"\x00\x01\x02")
    (repo / "latin.yaml").write_bytes(b"caf\xe9\n")
    (repo / "big.json").write_bytes(b" " * 2048)
    reader = RepoReader(repo, max_file_bytes=1024)
    for name in ("a.yaml", "gone.yaml", "bin.yaml", "latin.yaml", "big.json"):
        assert reader.read_text(repo / name) is None, name
    found = notes(reader)
    assert "loop" in found["a.yaml"]
    assert "dangling" in found["gone.yaml"]
    assert "binary" in found["bin.yaml"]
    assert "not UTF-8" in found["latin.yaml"]
    assert "size limit" in found["big.json"]


def test_the_total_budget_bounds_a_whole_run(repo: Path) -> None:
    for i in range(5):
        (repo / f"f{i}.txt").write_bytes(b"x" * 100)
    reader = RepoReader(repo, max_file_bytes=1000, max_total_bytes=250)
    read = [reader.read_bytes(repo / f"f{i}.txt") for i in range(5)]
    assert [r is not None for r in read] == [True, True, False, False, False]
    assert "total read limit" in notes(reader)["f2.txt"]


def test_structured_readers_survive_wrong_types_and_deep_nesting(repo: Path) -> None:
    (repo / "list.json").write_text("[1, 2]")
    (repo / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (repo / "deep.toml").write_text("a = " + "[" * 100_000 + "]" * 100_000)
    (repo / "bad.toml").write_text("a = = 1")
    reader = RepoReader(repo)
    assert reader.json_object(repo / "list.json") is None
    assert reader.json_object(repo / "deep.json") is None
    assert reader.toml_table(repo / "deep.toml") is None
    assert reader.toml_table(repo / "bad.toml") is None
    found = notes(reader)
    assert "not a JSON object" in found["list.json"]
    assert "deeply" in found["deep.json"] and "deeply" in found["deep.toml"]
    assert "not valid TOML" in found["bad.toml"]


def test_walk_does_not_enter_linked_directories(repo: Path) -> None:
    (repo / "sub").mkdir()
    (repo / "sub" / "x.yaml").write_text("x: 1\n")
    (repo / "loop").symlink_to(".")
    (repo / "root").symlink_to("/")
    (repo / "node_modules").mkdir()
    (repo / "node_modules" / "y.yaml").write_text("y: 1\n")
    found = [
        p.relative_to(repo).as_posix()
        for p in RepoReader(repo).walk(prune=frozenset({"node_modules"}))
    ]
    assert found == ["ok.yaml", "sub/x.yaml"]
