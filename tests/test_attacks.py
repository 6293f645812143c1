"""Hostile repositories and inputs (issue 16): nothing leaks, nothing hangs, no planted code runs.

Each case builds the attack for real (symlinks to a credentials file, FIFOs, links to
/dev/zero, link loops, alias bombs, planted tools and configs) and runs the shipforge command
line in a separate process with a time bound, so a regression is a failed test, not a hung
suite. Every report format is read back with its own parser (JSON, SARIF, GitLab code
quality) before looking for the secret; DEPLOYMENT.md is read back with a CommonMark parser.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import site
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from markdown_it import MarkdownIt

from generator.formats import comment
from tests.conftest import EXAMPLES, ROOT, generate_tree

SECRET = "ghp_S3CRETt0ken9x"
CREDENTIALS = f"https://ci-bot:{SECRET}@github.com\n"
# Generous for a loaded two-core machine; every case below takes a second or two.
BOUND = 60.0


def shipforge(
    *args: str, cwd: Path, env: dict[str, str] | None = None, bound: float = BOUND
) -> subprocess.CompletedProcess[str]:
    """The real command line in its own process, killed past the bound (a hang fails)."""
    started = time.monotonic()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "generator", *args],
            cwd=cwd,
            env=env if env is not None else dict(os.environ),
            capture_output=True,
            text=True,
            timeout=bound,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"shipforge {' '.join(args)} still running after {bound:.0f} s")
    assert time.monotonic() - started < bound
    assert "unexpectedly" not in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A credentials file outside the repository, as ~/.git-credentials would be."""
    folder = tmp_path / "home"
    folder.mkdir()
    (folder / "credentials").write_text(CREDENTIALS)
    return folder / "credentials"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "Dockerfile").write_text('FROM python:3.12-slim\nUSER 1000\nCMD ["python"]\n')
    return root


def reports(repo: Path, *extra: str, cwd: Path | None = None) -> dict[str, Any]:
    """Every report format of one hostile repository, each parsed by its own reader."""
    out = repo.parent / "reports"
    out.mkdir(exist_ok=True)
    parsed: dict[str, Any] = {}
    for fmt in ("json", "sarif", "gitlab"):
        target = out / f"report.{fmt}"
        result = shipforge(
            "check", str(repo), "--format", fmt, "-o", str(target), *extra, cwd=cwd or repo.parent
        )
        assert result.returncode in (0, 1), result.stdout + result.stderr
        parsed["exit"] = result.returncode
        parsed[fmt] = json.loads(target.read_text())
        parsed[f"text-{fmt}"] = result.stdout + result.stderr
    return parsed


def leaked(parsed: dict[str, Any]) -> list[str]:
    return [name for name, value in parsed.items() if SECRET in json.dumps(value)]


# --- links out of the repository ------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "compose.yaml",
        ".github/workflows/ci.yml",
        ".gitlab-ci.yml",
        "k8s/deployment.yaml",
        ".env.example",
        "deploy.sh",
        "infra/main.tf",
        "Dockerfile.worker",
        "monitoring/prometheus.yml",
    ],
)
def test_a_link_to_a_credentials_file_is_never_read(repo: Path, outside: Path, name: str) -> None:
    link = repo / name
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside)
    parsed = reports(repo, "--skip", "checkov")
    assert leaked(parsed) == []
    problems = {p["path"]: p for p in parsed["json"]["problems"]}
    generic = name in ("k8s/deployment.yaml", "monitoring/prometheus.yml")
    if generic:
        # Not a deployment file by its name (its content would say): left out with a note.
        assert any(name in note and "leads out" in note for note in parsed["json"]["notes"])
    else:
        assert problems[name]["code"] == "not-checked" and problems[name]["failing"]
        assert "leads out of the repository" in problems[name]["message"]
        assert parsed["exit"] == 1
    # SARIF carries the notes too (what the Action uploads says what was left out).
    assert "leads out of the repository" in json.dumps(parsed["sarif"])


def test_a_link_to_etc_passwd_is_never_read(repo: Path) -> None:
    (repo / "compose.yaml").symlink_to("/etc/passwd")
    (repo / ".gitlab-ci.yml").symlink_to("/etc/passwd")
    parsed = reports(repo, "--skip", "checkov")
    assert not [n for n, v in parsed.items() if "root:x:0:0" in json.dumps(v)]


