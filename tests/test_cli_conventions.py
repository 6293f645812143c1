"""The CLI follows the conventions of the field: -h, completion, NO_COLOR, -q/-v, JSON, choices."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft7Validator
from typer.testing import CliRunner

from generator.cli import app
from generator.loader import SCHEMA_PATH
from tests.conftest import EXAMPLES

EXAMPLE = EXAMPLES[0] / "shipforge.yaml"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "generator", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "shipforge.yaml"
    path.write_text(text)
    return path


def test_dash_h_is_help_everywhere() -> None:
    for args in (["-h"], ["generate", "-h"], ["validate", "-h"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0 and "Usage:" in result.output, args


def test_completion_is_offered() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert "--install-completion" in result.output and "--show-completion" in result.output


def test_no_colour_in_a_pipe_and_none_with_no_color(tmp_path: Path) -> None:
    bad = write(tmp_path, "version: 1\nproject: {name: x}\nservices: {}\n")
    for env in ({}, {"NO_COLOR": "1"}):
        result = run("validate", str(bad), env=env)
        assert result.returncode == 1
        assert "\x1b[" not in result.stderr and result.stderr.startswith("error:")


def test_quiet_prints_only_the_result_and_verbose_every_file(tmp_path: Path) -> None:
    descriptor = tmp_path / "shipforge.yaml"
    descriptor.write_text(EXAMPLE.read_text())
    quiet = run("-q", "generate", str(descriptor))
    assert quiet.returncode == 0
    assert quiet.stdout.splitlines() == [quiet.stdout.splitlines()[-1]]
    assert "changed" in quiet.stdout
    verbose = run("-v", "generate", str(descriptor))
    assert "unchanged: Dockerfile" in verbose.stdout
    assert run("-q", "-v", "validate", str(descriptor)).returncode == 2


def test_validate_json_lists_every_problem_with_its_place(tmp_path: Path) -> None:
    bad = write(
        tmp_path,
        "version: 1\n"
        "project: {name: shop}\n"
        "services:\n"
        "  api:\n"
        "    runtime: pyhton\n"
        "    command: gunicorn app:app\n"
        "    replicas: 2\n"
        "    volumes: [{name: data, mount: /data}]\n",
    )
    result = run("validate", str(bad), "--format", "json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["schema_version"] == 1 and report["valid"] is False
    by_path = {i["path"]: i for i in report["issues"]}
    # The schema problem and the contract problem, in one run, in the order of the file.
    assert by_path["services.api.runtime"]["hint"] == "did you mean `python`?"
    assert by_path["services.api.runtime"]["line"] == 5
    assert "single instance" in by_path["services.api.volumes"]["message"]
    assert [i["line"] for i in report["issues"]] == sorted(i["line"] for i in report["issues"])


def test_validate_json_on_a_valid_descriptor() -> None:
    result = run("validate", str(EXAMPLE), "--format", "json")
    assert result.returncode == 0
    report = json.loads(result.stdout)
    assert report["valid"] is True and report["issues"] == [] and report["services"]


def test_generate_json_reports_every_file_and_check_exits_1(tmp_path: Path) -> None:
    descriptor = tmp_path / "shipforge.yaml"
    descriptor.write_text(EXAMPLE.read_text())
    checked = run("generate", str(descriptor), "--check", "--format", "json")
    assert checked.returncode == 1
    report = json.loads(checked.stdout)
    assert report["written"] is False and not (tmp_path / "Dockerfile").exists()
    assert {"path": "Dockerfile", "action": "create", "reason": "", "needs_you": False} in report[
        "files"
    ]
    written = run("generate", str(descriptor), "--format", "json")
    assert written.returncode == 0 and json.loads(written.stdout)["ok"] is True
    assert (tmp_path / "Dockerfile").is_file()


def test_a_bad_format_is_a_usage_error_naming_the_choices() -> None:
    result = run("validate", str(EXAMPLE), "--format", "jsn")
    assert result.returncode == 2 and "'text', 'json'" in result.stderr


@pytest.mark.parametrize(
    ("env", "flagged"),
    [
        ("AWS_SECRET_ACCESS_KEY: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", True),
        ("DB_PASSWORD: hunter2", True),
        ("UPSTREAM: postgres://app:s3cr3t@db:5432/app", True),
        ("GITHUB: ghp_0123456789abcdefghijABCDEFGHIJ0123456789", True),
        ("TOKEN_TTL: '3600'", False),
        ("LOG_LEVEL: info", False),
        ("API_KEY_HEADER: X-Api-Key", False),
        ("DB_PASSWORD: ''", False),
    ],
)
def test_secret_looking_env_values_are_refused(tmp_path: Path, env: str, flagged: bool) -> None:
    descriptor = write(
        tmp_path,
        "version: 1\nproject: {name: shop}\nservices:\n  api:\n    runtime: python\n"
        f"    command: gunicorn app:app\n    env:\n      {env}\n",
    )
    result = run("validate", str(descriptor))
    assert (result.returncode == 1) is flagged, result.stderr
    if flagged:
        assert "looks like a secret" in result.stderr and "secrets: [" in result.stderr
        value = env.partition(": ")[2]
        assert value not in result.stderr, "the refusal must not echo the value"


def test_pattern_failures_state_the_rule(tmp_path: Path) -> None:
    descriptor = write(
        tmp_path,
        "version: 1\nproject: {name: shop}\nservices:\n  api:\n    runtime: python\n"
        "    command: gunicorn app:app\n    port: 8000\n    health: healthz\n",
    )
    result = run("validate", str(descriptor))
    assert "must start with /" in result.stderr


def test_an_empty_services_block_says_so(tmp_path: Path) -> None:
    result = run("validate", str(write(tmp_path, "version: 1\nproject: {name: x}\nservices: {}\n")))
    assert "services: must not be empty" in result.stderr
    assert "should be non-empty" not in result.stderr


def test_a_public_service_without_a_domain_gets_a_note(tmp_path: Path) -> None:
    descriptor = write(
        tmp_path,
        "version: 1\nproject: {name: shop}\nservices:\n  api:\n    runtime: python\n"
        "    command: gunicorn app:app\n    port: 8000\n    public: true\n"
        "environments:\n  staging: {}\n  production: {domain: shop.example.com}\n"
        "targets: {kubernetes: true}\n",
    )
    result = run("validate", str(descriptor))
    assert result.returncode == 0
    assert "note:" in result.stderr and "staging has no domain: no Ingress" in result.stderr


def test_init_without_answers_says_what_to_do(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "requirements.txt").write_text("flask\n")
    (repo / "run_me.py").write_text("print('hi')\n")
    result = subprocess.run(
        [sys.executable, "-m", "generator", "init", str(repo)],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2, result.stderr
    assert "Aborted" not in result.stderr and "--yes" in result.stderr


def test_the_schema_is_draft_07_with_defaults_that_validate() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    Draft7Validator.check_schema(schema)
    validator = Draft7Validator(schema)

    def defaults(node: object, path: str) -> list[tuple[str, object, dict[str, object]]]:
        found = []
        if isinstance(node, dict):
            if "default" in node:
                found.append((path, node["default"], node))
            for key, value in node.items():
                found += defaults(value, f"{path}/{key}")
        return found

    seen = defaults(schema, "#")
    assert len(seen) >= 20
    for where, value, node in seen:
        sub = {k: v for k, v in node.items() if k != "default"}
        if "$ref" in sub:
            sub = {"$ref": sub["$ref"], "definitions": schema["definitions"]}
        errors = list(Draft7Validator(sub).iter_errors(value))
        assert not errors, f"{where}: default {value!r} breaks its own schema"
    assert validator.is_valid({"version": 1, "project": {"name": "x"}, "services": {}}) is False


def test_init_writes_a_modeline_editors_resolve(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "requirements.txt").write_text("fastapi\nuvicorn\n")
    (repo / "main.py").write_text("from fastapi import FastAPI\napp = FastAPI()\n")
    result = run("init", str(repo), "--yes")
    assert result.returncode == 0, result.stderr
    first = (repo / "shipforge.yaml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=.shipforge/shipforge.schema.json"
    assert (repo / ".shipforge/shipforge.schema.json").read_bytes() == SCHEMA_PATH.read_bytes()


def test_a_descriptor_that_is_not_a_regular_file_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    for path, message in (
        ("/dev/zero", "not a regular file"),
        (str(fifo), "not a regular file"),
        (str(tmp_path), "this is a folder"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "generator", "validate", path],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 1 and message in result.stderr, path


def test_a_yaml_merge_key_can_be_overridden(tmp_path: Path) -> None:
    descriptor = write(
        tmp_path,
        "version: 1\nproject: {name: shop}\nservices:\n"
        "  api: &base {runtime: python, command: gunicorn app:app, port: 8000}\n"
        "  admin: {<<: *base, port: 8001}\n",
    )
    result = run("validate", str(descriptor), "--format", "json")
    assert result.returncode == 0, result.stdout
