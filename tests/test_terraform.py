"""The Terraform stacks: formatted, parseable, checkov-clean, secret-free, and wired as promised.

Every stack the examples (12-15), the registry fixtures and a matrix of extra descriptors produce
goes through
`terraform fmt -check`, python-hcl2 and one shared checkov run; the structural tests then read
the parsed HCL to check the invariants a reviewer cares about (every secret a service uses
exists, every public web service has a health-checked target, CI deploys are never reverted,
names agree with generator/naming.py). `terraform validate` cannot run here: it needs the
provider binaries, which cannot be downloaded offline.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hcl2
import pytest

from generator import lint, naming
from generator.errors import InvalidDescriptor
from generator.loader import load
from generator.targets import terraform
from tests.conftest import ROOT, generate_tree
from tests.hostile import HOSTILE_VALUES as HOSTILE
from tests.toolcheck import require

EXAMPLES = {
    "12-aws-ecs": "aws-ecs",
    "13-gcp-cloud-run": "gcp-cloud-run",
    "14-azure-container-apps": "azure-container-apps",
    "15-aws-ecs-minimal": "aws-ecs",
}

# Descriptors the examples do not cover: every cloud with and without datastores, internal web
# services, several public services, workers with autoscaling, odd names.
MATRIX_SERVICES = """
  web-front:
    runtime: node
    command: node server.js
    port: 3000
    public: true
    secrets: [SESSION_KEY, _LEADING]
    release: node migrate.js
    uses: [postgres, redis]
  admin:
    runtime: node
    command: node admin.js
    port: 4000
    health: /status/ready
    public: true
    cpu: "2"
    memory: 5Gi
  internal-api:
    runtime: python
    command: python -m internal
    port: 9000
    autoscale: {min: 1, max: 3, cpu: 50}
    uses: [redis]
  queue-worker:
    runtime: python
    command: python -m worker
    autoscale: {min: 2, max: 5}
    secrets: [SESSION_KEY]
    uses: [postgres]
  store:
    runtime: python
    command: python -m store
    port: 7000
    volumes:
      - {name: blobs, mount: /var/lib/store, size: 1536Mi}
      - {name: cache, mount: /srv/cache}
"""
MATRIX = {f"matrix-{cloud}": (cloud, "datastores") for cloud in terraform.CLOUDS}

# Hostile values: each must land in the HCL as the very string written, never as a template.
HOSTILE_DESCRIPTION = 'Shop ${jsonencode(var)} %{ for x in y }\n"quoted" \\ end'
HOSTILE_COMMAND = 'python -c \'print("${x} %{y} \\\\n")\' --flag="a b"'


def _matrix_descriptor(cloud: str, variant: str) -> str:
    services = MATRIX_SERVICES
    datastores = 'datastores:\n  postgres: {version: "17"}\n  redis: {version: "7.2"}\n'
    if variant == "bare":
        services = re.sub(r"\n    (uses|release): .*", "", services)
        datastores = ""
    return (
        "version: 1\nproject:\n  name: matrix-app\n  description: Matrix\nservices:"
        f"{services}{datastores}"
        "environments:\n  qa: {domain: qa.example.org}\n  prod-eu: {domain: example.org}\n"
        f"targets:\n  terraform: {cloud}\n"
    )


def _hostile_descriptor(cloud: str) -> str:
    env = "\n".join(f"      {key}: {json.dumps(value)}" for key, value in HOSTILE.items())
    return f"""version: 1
project:
  name: hostile
  description: {json.dumps(HOSTILE_DESCRIPTION)}
services:
  api:
    runtime: python
    command: {json.dumps(HOSTILE_COMMAND)}
    release: {json.dumps(HOSTILE_COMMAND)}
    port: 8000
    public: true
    env:
{env}
  worker:
    runtime: python
    command: {json.dumps(HOSTILE_COMMAND)}
    env:
{env}
targets:
  terraform: {cloud}