def test_compose_naming_an_outside_file_is_not_handed_to_compose(repo: Path, outside: Path) -> None:
    # compose reads env_file, extends and include itself and quotes their lines in errors.
    (repo / "compose.yaml").write_text(
        f"services:\n  web:\n    image: nginx:1.27\n    env_file: {outside}\n"
    )
    (repo / "compose.prod.yaml").write_text(
        "services:\n  web:\n    extends: {file: ../home/credentials, service: web}\n"
    )
    (repo / "compose.dev.yaml").write_text(
        "services:\n  web:\n    image: nginx:1.27\n    env_file: ${HOME}/.aws/credentials\n"
    )
    parsed = reports(repo, "--skip", "checkov")
    assert leaked(parsed) == []
    codes = {p["path"]: p["code"] for p in parsed["json"]["problems"]}
    assert codes["compose.yaml"] == codes["compose.prod.yaml"] == "not-checked"
    assert codes["compose.dev.yaml"] == "not-checked"
    assert not [t for t in parsed["json"]["tools"] if t["tool"] == "docker-compose"]


def test_an_env_example_linked_out_is_not_given_to_compose(repo: Path, outside: Path) -> None:
    (repo / "compose.yaml").write_text("services:\n  web:\n    image: nginx:1.27\n")
    (repo / ".env.example").symlink_to(outside)
    parsed = reports(repo, "--skip", "checkov")
    assert leaked(parsed) == []


def test_a_yamllint_config_linked_out_is_not_used(repo: Path, outside: Path) -> None:
    (repo / "compose.yaml").write_text("services:\n  web:\n    image: nginx:1.27\n")
    (repo / ".yamllint").symlink_to(outside)
    parsed = reports(repo, "--skip", "checkov")
    assert leaked(parsed) == []


def test_linter_configs_linked_out_are_never_read_and_own_ones_are(
    repo: Path, tmp_path: Path
) -> None:
    # Configurations outside that would silence the findings planted below: if a linter
    # read one through the link, its finding would vanish from the report.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "hadolint.yaml").write_text("ignored: [DL3008]\n")
    (elsewhere / "shellcheckrc").write_text("disable=SC2086\n")
    (repo / "Dockerfile").write_text(
        "FROM debian:12\nRUN apt-get update && apt-get install -y --no-install-recommends curl"
        " && rm -rf /var/lib/apt/lists/*\nUSER 1000\n"
    )
    (repo / "deploy.sh").write_text('#!/bin/sh\nset -eu\nfoo="$1"\necho $foo\n')
    (repo / ".hadolint.yaml").symlink_to(elsewhere / "hadolint.yaml")
    (repo / ".shellcheckrc").symlink_to(elsewhere / "shellcheckrc")

    def codes() -> set[str]:
        # From inside the repository, where hadolint would look for its configuration.
        result = shipforge("check", str(repo), "--skip", "checkov", "--format", "json", cwd=repo)
        report = json.loads(result.stdout)
        ran = {t["tool"] for t in report["tools"] if t["ran"]}
        if not {"hadolint", "shellcheck"} <= ran:
            pytest.skip("hadolint or shellcheck not installed (run tests/install-tools.sh)")
        return {p["code"] for p in report["problems"]}

    assert {"DL3008", "SC2086"} <= codes()
    # The repository's own regular files are its configuration, as the tools would read them.
    for link in (".hadolint.yaml", ".shellcheckrc"):
        (repo / link).unlink()
    (repo / ".hadolint.yaml").write_text("ignored: [DL3008]\n")
    (repo / ".shellcheckrc").write_text("disable=SC2086\n")
    assert not {"DL3008", "SC2086"} & codes()


def test_manifest_paths_outside_the_repository_are_never_read(repo: Path, outside: Path) -> None:
    (repo / ".shipforge").mkdir()
    (repo / ".shipforge" / "manifest.json").write_text(
        json.dumps({"files": {str(outside): "0" * 64, "../home/credentials": "0" * 64}})
    )
    result = shipforge("check", str(repo), "--no-lint", "--format", "json", cwd=repo)
    report = json.loads(result.stdout)
    assert result.returncode == 1 and SECRET not in result.stdout
    # The writer's manifest schema refuses both entries, each named with its place.
    refused = [
        p
        for p in report["problems"]
        if p["code"] == "invalid-manifest" and "is not a relative path below" in p["message"]
    ]
    assert len(refused) == 2, report["problems"]


