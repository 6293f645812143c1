"""The docker, compose and env outputs of every example pass the real linters of their field;
the linters come only from PATH and the folders the user names."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from generator import lint
from tests.conftest import EXAMPLES
from tests.toolcheck import require

YAMLLINT_CONFIG = Path(lint.__file__).with_name("yamllint.yaml")
IDS = [e.name for e in EXAMPLES]


def files(root: Path, pattern: str) -> list[Path]:
    return sorted(p for p in root.rglob(pattern) if ".shipforge" not in p.parts)


@pytest.mark.parametrize("name", IDS)
def test_dockerfiles_pass_hadolint(name: str, generated: dict[str, Path]) -> None:
    dockerfiles = files(generated[name], "Dockerfile*")
    if not dockerfiles:
        pytest.skip("docker target off in this example")
    require(lint.hadolint(dockerfiles))


@pytest.mark.parametrize("name", IDS)
@pytest.mark.parametrize("compose", ["compose.yaml", "compose.production.yaml"])
def test_compose_files_pass_compose_and_the_compose_spec(
    name: str, compose: str, generated: dict[str, Path], tmp_path: Path
) -> None:
    path = generated[name] / compose
    if not path.exists():
        pytest.skip("compose target off in this example")
    # On a production host the deploy sets IMAGE_TAG to the commit SHA it deploys.
    host_env = tmp_path / "host.env"
    host_env.write_text("IMAGE_TAG=0123456789abcdef0123456789abcdef01234567\n")
    require(lint.compose_config(path, env_file=host_env))
    require(lint.check_jsonschema([path], "vendor.compose-spec"))


@pytest.mark.parametrize("name", IDS)
def test_all_yaml_passes_yamllint(name: str, generated: dict[str, Path]) -> None:
    yaml_files = files(generated[name], "*.yaml") + files(generated[name], "*.yml")
    if not yaml_files:
        pytest.skip("no YAML in this example's output")
    require(lint.yamllint(yaml_files, YAMLLINT_CONFIG))


@pytest.mark.parametrize("name", IDS)
def test_env_templates_pass_dotenv_linter(name: str, generated: dict[str, Path]) -> None:
    env_files = files(generated[name], ".env*.example")
    if not env_files:
        pytest.skip("env target off in this example")
    # 301/303 flag quoted values and '#' in values: exactly the lines where quoting is needed
    # to keep a value's meaning (see formats.dotenv), so they are expected there.
    require(lint.dotenv_linter(env_files, allowed_codes=("301", "303")))


@pytest.mark.parametrize("name", IDS)
def test_no_secret_anywhere_in_the_output(name: str, generated: dict[str, Path]) -> None:
    everything = [p for p in files(generated[name], "*") if p.is_file()]
    require(lint.detect_secrets(everything))


# --- where tools come from ---------------------------------------------------------------------


def _tool(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / name
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    return exe


def test_tools_are_never_taken_from_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "shipforge-test-linter"
    for folder in (".venv-checkov/bin", ".tools/npm/node_modules/.bin", "bin", "."):
        _tool(tmp_path / folder, name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SHIPFORGE_TOOLS_DIR", raising=False)
    # Relative PATH entries would be the current folder again: they are ignored.
    monkeypatch.setenv("PATH", os.pathsep.join([".", "bin", "", "/usr/bin", "/bin"]))
    lint.use_tools_dirs([])
    assert lint.find_tool(name) is None


def test_tools_come_from_the_folders_the_user_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "shipforge-test-linter"
    monkeypatch.delenv("SHIPFORGE_TOOLS_DIR", raising=False)
    named = _tool(tmp_path / "a" / ".venv-checkov" / "bin", name)
    try:
        lint.use_tools_dirs([tmp_path / "a"])
        assert lint.find_tool(name) == str(named)
    finally:
        lint.use_tools_dirs([])
    assert lint.find_tool(name) is None
    on_env = _tool(tmp_path / "b" / ".tools" / "npm" / "node_modules" / ".bin", name)
    monkeypatch.setenv(
        "SHIPFORGE_TOOLS_DIR", os.pathsep.join([str(tmp_path / "x"), str(tmp_path / "b")])
    )
    assert lint.find_tool(name) == str(on_env)
    # PATH (absolute entries) comes first.
    first = _tool(tmp_path / "path", name)
    monkeypatch.setenv("PATH", os.pathsep.join([str(tmp_path / "path"), "/usr/bin"]))
    assert lint.find_tool(name) == str(first)
