"""One registry for CI and the Terraform stack (issue 12 #4), per cloud and kind of registry.

generator/naming.py decides where images live; deploy/images.sh pushes `<registry>/<repo>` and
the stack must run (and grant access to) exactly those repositories. Each stack comes from a
fixture in tests/fixtures/terraform (the `*-registry` ones set project.registry) and is read
with python-hcl2; the registry values are resolved through the stack's locals.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import hcl2
import pytest

from generator import naming
from generator.errors import InvalidDescriptor
from generator.loader import load
from tests.conftest import ROOT, generate_tree

FIXTURES = ROOT / "tests" / "fixtures" / "terraform"
CASES = {
    # fixture: (cloud, what the stack does with the registry)
    "aws-ecs-github": ("aws-ecs", "own"),
    "aws-ecs-ecr-registry": ("aws-ecs", "given"),
    "aws-ecs-external-registry": ("aws-ecs", "external"),
    "gcp-cloud-run-github": ("gcp-cloud-run", "own"),
    "gcp-cloud-run-ar-registry": ("gcp-cloud-run", "given"),
    "azure-container-apps-github": ("azure-container-apps", "own"),
    "azure-container-apps-acr-registry": ("azure-container-apps", "given"),
    "azure-container-apps-external-registry": ("azure-container-apps", "external"),
}


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("registry")
    return {name: generate_tree(FIXTURES / name / "shipforge.yaml", root / name) for name in CASES}


def _unquote(value: str) -> str:
    return value[1:-1] if value.startswith('"') and value.endswith('"') else value


class Stack:
    """The parsed .tf files of one stack, with its locals resolved as far as they are literal."""

    def __init__(self, folder: Path) -> None:
        self.docs = [hcl2.loads(p.read_text()) for p in sorted(folder.glob("*.tf"))]
        self.locals: dict[str, Any] = {}
        for doc in self.docs:
            for block in doc.get("locals", []):
                self.locals.update({k: v for k, v in block.items() if not k.startswith("__")})

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for doc in self.docs:
            for entry in doc.get("resource", []):
                for rtype, named in entry.items():
                    if _unquote(rtype) == kind:
                        found.update({_unquote(n): body for n, body in named.items()})
        return found

    def value(self, text: str) -> str:
        """A string with `${local.a}` / `${local.a.b}` replaced by the locals' literal values."""

        def local(match: re.Match[str]) -> str:
            node: Any = self.locals
            for key in match.group(1).split("."):
                node = node[key]
            return self.value(node)

        return re.sub(r"\$\{local\.([a-z_.]+)\}", local, _unquote(text))

    def image(self, key: str) -> str:
        """The repository the stack runs image `key` from."""
        images = self.locals["images"]
        if isinstance(images, str):
            # AWS: a for expression over the ECR repositories.
            assert "local.ecr_registry}/${name}" in images, images
            registry = self.value(self.locals["ecr_registry"])
            return f"{registry}/{self.value(self.locals['ecr_repositories'][key])}"
        return self.value(images[key])


def images_sh(tree: Path) -> dict[str, Any]:
    """What deploy/images.sh pushes: its registry kind, literal and repositories."""
    text = (tree / "deploy" / "images.sh").read_text()
    kind = re.search(r"^registry_kind=(.*)$", text, re.M)
    literal = re.search(r"^registry_literal=(.*)$", text, re.M)
    repositories = re.search(r"^repositories=\((.*)\)$", text, re.M)
    assert kind and literal and repositories
    return {
        "kind": shlex.split(kind.group(1))[0],
        "literal": "".join(shlex.split(literal.group(1))),
        "repositories": shlex.split(repositories.group(1)),
    }


def _image_keys(tree: Path) -> dict[str, str]:
    """Image key (HCL identifier) -> repository name `<project>-<image>`."""
    project = load(FIXTURES / tree.name / "shipforge.yaml")
    return {i.name.replace("-", "_"): f"{project.name}-{i.name}" for i in project.images}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_stack_pulls_from_where_ci_pushes(trees: dict[str, Path], name: str) -> None:
    cloud, mode = CASES[name]
    tree = trees[name]
    pushed = images_sh(tree)
    project = load(FIXTURES / tree.name / "shipforge.yaml")
    decided = naming.registry(project.registry, project.targets.ci, cloud)
    assert decided["stack"] == mode
    stack = Stack(tree / "terraform")
    keys = _image_keys(tree)
    assert sorted(pushed["repositories"]) == sorted(keys.values())
    if mode == "own":
        # CI reads the registry from the stack's outputs (GCP_ARTIFACT_REGISTRY, ...).
        assert pushed["literal"] == ""
        assert pushed["kind"] == naming.CLOUD_REGISTRY[cloud]
        return
    assert pushed["literal"] == project.registry.rstrip("/")
    for key, repository in keys.items():
        assert stack.image(key) == f"{pushed['literal']}/{repository}", key
    for kind in ("aws_ecr_repository", "google_artifact_registry_repository"):
        assert not stack.resources(kind), f"{name} creates a registry of its own"
    assert not stack.resources("azurerm_container_registry")


