"""Hostile descriptor values land in compose, .env and Dockerfiles as the very strings written."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dotenv import dotenv_values

from generator import lint
from tests.conftest import generate_tree
from tests.hostile import HOSTILE_VALUES as VALUES
from tests.toolcheck import require

COMMAND = "python -c 'print(\"$(x) {{ y }} ${{ z }}\")' --flag=on"


def descriptor(tmp_path: Path) -> Path:
    env = "\n".join(f"      {k}: {json.dumps(v)}" for k, v in VALUES.items())
    path = tmp_path / "shipforge.yaml"
    path.write_text(f"""version: 1
project:
  name: hostile
  description: "multi\\nline {{{{ x }}}} ${{{{ y }}}}"
services:
  api:
    runtime: python
    command: {json.dumps(COMMAND)}
    release: {json.dumps(COMMAND)}
    port: 8000
    env:
{env}
""")
    return path


def test_values_survive_every_core_format(tmp_path: Path) -> None:
    out = generate_tree(descriptor(tmp_path), tmp_path / "out")

    for compose in ("compose.yaml", "compose.production.yaml"):
        service = yaml.safe_load((out / compose).read_text())["services"]["api"]
        unescaped = {
            k: v.replace("$$", "$") for k, v in service["environment"].items() if k in VALUES
        }
        assert unescaped == VALUES
        assert [a.replace("$$", "$") for a in service["command"]] == shlex.split(COMMAND)
        release = yaml.safe_load((out / compose).read_text())["services"]["api-release"]
        assert [a.replace("$$", "$") for a in release["command"]] == shlex.split(COMMAND)

    env = dotenv_values(out / ".env.example", interpolate=False)
    assert {k: env[k] for k in VALUES} == VALUES

    dockerfile = (out / "Dockerfile").read_text()
    cmd = next(line for line in dockerfile.splitlines() if line.startswith("CMD "))
    assert json.loads(cmd.removeprefix("CMD ")) == shlex.split(COMMAND)


def test_hostile_output_still_passes_the_linters(tmp_path: Path) -> None:
    out = generate_tree(descriptor(tmp_path), tmp_path / "out")
    require(lint.hadolint([out / "Dockerfile"]))
    require(lint.compose_config(out / "compose.yaml"))
    require(
        lint.check_jsonschema(
            [out / "compose.yaml", out / "compose.production.yaml"], "vendor.compose-spec"
        )
    )
    require(
        lint.yamllint(
            [out / "compose.yaml", out / "compose.production.yaml"],
            Path(lint.__file__).with_name("yamllint.yaml"),
        )
    )


def test_env_values_survive_docker_compose(tmp_path: Path) -> None:
    """compose reads the .env a developer copies from .env.example exactly as written."""
    out = generate_tree(descriptor(tmp_path), tmp_path / "out")
    (out / ".env").write_text((out / ".env.example").read_text())
    probe = out / "probe.yaml"
    probe.write_text("services:\n  probe:\n    image: busybox:1\n    env_file: [.env]\n")
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("docker-compose")),
            "-f",
            str(probe),
            "config",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=out,
    )
    if result.returncode and "No such file" in result.stderr:
        pytest.skip("docker-compose not installed")
    assert result.returncode == 0, result.stderr
    environment = json.loads(result.stdout)["services"]["probe"]["environment"]
    assert {k: environment[k].replace("$$", "$") for k in VALUES} == VALUES