"""


@pytest.fixture(scope="module")
def stacks(
    tmp_path_factory: pytest.TempPathFactory, generated: dict[str, Path]
) -> dict[str, tuple[str, Path, Path]]:
    """name -> (cloud, descriptor, generated terraform folder) for examples, matrix, hostile."""
    root = tmp_path_factory.mktemp("terraform")
    out: dict[str, tuple[str, Path, Path]] = {}
    for name, cloud in EXAMPLES.items():
        out[name] = (cloud, ROOT / "examples" / name / "shipforge.yaml", generated[name])
    texts = {name: _matrix_descriptor(*spec) for name, spec in MATRIX.items()}
    texts.update({f"hostile-{cloud}": _hostile_descriptor(cloud) for cloud in terraform.CLOUDS})
    for name, text in texts.items():
        descriptor = root / name / "shipforge.yaml"
        descriptor.parent.mkdir()
        descriptor.write_text(text)
        cloud = re.search(r"terraform: (\S+)", text)
        assert cloud
        out[name] = (cloud.group(1), descriptor, generate_tree(descriptor, root / name / "out"))
    return {name: (cloud, d, tree / "terraform") for name, (cloud, d, tree) in out.items()}


@pytest.fixture(scope="module")
def tool_stacks(
    stacks: dict[str, tuple[str, Path, Path]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[str, Path, Path]]:
    """The stacks above and those for a project.registry of each kind (issue 12 #4, from the
    schema fixtures; tests/test_registry.py checks their wiring): for the tools of the field."""
    root = tmp_path_factory.mktemp("terraform-registry")
    out = dict(stacks)
    for fixture in sorted((ROOT / "tests" / "fixtures" / "terraform").glob("*-registry")):
        descriptor = fixture / "shipforge.yaml"
        cloud = next(c for c in terraform.CLOUDS if fixture.name.startswith(c))
        tree = generate_tree(descriptor, root / fixture.name)
        out[fixture.name] = (cloud, descriptor, tree / "terraform")
    return out


@pytest.fixture(scope="module")
def checkov_result(
    tool_stacks: dict[str, tuple[str, Path, Path]], tmp_path_factory: pytest.TempPathFactory
) -> Any:
    """One checkov run over every stack but the hostile ones (it takes seconds to start)."""
    scan = tmp_path_factory.mktemp("checkov")
    for name, (_, _, folder) in tool_stacks.items():
        if not name.startswith("hostile"):
            shutil.copytree(folder, scan / name)
    return lint.checkov(scan, ["terraform"])


# ---- reading HCL ---------------------------------------------------------------------------

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


def hcl_string(raw: str) -> str:
    """The value of an HCL quoted-string literal (as python-hcl2 8 keeps it), per the HCL spec.

    Refuses a literal holding an interpolation or directive: a descriptor value must never
    become one.
    """
    assert raw.startswith('"') and raw.endswith('"'), raw
    body, out, i = raw[1:-1], [], 0
    while i < len(body):
        char = body[i]
        if char == "\\":
            code = body[i + 1]
            if code == "u":
                out.append(chr(int(body[i + 2 : i + 6], 16)))
                i += 6
                continue
            out.append(_ESCAPES[code])
            i += 2
        elif body.startswith(("$${", "%%{"), i):
            out.append(body[i] + "{")
            i += 3
        elif body.startswith(("${", "%{"), i):
            raise AssertionError(f"template sequence in a literal: {raw}")
        else:
            out.append(char)
            i += 1
    return "".join(out)


_PARSED: dict[Path, dict[str, dict[str, Any]]] = {}


def parse(folder: Path) -> dict[str, dict[str, Any]]:
    """Every .tf file of a stack parsed by python-hcl2 (once: the parser takes its time)."""
    if folder not in _PARSED:
        _PARSED[folder] = {
            p.name: hcl2.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.tf"))
        }
    return _PARSED[folder]


def _key(value: str) -> str:
    return value[1:-1] if value.startswith('"') else value


def resources(docs: dict[str, dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    """name -> body of every resource of one type across the stack."""
    found: dict[str, dict[str, Any]] = {}
    for doc in docs.values():
        for entry in doc.get("resource", []):
            for rtype, named in entry.items():
                if _key(rtype) == kind:
                    for name, body in named.items():
                        found[_key(name)] = body
    return found


def _ident_of(name: str) -> str:
    """The HCL label the stack gives a secret name (DATABASE_URL -> database_url)."""
    return name.lower()


def reference(expr: str) -> str:
    """`${aws_x.name.attr}` -> aws_x.name.attr."""
    assert expr.startswith("${") and expr.endswith("}"), expr
    return expr[2:-1]


def services_of(descriptor: Path) -> Iterator[Any]:
    yield from load(descriptor).services


# ---- the tools of the field ------------------------------------------------------------------


def test_terraform_fmt(tool_stacks: dict[str, tuple[str, Path, Path]]) -> None:
    for _, _, folder in tool_stacks.values():
        require(lint.terraform_fmt(folder))


def test_every_file_parses_with_python_hcl2(tool_stacks: dict[str, tuple[str, Path, Path]]) -> None:
    for _, _, folder in tool_stacks.values():
        files = [p for p in folder.rglob("*") if p.suffix in (".tf", ".tfvars", ".tfbackend")]
        assert len(files) > 10
        for path in files:
            text = path.read_text(encoding="utf-8")
            assert text.startswith("# Generated by shipforge"), path
            if path.suffix != ".tf":
                hcl2.loads(text)
        assert len(parse(folder)) == len([p for p in files if p.suffix == ".tf"])


def test_checkov_reports_no_failed_check(checkov_result: Any) -> None:
    require(checkov_result)


def test_every_checkov_skip_gives_a_reason(tool_stacks: dict[str, tuple[str, Path, Path]]) -> None:
    for _, _, folder in tool_stacks.values():
        for path in folder.glob("*.tf"):
            for line in path.read_text().splitlines():
                if "checkov:skip" in line:
                    assert re.fullmatch(r"\s*#checkov:skip=CKV2?_[A-Z]+_\d+:.{30,}", line), line


def test_detect_secrets_finds_nothing(tool_stacks: dict[str, tuple[str, Path, Path]]) -> None:
    files = [p for _, _, folder in tool_stacks.values() for p in folder.rglob("*") if p.is_file()]
    require(lint.detect_secrets(files))


# ---- structure: every cloud -------------------------------------------------------------------


def test_names_match_the_shared_naming_rules(stacks: dict[str, tuple[str, Path, Path]]) -> None:
    for cloud, descriptor, folder in stacks.values():
        project = load(descriptor)
        names = parse(folder)["names.tf"]["locals"][0]
        by_env = names["names_by_environment"]
        assert sorted(_key(k) for k in by_env) == sorted(e.name for e in project.environments)
        for raw_env, env_names in by_env.items():
            env = _key(raw_env)
            assert hcl_string(env_names["stack"]) == naming.stack(project.name, env)
            for service in project.services:
                mine = env_names["services"][terraform._ident(service.name)]
                if cloud == "aws-ecs":
                    expected = naming.ecs_service(project.name, env, service.name)
                    assert hcl_string(mine["service"]) == expected
                elif cloud == "gcp-cloud-run":
                    expected = naming.cloud_run_service(project.name, env, service.name)
                    assert hcl_string(mine["service"]) == expected
                    job = naming.cloud_run_job(project.name, env, service.name)
                    assert hcl_string(mine["job"]) == job
                else:
                    group = naming.resource_group(project.name, env)
                    assert hcl_string(env_names["resource_group"]) == group
                    expected = naming.container_app(project.name, env, service.name)
                    assert hcl_string(mine["app"]) == expected
                    job = naming.container_app_job(project.name, env, service.name)
                    assert hcl_string(mine["job"]) == job


def test_one_tfvars_and_backend_key_per_environment(
    stacks: dict[str, tuple[str, Path, Path]],
) -> None:
    for cloud, descriptor, folder in stacks.values():
        project = load(descriptor)
        for env in project.environments:
            tfvars = hcl2.loads((folder / "environments" / f"{env.name}.tfvars").read_text())
            assert hcl_string(tfvars["environment"]) == env.name
            public = any(s.public for s in project.services)
            if cloud == "aws-ecs" and public and env.domain:
                assert hcl_string(tfvars["domain"]) == env.domain
            backend = hcl2.loads((folder / "environments" / f"{env.name}.tfbackend").read_text())
            key = "prefix" if cloud == "gcp-cloud-run" else "key"
            assert env.name in hcl_string(backend[key])


def test_versions_are_pinned_and_state_is_locked(
    stacks: dict[str, tuple[str, Path, Path]],
) -> None:
    for cloud, _, folder in stacks.values():
        versions = parse(folder)["versions.tf"]["terraform"][0]
        assert hcl_string(versions["required_version"]).startswith("~> 1.")
        main = {"aws-ecs": "aws", "gcp-cloud-run": "google", "azure-container-apps": "azurerm"}
        provider = versions["required_providers"][0][main[cloud]]
        # A pessimistic pin, or a range up to the next-but-one major (google: 7.x and 8.x, both
        # checked against their schemas in test_terraform_schema.py).
        assert re.fullmatch(r"~> \d+\.\d+|>= \d+\.\d+, < \d+\.0", hcl_string(provider["version"]))
        backend = parse(folder)["backend.tf"]["terraform"][0]["backend"][0]
        if cloud == "aws-ecs":
            assert backend['"s3"']["use_lockfile"] is True


def test_image_tag_is_required_and_never_latest(
    stacks: dict[str, tuple[str, Path, Path]],
) -> None:
    for _, _, folder in stacks.values():
        variables = parse(folder)["variables.tf"]["variable"]
        image_tag = next(v['"image_tag"'] for v in variables if '"image_tag"' in v)
        assert "default" not in image_tag
        assert "latest" in image_tag["validation"][0]["condition"]
        for path in folder.glob("*.tf"):
            assert ":latest" not in path.read_text()


def test_variables_are_typed_and_described(stacks: dict[str, tuple[str, Path, Path]]) -> None:
    for _, _, folder in stacks.values():
        for variable in parse(folder)["variables.tf"]["variable"]:
            ((name, body),) = variable.items()
            assert "type" in body and len(hcl_string(body["description"])) > 20, name


# ---- structure: AWS ----------------------------------------------------------------------------


def aws_stacks(stacks: dict[str, tuple[str, Path, Path]]) -> list[tuple[Path, Path]]:
    return [(d, f) for cloud, d, f in stacks.values() if cloud == "aws-ecs"]


def test_ecs_services_roll_back_and_are_never_reverted(
    stacks: dict[str, tuple[str, Path, Path]],
) -> None:
    for descriptor, folder in aws_stacks(stacks):
        ecs = resources(parse(folder), "aws_ecs_service")
        assert sorted(ecs) == sorted(terraform._ident(s.name) for s in services_of(descriptor))
        for body in ecs.values():
            breaker = body["deployment_circuit_breaker"][0]
            assert breaker["enable"] is True and breaker["rollback"] is True
            ignored = body["lifecycle"][0]["ignore_changes"]
            assert ignored[0] == "task_definition"
            assert body["network_configuration"][0]["assign_public_ip"] is False


def test_fargate_sizes_are_valid_and_cover_the_request(
    stacks: dict[str, tuple[str, Path, Path]],
) -> None:
    valid = {(cpu, memory) for cpu, memories in terraform.FARGATE for memory in memories}
    for descriptor, folder in aws_stacks(stacks):
        tasks = resources(parse(folder), "aws_ecs_task_definition")
        for service in services_of(descriptor):
            task = tasks[terraform._ident(service.name)]
            cpu, memory = int(task["cpu"]), int(task["memory"])
            assert (cpu, memory) in valid
            assert cpu >= service.cpu_millis * 1024 / 1000 and memory >= service.memory_mib


def test_ecs_secrets_exist_and_only_their_users_read_them(
    stacks: dict[str, tuple[str, Path, Path]],
) -> None:
    for descriptor, folder in aws_stacks(stacks):
        text = (folder / "ecs.tf").read_text()
        docs = parse(folder)
        secrets = resources(docs, "aws_secretsmanager_secret")
        for service in services_of(descriptor):
            key = terraform._ident(service.name)
            block = text.split(f'resource "aws_ecs_task_definition" "{key}"')[1].split(
                "\nresource "
            )[0]
            wired = dict(
                re.findall(
                    r'\{ name = "(\w+)", valueFrom = aws_secretsmanager_secret\.(\w+)', block
                )
            )
            expected = (*service.datastore_secrets, *service.secrets)
            assert sorted(wired) == sorted(expected)
            for name, secret_key in wired.items():
                assert secrets[secret_key]["name"].endswith(f'/{name}"')
                assert "secret_string" not in secrets[secret_key]
            if expected:
                iam = (folder / "iam.tf").read_text()
                statement = iam.split(f'"{key}_execution"')[2].split("ReadOwnSecrets")[1]
                granted = re.findall(
                    r"aws_secretsmanager_secret\.(\w+)\.arn", statement.split("}")[0]
                )
                assert sorted(granted) == sorted(wired.values())
        # Terraform writes only the datastore URLs, and only write-only (never into state).
        urls = {_ident_of(store.url_variable) for store in load(descriptor).datastores}
        for name, version in resources(docs, "aws_secretsmanager_secret_version").items():
            assert name in urls and "secret_string" not in version
            assert version["secret_string_wo"].startswith('${format("')


def test_public_web_services_have_health_checked_https_targets(
    stacks: dict[str, tuple[str, Path, Path]],
) -> None:
    for descriptor, folder in aws_stacks(stacks):
        docs = parse(folder)
        groups = resources(docs, "aws_lb_target_group")
        ecs = resources(docs, "aws_ecs_service")
        public = [s for s in services_of(descriptor) if s.public]
        assert sorted(groups) == sorted(terraform._ident(s.name) for s in public)
        for service in public:
            key = terraform._ident(service.name)
            check = groups[key]["health_check"][0]
            assert hcl_string(check["path"]) == service.health
            assert groups[key]["port"] == service.port
            target = ecs[key]["load_balancer"][0]["target_group_arn"]
            assert reference(target) == f"aws_lb_target_group.{key}.arn"
        if public:
            listeners = resources(docs, "aws_lb_listener")
            assert hcl_string(listeners["https"]["protocol"]) == "HTTPS"
            assert reference(listeners["https"]["certificate_arn"]) == "var.certificate_arn"
            redirect = listeners["http"]["default_action"][0]["redirect"][0]
            assert hcl_string(redirect["protocol"]) == "HTTPS"
        else:
            assert not (folder / "alb.tf").exists()


def test_log_groups_are_encrypted_and_kept_a_year(
    stacks: dict[str, tuple[str, Path, Path]],
) -> None:
    for _, folder in aws_stacks(stacks):
        docs = parse(folder)
        groups = resources(docs, "aws_cloudwatch_log_group")
        assert groups
        for body in groups.values():
            assert reference(body["kms_key_id"]) == "aws_kms_key.main.arn"
            assert reference(body["retention_in_days"]) == "var.log_retention_days"
        variables = {k: v for d in docs["variables.tf"]["variable"] for k, v in d.items()}
        assert variables['"log_retention_days"']["default"] == 365


def test_aws_datastores_are_private_encrypted_and_backed_up(
    stacks: dict[str, tuple[str, Path, Path]],
) -> None:
    for descriptor, folder in aws_stacks(stacks):
        docs = parse(folder)
        stores = {s.name for s in load(descriptor).datastores}
        dbs = resources(docs, "aws_db_instance")
        caches = resources(docs, "aws_elasticache_replication_group")
        assert bool(dbs) == ("postgres" in stores) and bool(caches) == ("redis" in stores)
        for db in dbs.values():
            assert db["publicly_accessible"] is False and db["storage_encrypted"] is True
            # A generated password, write-only: never in plan or state.
            assert "password" not in db and "manage_master_user_password" not in db
            assert db["password_wo"].startswith("${ephemeral.")
            assert reference(db["password_wo_version"]) == "var.postgres_password_version"
            assert reference(db["backup_retention_period"]) == "var.backup_retention_days"
        for cache in caches.values():
            assert cache["at_rest_encryption_enabled"] is True
            assert cache["transit_encryption_enabled"] is True
            assert reference(cache["snapshot_retention_limit"]) == "var.backup_retention_days"


def test_aws_ci_role_trusts_one_repository_environment(
    stacks: dict[str, tuple[str, Path, Path]],
) -> None:
    for _, folder in aws_stacks(stacks):
        text = (folder / "ci.tf").read_text()
        assert '"repo:${var.github_repository}:environment:${var.environment}"' in text
        assert 'ci_issuer      = "https://token.actions.githubusercontent.com"' in text
        assert '"${local.ci_issuer_host}:aud"' in text
        assert '"${local.ci_issuer_host}:sub"' in text
        assert "iam:PassedToService" in text
        assert "ecs:DeregisterTaskDefinition" in text  # the deploy script's rollback cleans up


def test_autoscaling_follows_the_descriptor(stacks: dict[str, tuple[str, Path, Path]]) -> None:
    for descriptor, folder in aws_stacks(stacks):
        docs = parse(folder)
        targets = resources(docs, "aws_appautoscaling_target")
        policies = resources(docs, "aws_appautoscaling_policy")
        scaled = [s for s in services_of(descriptor) if s.autoscale]
        assert sorted(targets) == sorted(terraform._ident(s.name) for s in scaled)
        for service in scaled:
            assert service.autoscale
            key = terraform._ident(service.name)
            assert targets[key]["min_capacity"] == service.autoscale.min
            assert targets[key]["max_capacity"] == service.autoscale.max
            config = policies[f"{key}_cpu"]["target_tracking_scaling_policy_configuration"][0]
            assert config["target_value"] == service.autoscale.cpu


# ---- structure: GCP ----------------------------------------------------------------------------


def test_cloud_run_services_probe_health_and_read_declared_secrets(
    stacks: dict[str, tuple[str, Path, Path]],
) -> None:
    for cloud, descriptor, folder in stacks.values():
        if cloud != "gcp-cloud-run":
            continue
        docs = parse(folder)
        run = resources(docs, "google_cloud_run_v2_service")
        pools = resources(docs, "google_cloud_run_v2_worker_pool")
        jobs = resources(docs, "google_cloud_run_v2_job")
        secrets = resources(docs, "google_secret_manager_secret")
        access = resources(docs, "google_secret_manager_secret_iam_member")
        for service in services_of(descriptor):
            key = terraform._ident(service.name)
            body = run[key] if service.web else pools[key]
            container = body["template"][0]["containers"][0]
            if service.web:
                for probe in ("startup_probe", "liveness_probe"):
                    get = container[probe][0]["http_get"][0]
                    assert hcl_string(get["path"]) == service.health
                    assert get["port"] == service.port
                public = body["invoker_iam_disabled"]
                assert public is service.public
            ignored = body["lifecycle"][0]["ignore_changes"]
            assert "${template[0].containers[0].image}" in ignored
            wired = {
                hcl_string(e["name"]): reference(
                    e["value_source"][0]["secret_key_ref"][0]["secret"]
                )
                for e in container.get("env", [])
                if "value_source" in e
            }
            assert sorted(wired) == sorted((*service.datastore_secrets, *service.secrets))
            for name, ref in wired.items():
                secret_key = ref.split(".")[1]
                assert secrets[secret_key]["secret_id"].endswith(f'-{name}"')
                assert f"{secret_key}_{key}" in access
            assert (f"{key}_release" in jobs) == bool(service.release)
        urls = {_ident_of(store.url_variable) for store in load(descriptor).datastores}
        for name, version in resources(docs, "google_secret_manager_secret_version").items():
            assert name in urls and "secret_data" not in version
            assert version["secret_data_wo"].startswith('${format("')


def test_gcp_workload_identity_is_pinned_to_repository_and_environment(
    stacks: dict[str, tuple[str, Path, Path]],
) -> None:
    for cloud, _, folder in stacks.values():
        if cloud != "gcp-cloud-run":
            continue
        provider = resources(parse(folder), "google_iam_workload_identity_pool_provider")
        condition = provider["github"]["attribute_condition"]
        assert "repo:${var.github_repository}:environment:${var.environment}" in condition


# ---- structure: Azure --------------------------------------------------------------------------


def test_container_apps_use_revisions_probes_and_key_vault(
    stacks: dict[str, tuple[str, Path, Path]],
) -> None:
    for cloud, descriptor, folder in stacks.values():
        if cloud != "azure-container-apps":
            continue
        docs = parse(folder)
        apps = resources(docs, "azurerm_container_app")
        jobs = resources(docs, "azurerm_container_app_job")
        grants = resources(docs, "azurerm_role_assignment")
        for service in services_of(descriptor):
            key = terraform._ident(service.name)
            app = apps[key]
            assert hcl_string(app["revision_mode"]) == "Multiple"
            container = app["template"][0]["container"][0]
            if service.web:
                assert app["ingress"][0]["external_enabled"] is service.public
                for probe in ("startup_probe", "readiness_probe", "liveness_probe"):
                    assert hcl_string(container[probe][0]["path"]) == service.health
            else:
                assert "ingress" not in app
            references = {
                hcl_string(s["name"]): s["key_vault_secret_id"] for s in app.get("secret", [])
            }
            env_secrets = {
                hcl_string(e["name"]): hcl_string(e["secret_name"])
                for e in container.get("env", [])
                if "secret_name" in e
            }
            assert sorted(env_secrets) == sorted((*service.datastore_secrets, *service.secrets))
            for name, kebab in env_secrets.items():
                assert kebab in references and references[kebab].endswith(f'secrets/{kebab}"')
                grant = grants[f"{key}_reads_{terraform._ident(name)}"]
                assert grant["scope"].endswith(f'/secrets/{kebab}"')
            assert (f"{key}_release" in jobs) == bool(service.release)


# ---- volumes ----------------------------------------------------------------------------------


def test_volumes_are_persistent_private_and_mounted(
    stacks: dict[str, tuple[str, Path, Path]],
) -> None:
    checked = 0
    for cloud, descriptor, folder in stacks.values():
        docs = parse(folder)
        for service in services_of(descriptor):
            key = terraform._ident(service.name)
            for volume in service.volumes:
                checked += 1
                vkey = terraform._volume_key(service.name, volume.name)
                if cloud == "aws-ecs":
                    efs = resources(docs, "aws_efs_file_system")[vkey]
                    assert efs["encrypted"] is True
                    assert "aws_efs_backup_policy" in (folder / "efs.tf").read_text()
                    task = (
                        (folder / "ecs.tf")
                        .read_text()
                        .split(f'resource "aws_ecs_task_definition" "{key}"')[1]
                    )
                    assert f"aws_efs_access_point.{vkey}.id" in task
                    mount = f'sourceVolume = "{volume.name}", containerPath = "{volume.mount}"'
                    assert mount in task
                    ecs = resources(docs, "aws_ecs_service")[key]
                    assert ecs["deployment_minimum_healthy_percent"] == 0
                    assert ecs["deployment_maximum_percent"] == 100
                elif cloud == "gcp-cloud-run":
                    bucket = resources(docs, "google_storage_bucket")[vkey]
                    assert hcl_string(bucket["public_access_prevention"]) == "enforced"
                    body = resources(docs, "google_cloud_run_v2_service")[key]
                    template = body["template"][0]
                    mounted = {
                        hcl_string(m["name"]): hcl_string(m["mount_path"])
                        for m in template["containers"][0]["volume_mounts"]
                    }
                    assert mounted[volume.name] == volume.mount
                    volumes = {hcl_string(v["name"]): v for v in template["volumes"]}
                    bucket_ref = volumes[volume.name]["gcs"][0]["bucket"]
                    assert reference(bucket_ref) == f"google_storage_bucket.{vkey}.name"
                else:
                    share = resources(docs, "azurerm_storage_share")[vkey]
                    assert share["quota"] >= 1
                    template = resources(docs, "azurerm_container_app")[key]["template"][0]
                    mounted = {
                        hcl_string(m["name"]): hcl_string(m["path"])
                        for m in template["container"][0]["volume_mounts"]
                    }
                    assert mounted[volume.name] == volume.mount
                    storage = {hcl_string(v["name"]): v for v in template["volume"]}
                    assert hcl_string(storage[volume.name]["storage_type"]) == "AzureFile"
    assert checked >= 6


# ---- hostile values ----------------------------------------------------------------------------


def test_hostile_values_land_as_literal_strings(stacks: dict[str, tuple[str, Path, Path]]) -> None:
    expected_args = load(next(d for n, (_, d, _) in stacks.items() if n.startswith("hostile")))
    argv = list(expected_args.services[0].argv)
    for name, (cloud, _, folder) in stacks.items():
        if not name.startswith("hostile"):
            continue
        docs = parse(folder)
        if cloud == "aws-ecs":
            text = (folder / "ecs.tf").read_text()
            for block in text.split('resource "aws_ecs_task_definition"')[1:]:
                found = dict(
                    re.findall(r'\{ name = "(\w+)", value = ("(?:[^"\\]|\\.)*") \}', block)
                )
                assert {k: hcl_string(v) for k, v in found.items()} == HOSTILE
                command = re.search(r"command += (\[.*\])", block)
                assert command
                assert [hcl_string(a) for a in _split_list(command.group(1))] == argv
            continue
        if cloud == "gcp-cloud-run":
            bodies = [
                *resources(docs, "google_cloud_run_v2_service").values(),
                *resources(docs, "google_cloud_run_v2_worker_pool").values(),
            ]
            containers = [b["template"][0]["containers"][0] for b in bodies]
            for body in bodies:
                described = hcl_string(body["description"])
                assert described.endswith(HOSTILE_DESCRIPTION)
        else:
            containers = [
                a["template"][0]["container"][0]
                for a in resources(docs, "azurerm_container_app").values()
            ]
        assert len(containers) == 2
        for container in containers:
            values = {hcl_string(e["name"]): hcl_string(e["value"]) for e in container["env"]}
            assert values == HOSTILE
            assert [hcl_string(a) for a in container["args"]] == argv


def _split_list(text: str) -> list[str]:
    return re.findall(r'"(?:[^"\\]|\\.)*"', text)


# ---- sizes and refusals ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("millis", "mib", "expected"),
    [
        (250, 256, (256, 512)),
        (250, 2048, (256, 2048)),
        (250, 3072, (512, 3072)),
        (500, 768, (512, 1024)),
        (1000, 2048, (1024, 2048)),
        (1000, 9000, (2048, 9216)),
        (3000, 4096, (4096, 8192)),
        (16000, 122880, (16384, 122880)),
    ],
)
def test_fargate_rounds_up_to_the_nearest_valid_pair(
    millis: int, mib: int, expected: tuple[int, int]
) -> None:
    assert terraform.fargate_size(millis, mib) == expected


def test_cloud_run_and_container_apps_sizes() -> None:
    assert terraform.cloud_run_size(250, 256) == (1, 512)
    assert terraform.cloud_run_size(1000, 5120) == (2, 5120)
    assert terraform.cloud_run_size(3000, 1024) == (4, 2048)
    assert terraform.cloud_run_size(1000, 40000) is None
    assert terraform.container_apps_size(250, 256) == ("0.25", "0.5Gi")
    assert terraform.container_apps_size(500, 2048) == ("1", "2Gi")
    assert terraform.container_apps_size(1300, 512) == ("1.5", "3Gi")
    assert terraform.container_apps_size(4000, 9000) is None


@pytest.mark.parametrize(
    ("cloud", "services", "expected"),
    [
        ("aws-ecs", "  internal: {runtime: python, command: run}\n", "services.internal"),
        ("gcp-cloud-run", "  ci: {runtime: python, command: run}\n", "services.ci"),
        (
            "azure-container-apps",
            "  api: {runtime: python, command: run, secrets: [API_KEY, API__KEY]}\n",
            "services",
        ),
    ],
)
def test_names_that_would_clash_in_the_stack_are_refused(
    tmp_path: Path, cloud: str, services: str, expected: str
) -> None:
    descriptor = tmp_path / "shipforge.yaml"
    descriptor.write_text(
        f"version: 1\nproject: {{name: clash}}\nservices:\n{services}targets: {{terraform: {cloud}}}\n"
    )
    with pytest.raises(InvalidDescriptor) as raised:
        generate_tree(descriptor, tmp_path / "out")
    assert [issue.path for issue in raised.value.issues] == [expected]


def test_a_size_no_platform_offers_is_refused_with_its_place(tmp_path: Path) -> None:
    descriptor = tmp_path / "shipforge.yaml"
    descriptor.write_text(
        "version: 1\nproject: {name: big}\nservices:\n"
        "  api: {runtime: python, command: run, cpu: '6', memory: 10Gi}\n"
        "targets: {terraform: azure-container-apps}\n"
    )
    with pytest.raises(InvalidDescriptor) as raised:
        generate_tree(descriptor, tmp_path / "out")
    assert raised.value.issues[0].path == "services.api"