# --- special files, loops, bombs: no hang, no crash -----------------------------------------


def billion_laughs(top: str) -> str:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"{chr(97 + i)}: &{chr(97 + i)} [" + ", ".join([f"*{chr(96 + i)}"] * 10) + "]")
    return top + "\n".join(lines) + "\n"


@pytest.fixture
def special(repo: Path) -> Path:
    """One repository holding every special file at once."""
    os.mkfifo(repo / "manifests.yaml")
    os.mkfifo(repo / "Dockerfile.fifo")
    os.mkfifo(repo / "run")
    os.chmod(repo / "run", 0o755)
    (repo / "values.yaml").symlink_to("/dev/zero")
    (repo / "compose.override.yaml").symlink_to("/dev/urandom")
    (repo / "loop1").symlink_to("loop2")
    (repo / "loop2").symlink_to("loop1")
    (repo / "docker-compose.yml").symlink_to("loop1")
    (repo / "dirloop").mkdir()
    (repo / "dirloop" / "again").symlink_to("..")
    (repo / "root").symlink_to("/")
    (repo / "binary.yaml").write_bytes(b"\x00\x01\x02\xff binary")
    (repo / "latin1.yaml").write_bytes(b"key: caf\xe9\n")
    (repo / "deep.yaml").write_text("[" * 5000 + "]" * 5000 + "\n")
    workflows = repo / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "ci.yml").write_text(billion_laughs("on: push\n"))
    (repo / ".gitlab-ci.yml").write_text(billion_laughs(""))
    (repo / "compose.yaml").write_text(billion_laughs("services: {}\n"))
    (repo / "k8s").mkdir()
    (repo / "k8s" / "deploy.yaml").write_text(billion_laughs("apiVersion: v1\nkind: List\n"))
    big = "services:\n" + "".join(f"  s{i}:\n    image: nginx:1.27\n" for i in range(120_000))
    (repo / "compose.big.yaml").write_text(big)
    with contextlib.suppress(PermissionError):  # root only
        os.mknod(repo / "null.yaml", 0o644 | stat.S_IFCHR, os.makedev(1, 3))
    sock = repo / "agent.sock"
    import socket

    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock))
    try:
        yield repo
    finally:
        server.close()


def test_a_hostile_repository_is_checked_within_a_fixed_time(special: Path) -> None:
    started = time.monotonic()
    result = shipforge("check", str(special), "--format", "json", "--skip", "checkov", cwd=special)
    took = time.monotonic() - started
    report = json.loads(result.stdout)
    assert result.returncode == 1 and took < BOUND
    codes = {p["path"]: p["code"] for p in report["problems"] if p["code"] == "not-checked"}
    for path in (
        ".github/workflows/ci.yml",
        ".gitlab-ci.yml",
        "compose.yaml",
        "k8s/deploy.yaml",
        "compose.big.yaml",
        "Dockerfile.fifo",
        "docker-compose.yml",
        "compose.override.yaml",
    ):
        assert path in codes, path
    notes = "\n".join(report["notes"])
    for path, why in (
        ("manifests.yaml", "FIFO"),
        ("values.yaml", "leads out of the repository"),
        ("binary.yaml", "binary"),
        ("latin1.yaml", "not UTF-8"),
        ("docker-compose.yml", "loop"),
    ):
        assert f"{path}: skipped" in notes and why in notes, (path, notes)
    # The Dockerfile next to them is still linted.
    assert any(t["tool"] == "hadolint" and t["files"] == ["Dockerfile"] for t in report["tools"])


def test_the_text_report_of_a_hostile_repository_names_every_refusal(special: Path) -> None:
    result = shipforge("check", str(special), "--skip", "checkov", cwd=special)
    assert result.returncode == 1
    assert "k8s/deploy.yaml: shipforge not-checked" in result.stdout
    assert "aliases expand to more than" in result.stdout


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "outside", "deep", "loop"])
def test_a_hostile_descriptor_is_a_located_error(repo: Path, outside: Path, kind: str) -> None:
    descriptor = repo / "shipforge.yaml"
    if kind == "fifo":
        os.mkfifo(descriptor)
    elif kind == "dev-zero":
        descriptor.symlink_to("/dev/zero")
    elif kind == "outside":
        descriptor.symlink_to(outside)
    elif kind == "loop":
        descriptor.symlink_to("shipforge.yaml")
    else:
        descriptor.write_text("version: 1\nproject: " + "[" * 3000 + "]" * 3000 + "\n")
    result = shipforge(
        "check", str(repo), "--descriptor", str(descriptor), "--no-lint", "--format", "json",
        cwd=repo,
    )  # fmt: skip
    assert result.returncode == 1 and SECRET not in result.stdout
    report = json.loads(result.stdout)
    problem = next(p for p in report["problems"] if p["code"] == "invalid-descriptor")
    assert problem["path"] == "shipforge.yaml"


