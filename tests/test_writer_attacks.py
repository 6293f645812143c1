"""The writer under attack: hostile manifests, planted links, collisions, full and read-only disks.

Every case runs on a real filesystem and checks the same three things: no file outside the
output folder is written or deleted, a failed run leaves the tree byte-identical (folders, links
and modes included), and the run ends with a located message and exit 1 or 2, never a crash.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from generator.cli import app
from generator.lint import detect_secrets
from tests.conftest import EXAMPLES
from tests.toolcheck import require

BY_NAME = {e.name[:2]: e / "shipforge.yaml" for e in EXAMPLES}
SIMPLE = BY_NAME["01"]  # compose, docker, env, runbook
GITHUB_K8S = BY_NAME["06"]  # .github, deploy, k8s
TERRAFORM = BY_NAME["08"]  # .github, deploy, terraform


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    assert isinstance(result.exception, SystemExit | None), result.exception
    return result.exit_code, result.stdout, result.stderr


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Everything under root, links and folders included, without following a link."""
    seen: dict[str, tuple[object, ...]] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            info = path.lstat()
            rel = path.relative_to(root).as_posix()
            if stat.S_ISLNK(info.st_mode):
                seen[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                seen[rel] = ("dir", stat.S_IMODE(info.st_mode))
            elif stat.S_ISREG(info.st_mode):
                seen[rel] = ("file", stat.S_IMODE(info.st_mode), path.read_bytes())
            else:
                seen[rel] = ("special", stat.S_IFMT(info.st_mode))
    return seen


@pytest.fixture
def world(tmp_path: Path) -> Path:
    """tmp/repo (the output folder, holding the descriptor) and tmp/outside (a victim)."""
    (tmp_path / "repo").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("precious\n")
    return tmp_path


def repo_with(world: Path, descriptor: Path, generated: bool = True) -> Path:
    repo = world / "repo"
    shutil.copy(descriptor, repo / "shipforge.yaml")
    if generated:
        code, out, err = run("generate", str(repo / "shipforge.yaml"))
        assert code == 0, out + err
    return repo / "shipforge.yaml"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def set_manifest(repo: Path, text: str) -> None:
    (repo / ".shipforge" / "manifest.json").write_text(text)


def add_entries(repo: Path, entries: dict[str, object]) -> None:
    manifest = json.loads((repo / ".shipforge" / "manifest.json").read_text())
    manifest["files"].update(entries)
    set_manifest(repo, json.dumps(manifest, indent=2))


def assert_refused(
    world: Path, before: dict[str, tuple[object, ...]], args: list[str], *needles: str
) -> str:
    code, out, err = run(*args)
    assert code in (1, 2), out + err
    assert snapshot(world) == before, "a failed run must leave every file as it was"
    for needle in needles:
        assert needle in err, err
    assert "unexpectedly" not in err
    return err


# --- hostile and broken manifests -----------------------------------------------------------


@pytest.mark.parametrize("flag", [[], ["--force"], ["--check"], ["--diff"]])
def test_manifest_paths_outside_the_folder_delete_and_read_nothing(
    world: Path, flag: list[str]
) -> None:
    descriptor = repo_with(world, SIMPLE)
    victim = world / "outside" / "victim.txt"
    add_entries(
        descriptor.parent,
        {
            "../outside/victim.txt": "sha256:" + sha(victim),
            str(victim): sha(victim),
            "/etc/passwd": "0" * 64,
        },
    )
    before = snapshot(world)
    err = assert_refused(
        world,
        before,
        ["generate", str(descriptor), *flag],
        ".shipforge/manifest.json:",
        '"../outside/victim.txt" is not a relative path below the output folder',
        '"/etc/passwd"',
        "git checkout -- .shipforge/manifest.json",
    )
    assert "would delete" not in err and victim.read_text() == "precious\n"


@pytest.mark.parametrize(
    "key",
    [
        "a\u0000b",
        ".git/config",
        "x/.git/hooks/pre-commit",
        ".shipforge/manifest.json",
        "a//b",
        "a\n",
    ],
)
def test_manifest_paths_that_are_not_plain_relative_paths_are_refused(
    world: Path, key: str
) -> None:
    descriptor = repo_with(world, SIMPLE)
    add_entries(descriptor.parent, {key: "0" * 64})
    before = snapshot(world)
    assert_refused(world, before, ["generate", str(descriptor)], "the manifest is invalid")


CORRUPT = {
    "invalid-json": '{"version": 2, "files": {',
    "truncated": '{"version": 2, "files": {"Dockerfile": "sha256:00',
    "files-is-list": '{"version": 2, "files": []}',
    "files-null": '{"version": 2, "files": null}',
    "top-level-list": "[]",
    "hash-is-object": '{"version": 2, "files": {"Dockerfile": {"sha256": "x"}}}',
    "unknown-hash": '{"version": 2, "files": {"Dockerfile": "md5:d41d8cd98f00b204e9800998ecf8427e"}}',
    "binary": "\udcff\udcfe\x00\x01",
    "empty": "",
    "unknown-version": '{"version": 3, "files": {}}',
}


@pytest.mark.parametrize("shape", sorted(CORRUPT))
@pytest.mark.parametrize("descriptor_changed", [False, True])
def test_a_broken_manifest_is_a_located_error_not_a_silent_reset(
    world: Path, shape: str, descriptor_changed: bool
) -> None:
    descriptor = repo_with(world, SIMPLE)
    manifest = descriptor.parent / ".shipforge" / "manifest.json"
    manifest.write_bytes(CORRUPT[shape].encode("utf-8", "surrogateescape"))
    if descriptor_changed:
        descriptor.write_text(descriptor.read_text().replace("LOG_LEVEL: info", "LOG_LEVEL: x"))
    before = snapshot(world)
    assert_refused(
        world, before, ["generate", str(descriptor)], ".shipforge/manifest.json", "shipforge adopt"
    )
    # check reads the same manifest through the same loader: no silent reset there either.
    code, out, _ = run("check", str(descriptor.parent), "--no-lint")
    assert code == 1 and "manifest" in out


def test_a_manifest_entry_naming_a_folder_or_a_link_is_left_alone(world: Path) -> None:
    descriptor = repo_with(world, SIMPLE)
    repo = descriptor.parent
    (repo / "userdir").mkdir()
    (repo / "userdir" / "mine.txt").write_text("mine\n")
    os.symlink(world / "outside", repo / "linkdir")
    victim = world / "outside" / "victim.txt"
    add_entries(repo, {"userdir": "0" * 64, "linkdir/victim.txt": "sha256:" + sha(victim)})
    code, out, err = run("generate", str(descriptor), "--force")
    assert code == 0, out + err
    assert "kept: userdir" in out and "kept: linkdir/victim.txt" in out
    assert (repo / "userdir" / "mine.txt").read_text() == "mine\n"
    assert victim.read_text() == "precious\n"


def test_only_files_still_matching_their_hash_are_deleted_even_with_force(world: Path) -> None:
    descriptor = repo_with(world, SIMPLE)
    repo = descriptor.parent
    (repo / "old.txt").write_text("generated once\n")
    (repo / "edited.txt").write_text("edited by you\n")
    add_entries(repo, {"old.txt": "sha256:" + sha(repo / "old.txt"), "edited.txt": "1" * 64})
    code, out, _ = run("generate", str(descriptor), "--force")
    assert code == 0 and "deleted: old.txt" in out and "kept: edited.txt" in out
    assert not (repo / "old.txt").exists() and (repo / "edited.txt").is_file()


def test_a_version_1_manifest_is_read_and_rewritten_without_bare_hex(world: Path) -> None:
    descriptor = repo_with(world, SIMPLE)
    repo = descriptor.parent
    manifest = json.loads((repo / ".shipforge" / "manifest.json").read_text())
    legacy = {p: h.removeprefix("sha256:") for p, h in manifest["files"].items()}
    set_manifest(repo, json.dumps({"version": 1, "files": legacy}))
    dockerfile = repo / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "# mine\n")
    code, out, _ = run("generate", str(descriptor))
    assert code == 0 and "kept: Dockerfile" in out
    rewritten = json.loads((repo / ".shipforge" / "manifest.json").read_text())
    assert rewritten["version"] == 2
    assert all(h.startswith("sha256:") for h in rewritten["files"].values())


