"""The docker, compose and env outputs of every example pass the real linters of their field."""

from __future__ import annotations

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