# --- planted code ----------------------------------------------------------------------------


PLANTED = (
    ".venv-checkov/bin/checkov",
    ".tools/npm/node_modules/.bin/zizmor",
    ".tools/npm/node_modules/.bin/docker-compose",
    ".tools/npm/node_modules/.bin/hadolint",
    ".tools/npm/node_modules/.bin/actionlint",
    "node_modules/.bin/yamllint",
    "bin/shellcheck",
    "kubectl",
    "terraform",
    "promtool",
    "detect-secrets-hook",
)


def plant(repo: Path, marker: Path) -> None:
    for name in PLANTED:
        exe = repo / name
        exe.parent.mkdir(parents=True, exist_ok=True)
        exe.write_text(f"#!/bin/sh\necho {name} >> {marker}\n")
        exe.chmod(0o755)


@pytest.fixture
def every_kind(repo: Path) -> Path:
    """A file of every kind, so that every linter applies."""
    (repo / "compose.yaml").write_text("services:\n  web:\n    image: nginx:1.27\n")
    workflows = repo / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "ci.yml").write_text(
        "on: push\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-24.04\n"
        "    timeout-minutes: 5\n    steps:\n      - run: echo hi\n"
    )
    (repo / ".gitlab-ci.yml").write_text("job:\n  script: [echo hi]\n")
    (repo / "main.tf").write_text('variable "x" {\n  type = string\n}\n')
    (repo / "deploy.sh").write_text("#!/bin/sh\necho hi\n")
    (repo / ".env.example").write_text("A=1\n")
    (repo / "k8s").mkdir()
    (repo / "k8s" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: b\n"
    )
    (repo / "k8s" / "kustomization.yaml").write_text("resources: [cm.yaml]\n")
    (repo / "prometheus.yml").write_text("scrape_configs: []\n")
    return repo


def test_tools_planted_in_the_checked_repository_never_run(every_kind: Path) -> None:
    marker = every_kind.parent / "pwned"
    plant(every_kind, marker)
    # No tool anywhere but the system folders and the planted ones: "." and relative entries
    # on PATH, the current folder and the repository itself must all be ignored.
    env = {
        "PATH": os.pathsep.join([".", "bin", "node_modules/.bin", "", "/usr/bin", "/bin"]),
        "HOME": str(every_kind.parent),
    }
    # The interpreter outside its venv (whose bin/ holds the PyPI linters), shipforge and its
    # libraries on sys.path.
    isolated = every_kind.parent / "python"
    isolated.mkdir()
    (isolated / "python").symlink_to(os.path.realpath(sys.executable))
    paths = os.pathsep.join([str(ROOT), *site.getsitepackages()])
    for cwd in (every_kind, every_kind / ".venv-checkov" / "bin"):
        result = subprocess.run(
            [str(isolated / "python"), "-c", "import sys; sys.path[:0] = sys.argv[1].split(':'); "
             "from generator.cli import main; sys.argv = ['shipforge', 'check', sys.argv[2]]; "
             "main()", paths, str(every_kind)],
            cwd=cwd, env=env, capture_output=True, text=True, timeout=BOUND, check=False,
        )  # fmt: skip
        assert "unexpectedly" not in result.stderr, result.stderr
        assert not marker.exists(), f"ran: {marker.read_text()}"
        assert result.returncode in (0, 1) and "not installed" in result.stdout