def test_a_generated_tree_with_its_bookkeeping_has_no_secret_findings(world: Path) -> None:
    descriptor = repo_with(world, GITHUB_K8S)
    repo = descriptor.parent
    files = sorted(p for p in repo.rglob("*") if p.is_file() and p.name != "shipforge.yaml")
    assert any(".shipforge" in p.parts for p in files)
    require(detect_secrets(files))


# --- links ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "link", ["deploy", ".github", ".github/workflows", "k8s/base", ".shipforge"]
)
def test_a_linked_folder_inside_the_output_receives_nothing(world: Path, link: str) -> None:
    descriptor = repo_with(world, GITHUB_K8S, generated=False)
    repo = descriptor.parent
    (repo / link).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(world / "outside", repo / link)
    before = snapshot(world)
    assert_refused(
        world, before, ["generate", str(descriptor), "--force"], f"{link}: is a symbolic link"
    )


def test_a_linked_folder_planted_after_a_first_run_receives_nothing(world: Path) -> None:
    descriptor = repo_with(world, GITHUB_K8S)
    repo = descriptor.parent
    for name in ("lib.sh", "kubernetes.sh"):
        shutil.copy(repo / "deploy" / name, world / "outside" / name)
    shutil.rmtree(repo / "deploy")
    os.symlink(world / "outside", repo / "deploy")
    descriptor.write_text(descriptor.read_text().replace("replicas: 2", "replicas: 3", 1))
    before = snapshot(world)
    assert_refused(world, before, ["generate", str(descriptor), "--force"], "deploy: is a symbolic")


