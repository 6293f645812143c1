"""Every generated Terraform stack against the real provider schemas, offline (tests/tfschema.py).

The stacks: the examples with a Terraform target and the fixtures in tests/fixtures/terraform
(each cloud with GitHub and GitLab CI, PostgreSQL, Redis, volumes, several public and internal
services, an environment without a domain, and names at their maximum length). The checker
itself is tested with injected mistakes, and the version pins against the schemas it has.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests import tfschema
from tests.conftest import ROOT, generate_tree

FIXTURES = ROOT / "tests" / "fixtures" / "terraform"
TERRAFORM_EXAMPLES = sorted(
    p.parent.name
    for p in (ROOT / "examples").glob("*/shipforge.yaml")
    if "terraform: " in p.read_text() and "terraform: none" not in p.read_text()
)


_PARSED: dict[Path, tfschema.Stack] = {}


def parsed(folder: Path) -> tfschema.Stack:
    """A stack read once per session (python-hcl2 takes its time)."""
    if folder not in _PARSED:
        _PARSED[folder] = tfschema.read_stack(folder)
    return _PARSED[folder]


def _schemas_ready() -> None:
    missing = [k for k in tfschema.SCHEMAS if not (tfschema.SCHEMA_DIR / f"{k}.json.gz").exists()]
    if missing:
        reason = f"provider schemas {missing} not built: run tests/install-tools.sh"
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory, generated: dict[str, Path]) -> dict[str, Path]:
    """name -> generated terraform folder."""
    root = tmp_path_factory.mktemp("tfschema")
    out = {name: generated[name] / "terraform" for name in TERRAFORM_EXAMPLES}
    for fixture in sorted(FIXTURES.glob("*/shipforge.yaml")):
        name = fixture.parent.name
        out[name] = generate_tree(fixture, root / name) / "terraform"
    return out


def test_the_fixtures_cover_every_cloud_with_both_ci_systems() -> None:
    names = {p.name for p in FIXTURES.iterdir() if p.is_dir()}
    for cloud in ("aws-ecs", "gcp-cloud-run", "azure-container-apps"):
        assert {f"{cloud}-github", f"{cloud}-gitlab", f"{cloud}-long"} <= names


def test_every_stack_passes_the_provider_schema_check(stacks: dict[str, Path]) -> None:
    _schemas_ready()
    problems = []
    for name, folder in stacks.items():
        stack = parsed(folder)
        sets = tfschema.schemas_for(stack)
        assert sets and all(sets), f"{name}: no schema for its providers"
        for schemas in sets:
            checker = tfschema.Checker(stack, schemas)
            problems += [f"{name}/{finding}" for finding in checker.run()]
            # A check that saw nothing proves nothing.
            assert checker.counts["blocks"] >= 10, (name, checker.counts)
            assert checker.counts["references"] >= 50, (name, checker.counts)
    assert not problems, "\n".join(problems)


def test_every_pinned_major_has_a_schema(stacks: dict[str, Path]) -> None:
    """A pin that lets in a major the suite has no schema for would go unchecked."""
    covered = {tuple(key.rsplit("-", 1)) for key in tfschema.SCHEMAS}
    for name, folder in stacks.items():
        pins = tfschema.required_providers(parsed(folder))
        assert pins, name
        for provider, constraint in pins.items():
            for major in tfschema.majors_allowed(constraint):
                assert (provider, str(major)) in covered, (
                    f"{name}: {provider} {constraint!r} allows {major}.x, which no schema in "
                    "tests/tfschema.py SCHEMAS covers"
                )


def test_the_built_schemas_are_the_pinned_versions() -> None:
    _schemas_ready()
    for key, (_, version) in tfschema.SCHEMAS.items():
        schema = tfschema.load_schema(key)
        assert (schema["name"], schema["version"]) == (key.rsplit("-", 1)[0], version)
        assert len(schema["resources"]) > (5 if key.startswith("random") else 500)
        assert schema["provider"]["args"]


@pytest.mark.parametrize(
    ("constraint", "majors"),
    [
        ("~> 6.27", {6}),
        ("~> 7.20", {7}),
        (">= 7.20, < 9.0", {7, 8}),
        ("~> 5.2", {5}),
        ("~> 5.2.1", {5}),
        (">= 4.0", set(range(4, 30))),
        ("= 3.1.0", {3}),
    ],
)
def test_version_constraints_are_read_as_terraform_does(constraint: str, majors: set[int]) -> None:
    assert tfschema.majors_allowed(constraint) == majors
    assert tfschema.allows("~> 5.2", "5.10.0") and not tfschema.allows("~> 5.2", "6.0.0")
    assert not tfschema.allows("~> 5.2.1", "5.3.0")


# ---- the checker catches what it should ------------------------------------------------------

# Each mistake is added to a copy of a generated GCP stack, alone, and must be reported with
# its code. `google_service_account.injected` is declared by INJECTED_BASE.
INJECTED_BASE = """
resource "google_service_account" "injected" {
  account_id = "injected"
}
"""
MISTAKES = {
    "unknown-type": 'resource "google_cloud_run_v3_service" "x" {\n  name = "x"\n}\n',
    "unknown-argument": 'resource "google_service_account" "x" {\n  account_id = "x"\n'
    '  colour     = "blue"\n}\n',
    "unknown-argument-nested": 'resource "google_cloud_run_v2_service" "x" {\n  name = "x"\n'
    '  location = "l"\n  template {\n    containers {\n      image = "i"\n'
    '      imag  = "typo"\n    }\n  }\n}\n',
    "unknown-argument-dynamic": 'resource "google_cloud_run_v2_service" "x" {\n  name = "x"\n'
    '  location = "l"\n  template {\n    dynamic "containers" {\n      for_each = ["a"]\n'
    "      content {\n        image   = containers.value\n        portz = 1\n      }\n"
    "    }\n  }\n}\n",
    "block-syntax": 'resource "google_cloud_run_v2_service" "x" {\n  name = "x"\n'
    '  location = "l"\n  template = {}\n}\n',
    "attribute-syntax": 'resource "google_service_account" "x" {\n  account_id {\n  }\n}\n',
    "missing-required": 'resource "google_service_account" "x" {\n  display_name = "x"\n}\n',
    "missing-required-nested": 'resource "google_cloud_run_v2_service" "x" {\n  name = "x"\n'
    '  location = "l"\n  template {\n    containers {\n      name = "c"\n    }\n  }\n}\n',
    "computed-only": 'resource "google_service_account" "x" {\n  account_id = "x"\n'
    '  unique_id  = "1"\n}\n',
    "undeclared-resource": 'output "x" {\n  value = google_service_account.nope.email\n}\n',
    "unknown-attribute": 'output "x" {\n  value = google_service_account.injected.emial\n}\n',
    "unknown-attribute-in-template": 'output "x" {\n'
    '  value = "sa: ${google_service_account.injected.emial}"\n}\n',
    "instance-key": 'output "x" {\n  value = google_service_account.injected[0].email\n}\n',
    "instance-key-missing": 'resource "google_service_account" "many" {\n  count      = 2\n'
    '  account_id = "m${count.index}"\n}\noutput "x" {\n'
    "  value = google_service_account.many.email\n}\n",
    "ignore-changes": 'resource "google_cloud_run_v2_service" "x" {\n  name = "x"\n'
    '  location = "l"\n  template {\n    containers {\n      image = "i"\n    }\n  }\n'
    "  lifecycle {\n    ignore_changes = [template[0].containerz]\n  }\n}\n",
    "undeclared-variable": 'output "x" {\n  value = var.nope\n}\n',
    "undeclared-local": 'output "x" {\n  value = local.nope\n}\n',
    "names-key": 'output "x" {\n  value = local.names.nope\n}\n',
    "provider-argument": 'provider "google" {\n  alias  = "x"\n  regoin = "europe-west1"\n}\n',
    "undeclared-data": 'output "x" {\n  value = data.google_project.nope.number\n}\n',
    "unknown-data-type": 'data "google_projekt" "x" {\n}\n',
    "ephemeral-value": 'ephemeral "random_password" "x" {\n  length = 20\n}\n'
    'resource "google_secret_manager_secret_version" "x" {\n  secret      = "s"\n'
    "  secret_data = ephemeral.random_password.x.result\n}\n",
    "undeclared-ephemeral": 'resource "google_sql_user" "x" {\n  name        = "x"\n'
    '  instance    = "i"\n  password_wo = ephemeral.random_password.nope.result\n}\n',
}
EXPECTED = {
    "unknown-argument-nested": "unknown-argument",
    "unknown-argument-dynamic": "unknown-argument",
    "missing-required-nested": "missing-required",
    "unknown-attribute-in-template": "unknown-attribute",
    "instance-key-missing": "instance-key",
    "provider-argument": "unknown-argument",
    "undeclared-data": "undeclared-resource",
    "unknown-data-type": "unknown-type",
    "undeclared-ephemeral": "undeclared-resource",
}


@pytest.fixture(scope="module")
def clean_gcp(stacks: dict[str, Path]) -> Path:
    return stacks["gcp-cloud-run-github"]


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_an_injected_mistake_is_caught(mistake: str, clean_gcp: Path, tmp_path: Path) -> None:
    _schemas_ready()
    folder = tmp_path / "terraform"
    shutil.copytree(clean_gcp, folder)
    (folder / "zz_injected.tf").write_text(INJECTED_BASE + MISTAKES[mistake])
    findings = tfschema.check(folder)
    codes = {f.code for f in findings}
    assert codes == {EXPECTED.get(mistake, mistake)}, [str(f) for f in findings]
    assert all(f.file == "zz_injected.tf" and f.line > 1 for f in findings)


def test_the_unmodified_copy_is_clean(clean_gcp: Path) -> None:
    """The baseline of the injection tests: the same stack without the mistake passes."""
    _schemas_ready()
    assert tfschema.check(clean_gcp) == []


# ---- names and the CI contract -----------------------------------------------------------------


def test_every_name_fits_its_platform_limit_in_every_environment(stacks: dict[str, Path]) -> None:
    problems, evaluated = [], 0
    for name, folder in stacks.items():
        findings, count = tfschema.name_lengths(parsed(folder))
        problems += [f"{name}/{finding}" for finding in findings]
        evaluated += count
        if name.endswith("-long"):
            assert count >= 20, (name, count)  # the long names were really evaluated
    assert not problems, "\n".join(problems)
    assert evaluated > 500


def test_an_over_long_name_is_reported(stacks: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "terraform"
    shutil.copytree(stacks["gcp-cloud-run-long"], folder)
    (folder / "zz_injected.tf").write_text(
        'resource "google_compute_firewall" "x" {\n'
        '  name    = "${local.names.stack}-a-firewall-rule-name-that-is-far-too-long"\n'
        '  network = "n"\n}\n'
    )
    findings, _ = tfschema.name_lengths(tfschema.read_stack(folder))
    assert {f.code for f in findings} == {"name-too-long"}
    assert len(findings) == 2  # once per environment


def _tfvars(folder: Path, env: str) -> str:
    return (folder / "environments" / f"{env}.tfvars").read_text()


@pytest.mark.parametrize("cloud", ["aws-ecs", "gcp-cloud-run", "azure-container-apps"])
def test_gitlab_stacks_trust_gitlab_tokens_of_the_environment_branch(
    cloud: str, stacks: dict[str, Path]
) -> None:
    """The trust follows the descriptor's CI system: GitLab's issuer and sub claim, per branch."""
    import yaml

    gitlab, github = stacks[f"{cloud}-gitlab"], stacks[f"{cloud}-github"]
    ci_gitlab, ci_github = (gitlab / "ci.tf").read_text(), (github / "ci.tf").read_text()
    assert "token.actions.githubusercontent.com" not in ci_gitlab
    assert "var.gitlab_url" in ci_gitlab and "var.github_repository" not in ci_gitlab
    assert "token.actions.githubusercontent.com" in ci_github and "gitlab" not in ci_github
    subject = "project_path:${var.gitlab_project}:ref_type:branch:ref:${var.deploy_branch}"
    if cloud == "gcp-cloud-run":
        # CEL on the claims: project, protected branch and the GitLab environment.
        for claim in (
            "assertion.project_path == '${var.gitlab_project}'",
            "assertion.ref == '${var.deploy_branch}'",
            "assertion.ref_protected == 'true'",
            "assertion.environment == '${var.environment}'",
        ):
            assert claim in ci_gitlab
    else:
        assert subject in ci_gitlab
    descriptor = yaml.safe_load((FIXTURES / f"{cloud}-gitlab" / "shipforge.yaml").read_text())
    for env, spec in descriptor["environments"].items():
        assert f'deploy_branch = "{spec["branch"]}"' in _tfvars(gitlab, env)
        assert "deploy_branch" not in _tfvars(github, env)
    variables = (gitlab / "variables.tf").read_text()
    for name in ("gitlab_project", "gitlab_url", "deploy_branch"):
        assert f'variable "{name}"' in variables


def test_aws_account_level_resources_are_created_by_the_first_environment_only(
    stacks: dict[str, Path],
) -> None:
    for name in ("aws-ecs-github", "aws-ecs-gitlab"):
        folder = stacks[name]
        label = name.rsplit("-", 1)[1]
        envs = sorted(p.stem for p in (folder / "environments").glob("*.tfvars"))
        first = [env for env in envs if "create_ecr_repositories" not in _tfvars(folder, env)]
        assert len(first) == 1, first
        for env in set(envs) - set(first):
            text = _tfvars(folder, env)
            assert f"create_{label}_oidc_provider = false" in text
            assert "create_ecr_repositories     = false" in text


def test_the_fixture_stacks_pass_fmt_checkov_and_detect_secrets(
    stacks: dict[str, Path], tmp_path: Path
) -> None:
    """The fixtures reach what the examples do not (GitLab trust, an AWS environment without a
    domain and its plain-HTTP listeners, custom domains, long names): the same linters."""
    from generator import lint
    from tests.toolcheck import require

    scan = tmp_path / "checkov"
    for name, folder in stacks.items():
        if (FIXTURES / name).is_dir():
            require(lint.terraform_fmt(folder))
            shutil.copytree(folder, scan / name)
    require(lint.checkov(scan, ["terraform"]))
    require(lint.detect_secrets(sorted(scan.rglob("*.tf*"))))