def test_a_planted_checkov_config_runs_no_code(every_kind: Path) -> None:
    from generator import lint

    if lint.find_tool("checkov") is None:
        if os.environ.get("CI"):
            pytest.fail("checkov is not installed (tests/install-tools.sh)")
        pytest.skip("checkov is not installed")
    marker = every_kind.parent / "pwned-checkov"
    checks = every_kind / "checks"
    checks.mkdir()
    (checks / "__init__.py").write_text("")
    (checks / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    config = f"external-checks-dir:\n  - {checks}\n"
    (every_kind / ".checkov.yaml").write_text(config)
    (every_kind.parent / ".checkov.yaml").write_text(config)
    for cwd in (every_kind, every_kind.parent):
        shipforge("check", str(every_kind), cwd=cwd, bound=300)
        assert not marker.exists(), "checkov imported the repository's external checks"
    # Asked to scan the folder itself, lint.checkov refuses rather than load its config.
    result = lint.checkov(str(every_kind), ["dockerfile"])
    assert [f.code for f in result.findings] == ["tool-error"] and not marker.exists()


# --- hostile descriptor values ---------------------------------------------------------------


def descriptor_with(tmp_path: Path, **service: Any) -> Path:
    data = yaml.safe_load((EXAMPLES[0] / "shipforge.yaml").read_text())
    name = next(iter(data["services"]))
    data["services"][name].update(service)
    target = tmp_path / "shipforge.yaml"
    # JSON is YAML: PyYAML's dumper would turn U+0085 and U+2028 into spaces.
    target.write_text(json.dumps(data))
    return target


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("command", "node a\u0085b.js", "U+0085"),
        ("command", "node a\u2028b.js", "U+2028"),
        ("command", "node a\u2029b.js", "U+2029"),
        ("release", "x\u0085y", "U+0085"),
        ("build", "npm run build\nRUN touch /tmp/pwned", "one command on one line"),
        ("build", "x\r\nUSER root", "one command on one line"),
        ("release", "|\n text", "one command on one line"),
        ("command", "uvicorn\u0000app:app", "control character U+0000"),
        ("release", "alembic\u001bupgrade head", "control character U+001B"),
        ("env", {"GREETING": "a\u0000b"}, "control character U+0000"),
        ("path", "a\u0085b", "is not valid here"),
        ("path", "a\\b", "is not valid here"),
        ("path", ".git/hooks", "lies in .git or .shipforge"),
    ],
)
def test_values_that_would_change_structure_are_refused_with_their_place(
    tmp_path: Path, field: str, value: Any, says: str
) -> None:
    descriptor = descriptor_with(tmp_path, **{field: value})
    result = shipforge("validate", str(descriptor), cwd=tmp_path)
    assert result.returncode == 1 and says in result.stderr, result.stderr
    assert f".{field}" in result.stderr and "shipforge.yaml:" in result.stderr
    generated = shipforge("generate", str(descriptor), cwd=tmp_path)
    assert generated.returncode == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shipforge.yaml"], "nothing written"


MARKDOWN = MarkdownIt("commonmark").enable("table")
MD_PAYLOADS = [
    "- item",
    "1. first",
    "# Injected heading",
    "> quote",
    "---",
    "<script>alert(1)</script>",
    "</script><script>alert(1)</script>",
    "--> <b>x</b> <!--",
    "a | b | c",
    "x` <img src=x onerror=alert(1)> `y",
    "```",
    "`lead and trail`",
    "[link](javascript:alert(1))",
    "![img](http://x/y.png)",
    "**bold** _em_ ~~s~~",
    "&lt;escaped&gt; &amp;",
    "back\\slash \\| pipe",
]


def structure(text: str) -> list[str]:
    return [t.type for t in MARKDOWN.parse(text)]


def inline_children(text: str) -> list[Any]:
    return [c for t in MARKDOWN.parse(text) if t.type == "inline" for c in t.children or []]