@pytest.mark.parametrize("dangling", [False, True])
def test_a_file_link_is_neither_written_through_nor_replaced(world: Path, dangling: bool) -> None:
    descriptor = repo_with(world, SIMPLE, generated=False)
    target = world / "outside" / ("nothing-here" if dangling else "victim.txt")
    os.symlink(target, descriptor.parent / "Dockerfile")
    before = snapshot(world)
    assert_refused(
        world,
        before,
        ["generate", str(descriptor), "--force"],
        f"Dockerfile: is a symbolic link (to {target})",
    )


def test_a_fifo_where_a_file_goes_is_refused_without_hanging(world: Path) -> None:
    descriptor = repo_with(world, SIMPLE, generated=False)
    os.mkfifo(descriptor.parent / "compose.yaml")
    before = snapshot(world)
    assert_refused(world, before, ["generate", str(descriptor)], "compose.yaml: is not a regular")


def test_init_refuses_a_dangling_descriptor_link(world: Path) -> None:
    repo = world / "repo"
    (repo / "requirements.txt").write_text("fastapi\nuvicorn\n")
    (repo / "main.py").write_text("from fastapi import FastAPI\napp = FastAPI()\n")
    os.symlink(world / "outside" / "bashrc", repo / "shipforge.yaml")
    before = snapshot(world)
    code, _, err = run("init", "--yes", str(repo))
    assert code == 1 and "shipforge.yaml" in err
    assert snapshot(world) == before


def test_the_single_file_helper_never_writes_through_a_link(world: Path) -> None:
    from generator.errors import ShipforgeError
    from generator.writer import write_file

    repo = world / "repo"
    os.symlink(world / "outside" / "victim.txt", repo / "live")
    os.symlink(world / "outside" / "gone", repo / "dangling")
    before = snapshot(world)
    for name in ("live", "dangling"):
        with pytest.raises(ShipforgeError) as caught:
            write_file(repo / name, "x\n")
        assert f"{repo / name}: is a symbolic link (to {world / 'outside'}" in str(
            caught.value.issues[0]
        )
    assert snapshot(world) == before
    write_file(repo / "plain", "x\n")
    write_file(repo / "plain", "y\n")
    assert (repo / "plain").read_text() == "y\n"
    assert sorted(p.name for p in repo.iterdir()) == ["dangling", "live", "plain"]