def test_aws_given_ecr_grants_push_and_pull_on_exactly_those_repositories(
    trees: dict[str, Path],
) -> None:
    tree = trees["aws-ecs-ecr-registry"]
    stack = Stack(tree / "terraform")
    literal = images_sh(tree)["literal"]
    host, path = literal.split("/", 1)
    account, region = host.split(".")[0], host.split(".")[3]
    arns = {
        key: f"arn:aws:ecr:{region}:{account}:repository/{path}/{repository}"
        for key, repository in _image_keys(tree).items()
    }
    assert {k: stack.value(v) for k, v in stack.locals["ecr_repository_arns"].items()} == arns
    text = (tree / "terraform" / "ci.tf").read_text()
    assert "resources = values(local.ecr_repository_arns)" in text
    iam = (tree / "terraform" / "iam.tf").read_text()
    for service in load(FIXTURES / tree.name / "shipforge.yaml").services:
        key = service.image.replace("-", "_")
        assert f"resources = [local.ecr_repository_arns.{key}]" in iam
    readme = (tree / "terraform" / "README.md").read_text()
    assert "execution_role_arns" in readme and "ci_role_arn" in readme
    assert "create_ecr_repositories" not in (tree / "terraform" / "variables.tf").read_text()


def test_aws_external_registry_pulls_with_a_secret_only_execution_roles_read(
    trees: dict[str, Path],
) -> None:
    tree = trees["aws-ecs-external-registry"]
    stack = Stack(tree / "terraform")
    assert "registry_credentials" in stack.resources("aws_secretsmanager_secret")
    definitions = stack.resources("aws_ecs_task_definition")
    assert definitions
    for body in definitions.values():
        assert (
            "repositoryCredentials = {credentialsParameter = aws_secretsmanager_secret."
            in (body["container_definitions"])
        )
    iam = (tree / "terraform" / "iam.tf").read_text()
    assert iam.count("resources = [aws_secretsmanager_secret.registry_credentials.arn]") == len(
        definitions
    )
    assert "ecr:" not in iam + (tree / "terraform" / "ci.tf").read_text()


def test_gcp_given_repository_grants_ci_and_the_run_service_agent(trees: dict[str, Path]) -> None:
    tree = trees["gcp-cloud-run-ar-registry"]
    stack = Stack(tree / "terraform")
    found = naming.registry(images_sh(tree)["literal"], "github", "gcp-cloud-run")
    members = stack.resources("google_artifact_registry_repository_iam_member")
    for name, role in (("ci_push", "writer"), ("run_pull", "reader")):
        body = members[name]
        assert _unquote(body["project"]) == found["project"]
        assert _unquote(body["location"]) == found["location"]
        assert _unquote(body["repository"]) == found["repository"]
        assert _unquote(body["role"]) == f"roles/artifactregistry.{role}"
    assert "google_service_account.ci.email" in members["ci_push"]["member"]
    assert "serverless-robot-prod" in stack.value(members["run_pull"]["member"])


def test_azure_given_registry_is_granted_through_its_id(trees: dict[str, Path]) -> None:
    tree = trees["azure-container-apps-acr-registry"]
    stack = Stack(tree / "terraform")
    assignments = stack.resources("azurerm_role_assignment")
    assert assignments["ci_push"]["scope"] == "${var.registry_id}"
    pulls = [body for name, body in assignments.items() if name.endswith("_pull")]
    assert pulls and all(body["scope"] == "${var.registry_id}" for body in pulls)
    for app in stack.resources("azurerm_container_app").values():
        assert stack.value(app["registry"][0]["server"]) == images_sh(tree)["literal"]
    assert "app_principal_ids" in (tree / "terraform" / "README.md").read_text()


def test_azure_external_registry_pulls_with_a_key_vault_password(trees: dict[str, Path]) -> None:
    tree = trees["azure-container-apps-external-registry"]
    stack = Stack(tree / "terraform")
    host = images_sh(tree)["literal"].split("/")[0]
    for kind in ("azurerm_container_app", "azurerm_container_app_job"):
        for body in stack.resources(kind).values():
            registry = body["registry"][0]
            assert stack.value(registry["server"]) == host
            assert registry["username"] == "${var.registry_username}"
            secrets = {_unquote(s["name"]): s for s in body["secret"]}
            assert (
                "vault_uri}secrets/registry-password"
                in (secrets["registry-password"]["key_vault_secret_id"])
            )
    assert "ci_push" not in stack.resources("azurerm_role_assignment")


@pytest.mark.parametrize(
    ("literal", "kind", "stack", "parts"),
    [
        ("", "ecr", "own", {}),
        (
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/",
            "ecr",
            "given",
            {"account": "123456789012", "region": "eu-west-1", "path": "team"},
        ),
        ("docker.io/acme", "basic", "external", {"host": "docker.io"}),
        ("ghcr.io/acme", "ghcr", "external", {"images": "ghcr.io/acme"}),
    ],
)
def test_naming_decides_the_registry_once(
    literal: str, kind: str, stack: str, parts: dict[str, str]
) -> None:
    found = naming.registry(literal, "github", "aws-ecs")
    assert (found["kind"], found["stack"]) == (kind, stack)
    assert {k: found[k] for k in parts} == parts
    gar = naming.registry("europe-west1-docker.pkg.dev/p/repo/sub", "gitlab", "gcp-cloud-run")
    assert (gar["location"], gar["project"], gar["repository"]) == ("europe-west1", "p", "repo")
    assert naming.registry("acme.azurecr.io", "gitlab", "azure-container-apps")["stack"] == "given"


@pytest.mark.parametrize(
    "registry", ["docker.io/acme", "ghcr.io/acme", "europe-west1-docker.pkg.dev/only-project"]
)
def test_cloud_run_refuses_a_registry_it_cannot_run_images_from(
    registry: str, tmp_path: Path
) -> None:
    descriptor = tmp_path / "shipforge.yaml"
    descriptor.write_text(
        f"version: 1\nproject: {{name: shop, registry: {registry}}}\nservices:\n"
        "  api: {runtime: python, command: run, port: 8000}\n"
        "targets: {terraform: gcp-cloud-run}\n"
    )
    with pytest.raises(InvalidDescriptor) as raised:
        load(descriptor)
    assert [issue.path for issue in raised.value.issues] == ["project.registry"]