@pytest.fixture(scope="module")
def benign(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("benign")
    descriptor = descriptor_with(folder, release="benign release")
    data = json.loads(descriptor.read_text())
    data["project"]["description"] = "benign description"
    descriptor.write_text(json.dumps(data))
    return (generate_tree(descriptor, folder) / "DEPLOYMENT.md").read_text()


@pytest.mark.parametrize("payload", MD_PAYLOADS)
def test_markdown_values_stay_text_in_the_runbook(
    tmp_path: Path, benign: str, payload: str
) -> None:
    descriptor = descriptor_with(tmp_path, release=f"migrate {payload}")
    data = json.loads(descriptor.read_text())
    data["project"]["description"] = payload
    descriptor.write_text(json.dumps(data))
    runbook = (generate_tree(descriptor, tmp_path) / "DEPLOYMENT.md").read_text()
    assert structure(runbook) == structure(benign), "the Markdown structure changed"
    children = inline_children(runbook)
    assert not [c for c in children if c.type in ("html_inline", "link_open", "image")]
    html = [t.content for t in MARKDOWN.parse(runbook) if t.type == "html_block"]
    assert html == [t.content for t in MARKDOWN.parse(benign) if t.type == "html_block"]
    # Read back: the description is one text run, the release one code span each time.
    texts = [c.content for c in children if c.type == "text"]
    assert comment(payload) in texts, texts
    codes = [c.content for c in children if c.type == "code_inline"]
    assert codes.count(comment(f"migrate {payload}")) == 2, codes


# --- determinism of refusals: no partial writes ---------------------------------------------


def test_check_of_a_hostile_repository_writes_nothing_into_it(special: Path) -> None:
    before = sorted(p.name for p in special.iterdir())
    shipforge("check", str(special), "--no-lint", cwd=special.parent)
    assert sorted(p.name for p in special.iterdir()) == before


@pytest.fixture(autouse=True)
def _no_stray_markers(tmp_path: Path) -> Iterator[None]:
    yield
    strays = [p for p in tmp_path.rglob("pwned*") if p.is_file()]
    assert strays == [], strays


@pytest.mark.parametrize(
    ("path", "make"),
    [
        (".shipforge/manifest.json", "fifo"),
        (".shipforge/manifest.json", "dev-zero"),
        (".shipforge/manifest.json", "outside"),
        ("compose.yaml", "fifo"),
        ("Dockerfile", "dev-zero"),
        (".env.example", "outside"),
    ],
)
def test_drift_never_opens_a_special_or_outside_file(
    tmp_path: Path, outside: Path, path: str, make: str
) -> None:
    repo = tmp_path / "project"
    repo.mkdir()
    shutil.copy(EXAMPLES[0] / "shipforge.yaml", repo / "shipforge.yaml")
    target = repo / path
    target.parent.mkdir(parents=True, exist_ok=True)
    if make == "fifo":
        os.mkfifo(target)
    else:
        target.symlink_to("/dev/zero" if make == "dev-zero" else outside)
    result = shipforge("check", str(repo), "--no-lint", "--format", "json", cwd=repo)
    report = json.loads(result.stdout)
    assert result.returncode == 1 and SECRET not in result.stdout
    assert {p["path"] for p in report["problems"] if p["code"] == "drift-unchecked"} == {path}
    assert report["descriptor_status"].startswith("valid")


@pytest.mark.parametrize(
    "path",
    [
        "w${HOME}$IFS$1",
        "$(touch pwned)",
        "w${{ github.token }}",
        "w${{ secrets.GITHUB_TOKEN }}",
        "${var.region}",
        "`${process.exit(9)}`",
        "$USER ${HOME}",
    ],
)
def test_a_path_with_dollars_reads_back_exactly_in_compose(tmp_path: Path, path: str) -> None:
    from generator import lint

    descriptor = descriptor_with(tmp_path, path=path)
    result = shipforge("generate", str(descriptor), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    compose = yaml.safe_load((tmp_path / "compose.yaml").read_text())
    contexts = [s["build"]["context"] for s in compose["services"].values() if "build" in s]
    # Written with $$: compose reads the path back as written, never interpolated.
    assert path.replace("$", "$$") in contexts
    exe = lint.find_tool("docker-compose")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is not installed")
        pytest.skip("docker-compose is not installed")
    (tmp_path / path).mkdir(parents=True, exist_ok=True)
    config = subprocess.run(
        [exe, "--env-file", os.devnull, "-f", str(tmp_path / "compose.yaml"), "config",
         "--format", "json"],
        capture_output=True, text=True, env={"PATH": os.environ["PATH"]}, check=False,
    )  # fmt: skip
    assert config.returncode == 0, config.stderr
    read = json.loads(config.stdout)
    built = [s["build"]["context"] for s in read["services"].values() if "build" in s]
    # `config` prints its result as compose input again, so a literal `$` shows as `$$`: the
    # value was not interpolated ($HOME not expanded, no error for ${{ }}).
    assert str(tmp_path / path).replace("$", "$$") in built, built
    assert not list(tmp_path.rglob("pwned*"))