# --- collisions -----------------------------------------------------------------------------


def with_path(descriptor: Path, service_path: str) -> str:
    text = descriptor.read_text()
    marker = "    runtime: "
    at = text.index(marker)
    return text[:at] + f"    path: {json.dumps(service_path)}\n" + text[at:]


@pytest.mark.parametrize(
    ("example", "service_path", "message"),
    [
        (SIMPLE, "compose.yaml", "collides with the generated file `compose.yaml`"),
        (SIMPLE, "DEPLOYMENT.md", "collides with the generated file `DEPLOYMENT.md`"),
        (SIMPLE, ".shipforge/manifest.json", "lies in .git or .shipforge"),
        (SIMPLE, ".shipforge", "lies in .git or .shipforge"),
        (SIMPLE, ".git", "lies in .git or .shipforge"),
        (SIMPLE, ".git/hooks", "lies in .git or .shipforge"),
        (GITHUB_K8S, "k8s/base/kustomization.yaml", "lies in the generated folder `k8s`"),
        (GITHUB_K8S, "k8s", "lies in the generated folder `k8s`"),
        (GITHUB_K8S, "deploy/api", "lies in the generated folder `deploy`"),
        (GITHUB_K8S, ".github", "lies in the generated folder `.github`"),
    ],
)
def test_validate_refuses_a_service_path_colliding_with_generated_output(
    world: Path, example: Path, service_path: str, message: str
) -> None:
    descriptor = world / "repo" / "shipforge.yaml"
    descriptor.write_text(with_path(example, service_path))
    before = snapshot(world)
    for command in ("validate", "generate"):
        assert_refused(world, before, [command, str(descriptor)], "services.", ".path", message)


def test_a_folder_where_a_file_goes_fails_before_anything_is_written(world: Path) -> None:
    descriptor = repo_with(world, GITHUB_K8S, generated=False)
    (descriptor.parent / "k8s" / "base" / "kustomization.yaml").mkdir(parents=True)
    before = snapshot(world)
    assert_refused(
        world,
        before,
        ["generate", str(descriptor), "--force"],
        "k8s/base/kustomization.yaml: is a folder where shipforge writes a file",
    )


def test_an_output_folder_that_is_a_file_is_named_as_such(world: Path) -> None:
    descriptor = repo_with(world, SIMPLE, generated=False)
    (world / "afile").write_text("x\n")
    before = snapshot(world)
    for out in ("afile", "afile/sub"):
        assert_refused(
            world,
            before,
            ["generate", str(descriptor), "--out", str(world / out)],
            "is not a folder (it, or a folder above it, is a file): --out must name a folder",
        )


# --- a failure in the middle ----------------------------------------------------------------


def test_a_rename_failing_half_way_puts_every_file_back(
    world: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    descriptor = repo_with(world, GITHUB_K8S)
    descriptor.write_text(descriptor.read_text().replace("LOG_LEVEL: info", "LOG_LEVEL: warn"))
    descriptor.write_text(descriptor.read_text().replace("replicas: 2", "replicas: 3", 1))
    (descriptor.parent / "compose.yaml").write_text("services: {}\n")
    before = snapshot(world)
    real = os.replace
    calls = {"n": 0}

    def flaky(*args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 4:
            raise OSError(5, "Input/output error")
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", flaky)
    assert_refused(world, before, ["generate", str(descriptor)], "Input/output error")
    assert calls["n"] > 4, "the files renamed before the failure were put back"


def test_a_file_changed_between_planning_and_writing_stops_the_run(world: Path) -> None:
    from generator.pipeline import generate
    from generator.writer import WriteError, apply

    descriptor = repo_with(world, SIMPLE)
    descriptor.write_text(descriptor.read_text().replace("LOG_LEVEL: info", "LOG_LEVEL: warn"))
    _, changes = generate(descriptor, descriptor.parent)
    (descriptor.parent / "compose.yaml").write_text("# written meanwhile\n")
    before = snapshot(world)
    with pytest.raises(WriteError) as caught:
        apply(descriptor.parent, changes)
    assert "changed while shipforge was planning" in str(caught.value.issues[0])
    assert snapshot(world) == before


# --- full and read-only disks ---------------------------------------------------------------


def mount(*args: str) -> None:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs or a read-only bind needs root")
    result = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"mount not permitted here: {result.stderr.strip()}")


@pytest.fixture
def mounted(tmp_path: Path) -> Iterator[list[Path]]:
    """Mount points to unmount after the test (deepest first)."""
    points: list[Path] = []
    yield points
    for point in reversed(points):
        subprocess.run(["umount", "-l", str(point)], check=False, capture_output=True)


@pytest.mark.parametrize("first_run", [True, False])
def test_a_full_disk_leaves_the_tree_as_it_was(
    tmp_path: Path, mounted: list[Path], first_run: bool
) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    mount("-t", "tmpfs", "-o", "size=200k", "tmpfs", str(disk))
    mounted.append(disk)
    descriptor = disk / "shipforge.yaml"
    if not first_run:
        # A first, small generation fits; the 38 files of the Kubernetes example do not.
        shutil.copy(SIMPLE, descriptor)
        code, out, err = run("generate", str(descriptor))
        assert code == 0, out + err
    shutil.copy(GITHUB_K8S, descriptor)
    before = snapshot(disk)
    err = assert_refused(disk, before, ["generate", str(descriptor)], "No space left on device")
    assert "writing failed; nothing was changed" in err and "free some space" in err


def test_a_read_only_part_of_the_tree_leaves_the_tree_as_it_was(
    world: Path, mounted: list[Path]
) -> None:
    descriptor = repo_with(world, TERRAFORM)
    terraform = descriptor.parent / "terraform"
    descriptor.write_text(descriptor.read_text().replace("name: ", "name: x", 1))
    mount("--bind", str(terraform), str(terraform))
    mounted.append(terraform)
    mount("-o", "remount,bind,ro", str(terraform))
    before = snapshot(world)
    err = assert_refused(world, before, ["generate", str(descriptor)], "Read-only file system")
    assert "terraform/" in err and "read-only for you" in err


def test_two_runs_into_one_folder_never_leave_a_torn_tree(world: Path) -> None:
    """Two generates of different descriptors at once: the result is one of them, whole."""
    import sys

    from generator.writer import digest, read_manifest

    repo = world / "repo"
    first, second = world / "a.yaml", world / "b.yaml"
    shutil.copy(SIMPLE, first)
    second.write_text(SIMPLE.read_text().replace("LOG_LEVEL: info", "LOG_LEVEL: warn"))
    for _ in range(6):
        runs = [
            subprocess.Popen(
                [sys.executable, "-m", "generator", "generate", str(d), "--out", str(repo)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for d in (first, second)
        ]
        results = [(r.wait(timeout=120), r.stderr.read() if r.stderr else "") for r in runs]
        for code, err in results:
            assert code in (0, 1) and "unexpectedly" not in err, err
        assert any(code == 0 for code, _ in results)
        manifest = read_manifest(repo)
        for path, recorded in manifest.items():
            assert digest((repo / path).read_text()) == recorded, f"{path} is torn"
        assert not [p for p in repo.rglob("*shipforge-tmp")], "no temporary file is left"


def test_an_output_folder_made_by_a_failed_run_is_removed_again(
    world: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    descriptor = repo_with(world, SIMPLE, generated=False)
    real = os.replace

    def failing(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing)
    before = snapshot(world)
    out = world / "new" / "deeper"
    assert_refused(world, before, ["generate", str(descriptor), "--out", str(out)], "No space")
    assert not (world / "new").exists()
    monkeypatch.setattr(os, "replace", real)


def test_without_git_an_edit_is_left_alone_and_reported(
    world: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    descriptor = repo_with(world, SIMPLE)
    compose = descriptor.parent / "compose.yaml"
    compose.write_text(compose.read_text().replace("services:\n", "services: # mine\n", 1))
    edited = compose.read_text()
    descriptor.write_text(descriptor.read_text().replace("LOG_LEVEL: info", "LOG_LEVEL: warn"))
    monkeypatch.setenv("PATH", str(world / "outside"))  # no git there
    code, out, err = run("generate", str(descriptor))
    assert code == 1 and "not written: compose.yaml" in err and "is git installed?" in err
    assert compose.read_text() == edited
    assert "updated: .env.example" in out, "the other files are written"


@pytest.mark.parametrize("delay", [0.35, 0.5, 0.7, 0.9])
def test_an_interrupted_run_leaves_no_temporary_file_and_no_torn_file(
    world: Path, delay: float
) -> None:
    import signal
    import sys
    import time

    from generator.writer import digest, read_manifest

    descriptor = repo_with(world, GITHUB_K8S, generated=False)
    process = subprocess.Popen(
        [sys.executable, "-m", "generator", "generate", str(descriptor)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=120) in (0, 1, 130, -signal.SIGINT)
    repo = descriptor.parent
    assert not [p for p in repo.rglob("*shipforge-tmp")], "no temporary file is left"
    manifest = read_manifest(repo)
    written = [p for p in repo.rglob("*") if p.is_file() and ".shipforge" not in p.parts]
    if not manifest:
        assert [p.name for p in written] == ["shipforge.yaml"], "all or nothing"
    for path, recorded in manifest.items():
        assert digest((repo / path).read_text()) == recorded


PATHS = [
    "Dockerfile",
    "k8s/base/kustomization.yaml",
    ".github/workflows/ci.yml",
    ".gitignore",
    ".gitlab-ci.yml",
    "a b/c",
    "../x",
    "/etc/passwd",
    "a//b",
    "a/./b",
    "a/..",
    ".",
    "a/",
    "a\\b",
    "a\u0000b",
    "a\tb",
    ".git",
    ".git/config",
    "x/.git/y",
    ".shipforge/manifest.json",
    "x/.shipforge",
]


def test_the_manifest_schema_and_the_writer_agree_on_every_path() -> None:
    import re

    from jsonschema import Draft202012Validator

    from generator.writer import MANIFEST_SCHEMA, safe_relative

    schema = json.loads(MANIFEST_SCHEMA.read_text())
    Draft202012Validator.check_schema(schema)
    pattern = re.compile(schema["$defs"]["path"]["pattern"])
    for path in PATHS:
        assert bool(pattern.search(path)) == safe_relative(path), path
    assert safe_relative("a\n") is False, "the writer refuses what the schema's `$` lets by"


def test_a_tampered_or_linked_base_store_is_never_trusted(world: Path) -> None:
    descriptor = repo_with(world, SIMPLE)
    repo = descriptor.parent
    compose = repo / "compose.yaml"
    compose.write_text(compose.read_text().replace("services:\n", "services: # mine\n", 1))
    descriptor.write_text(descriptor.read_text().replace("LOG_LEVEL: info", "LOG_LEVEL: warn"))
    recorded = json.loads((repo / ".shipforge" / "manifest.json").read_text())["files"]
    blob = repo / ".shipforge" / "base" / recorded["compose.yaml"].removeprefix("sha256:")
    blob.write_text("services: {}\n")  # no longer the content its name says
    code, _, err = run("generate", str(descriptor))
    assert "services: # mine" in compose.read_text(), "merged as new: nothing is lost"
    assert code in (0, 1) and "unexpectedly" not in err

    shutil.rmtree(repo / ".shipforge" / "base")
    os.symlink(world / "outside", repo / ".shipforge" / "base")
    descriptor.write_text(descriptor.read_text().replace("LOG_LEVEL: warn", "LOG_LEVEL: error"))
    before = snapshot(world)
    assert_refused(world, before, ["generate", str(descriptor)], ".shipforge/base: is a symbolic")
