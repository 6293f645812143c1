"""Every CI system a repository holds, read into one shape: pipelines of jobs of commands.

GitHub Actions, GitLab CI, CircleCI, Bitbucket Pipelines and Azure Pipelines are YAML and are
read structurally; a Jenkinsfile is Groovy, read by its `stage(...)` blocks and their `sh` and
`echo` steps. A job's commands include the local scripts it runs (`deploy/kubernetes.sh`,
`./scripts/release.sh`), one level deep, since that is where real pipelines keep their logic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from generator.audit.repo import Repo

GITLAB_RESERVED = {
    "stages",
    "variables",
    "default",
    "include",
    "workflow",
    "image",
    "services",
    "cache",
    "before_script",
    "after_script",
    "pages",
}


@dataclass(frozen=True)
class Command:
    """One step: a shell script or an action reference, with where it is written."""

    file: str
    line: int | None
    text: str


@dataclass
class Job:
    """One CI job, whatever the system."""

    system: str
    file: str
    line: int | None
    name: str
    stage: str = ""
    environment: str = ""
    branches: tuple[str, ...] = ()
    manual: bool = False
    # A manual job that holds back the jobs needing it (GitLab: `allow_failure: false`).
    blocking: bool = False
    on_failure: bool = False
    needs: tuple[str, ...] = ()
    commands: list[Command] = field(default_factory=list)
    # Commands of the local scripts the job runs, read one level deep.
    script_commands: list[Command] = field(default_factory=list)
    # Jobs in earlier stages of the same pipeline (GitLab, Azure, Jenkins order jobs by stage).
    earlier: tuple[str, ...] = ()

    def all_commands(self) -> list[Command]:
        return [*self.commands, *self.script_commands]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _script_lines(value: Any) -> list[str]:
    return [str(v) for v in _as_list(value) if isinstance(v, str | int | float)]


def _find(repo: Repo, rel: str, text: str, start: int | None) -> int | None:
    first = text.strip().splitlines()[0] if text.strip() else ""
    if not first:
        return start
    return repo.line_of(rel, re.escape(first[:60]), start or 1) or start


def _job_line(repo: Repo, rel: str, key: str) -> int | None:
    return repo.line_of(rel, rf"^\s*['\"]?{re.escape(key)}['\"]?\s*:")


_LOCAL_SCRIPT = re.compile(
    r"(?:^|[\s;&|(])(?:bash\s+|sh\s+|\./)?((?:[\w.-]+/)*[\w.-]+\.(?:sh|bash))\b"
)


def _script_path(repo: Repo, rel: str) -> str | None:
    """The repository file a script reference names: as written, or the one file below some
    folder (a step's working directory) that ends with it."""
    if repo.exists(rel):
        return rel
    below = [f for f in repo.files if f.endswith("/" + rel)]
    return below[0] if len(below) == 1 else None


# Scripts run scripts (`tests-start.sh` runs `test.sh`): two levels cover real repositories.
SCRIPT_DEPTH = 2


def _local_scripts(repo: Repo, job: Job) -> None:
    """Add the commands of the repository's own scripts that the job runs."""
    seen: set[str] = set()
    frontier = list(job.commands)
    for _ in range(SCRIPT_DEPTH):
        found: list[Command] = []
        for command in frontier:
            for match in _LOCAL_SCRIPT.finditer(command.text):
                rel = _script_path(repo, match.group(1).removeprefix("./"))
                if rel is None or rel in seen:
                    continue
                seen.add(rel)
                for number, line in enumerate(repo.lines(rel), 1):
                    stripped = line.strip()
                    if stripped and not stripped.startswith("#"):
                        found.append(Command(rel, number, stripped))
        job.script_commands += found
        frontier = found


def _github(repo: Repo) -> list[Job]:
    jobs: list[Job] = []
    for rel in repo.glob(".github/workflows/*.yml", ".github/workflows/*.yaml"):
        for document in repo.yaml_documents(rel):
            data = document.data
            if not isinstance(data, dict) or not isinstance(data.get("jobs"), dict):
                continue
            # PyYAML reads the `on:` key as True (YAML 1.1).
            trigger = data.get("on", data.get(True))
            branches = _github_branches(trigger)
            dispatch_only = isinstance(trigger, dict) and set(trigger) <= {
                "workflow_dispatch",
                "workflow_call",
            }
            dispatch_only = dispatch_only or trigger in ("workflow_dispatch", ["workflow_dispatch"])
            for key, spec in data["jobs"].items():
                if not isinstance(spec, dict):
                    continue
                environment = spec.get("environment")
                if isinstance(environment, dict):
                    environment = environment.get("name", "")
                condition = str(spec.get("if", ""))
                job = Job(
                    "github",
                    rel,
                    _job_line(repo, rel, str(key)),
                    str(spec.get("name", key)),
                    environment=str(environment or ""),
                    branches=branches,
                    manual=dispatch_only,
                    on_failure="failure()" in condition,
                    needs=tuple(str(n) for n in _as_list(spec.get("needs"))),
                )
                job.stage = str(key)
                start = job.line
                for step in _as_list(spec.get("steps")):
                    if not isinstance(step, dict):
                        continue
                    text = str(step.get("run") or "")
                    if not text and step.get("uses"):
                        text = f"uses: {step['uses']}"
                    if not text:
                        continue
                    line = _find(repo, rel, text.removeprefix("uses: "), start)
                    step_if = str(step.get("if", ""))
                    marker = "[on failure] " if "failure()" in step_if else ""
                    job.commands.append(Command(rel, line, marker + text))
                    start = line or start
                jobs.append(job)
    return jobs


def _github_branches(trigger: Any) -> tuple[str, ...]:
    if not isinstance(trigger, dict):
        return ()
    found: list[str] = []
    for event in ("push", "release"):
        spec = trigger.get(event)
        if isinstance(spec, dict):
            found += [str(b) for b in _as_list(spec.get("branches"))]
            found += [f"tag {t}" for t in _as_list(spec.get("tags"))]
    return tuple(found)


def _gitlab(repo: Repo) -> list[Job]:
    rel = ".gitlab-ci.yml"
    if not repo.exists(rel):
        return []
    jobs: list[Job] = []
    for document in repo.yaml_documents(rel):
        data = document.data
        if not isinstance(data, dict):
            continue
        stages = [str(s) for s in _as_list(data.get("stages"))] or ["build", "test", "deploy"]
        default: dict[str, Any] = data["default"] if isinstance(data.get("default"), dict) else {}
        for key, spec in data.items():
            if key in GITLAB_RESERVED or str(key).startswith(".") or not isinstance(spec, dict):
                continue
            environment = spec.get("environment")
            if isinstance(environment, dict):
                environment = environment.get("name", "")
            rules = [r for r in _as_list(spec.get("rules")) if isinstance(r, dict)]
            when = str(spec.get("when", ""))
            manual = when == "manual" or any(r.get("when") == "manual" for r in rules)
            branches = tuple(
                m
                for r in rules
                for m in re.findall(
                    r"CI_COMMIT_BRANCH\s*==\s*\\?[\"']([^\"'\\]+)", str(r.get("if", ""))
                )
            ) + tuple(str(b) for b in _as_list(spec.get("only")) if isinstance(b, str))
            stage = str(spec.get("stage", "test"))
            job = Job(
                "gitlab",
                rel,
                _job_line(repo, rel, str(key)),
                str(key),
                stage=stage,
                environment=str(environment or ""),
                branches=branches,
                manual=manual,
                blocking=manual and spec.get("allow_failure") is False,
                on_failure=when == "on_failure"
                or any(r.get("when") == "on_failure" for r in rules),
                needs=tuple(
                    str(n.get("job") if isinstance(n, dict) else n)
                    for n in _as_list(spec.get("needs"))
                ),
            )
            start = job.line
            for part in ("before_script", "script", "after_script"):
                lines = _script_lines(
                    spec.get(part, default.get(part) if part != "script" else None)
                )
                for text in lines:
                    line = _find(repo, rel, text, start)
                    job.commands.append(Command(rel, line, text))
                    start = line or start
            jobs.append(job)
        order = {stage: i for i, stage in enumerate(stages)}
        for job in jobs:
            job.earlier = tuple(
                o.name for o in jobs if order.get(o.stage, 0) < order.get(job.stage, 0)
            )
    return jobs


def _circleci(repo: Repo) -> list[Job]:
    rel = ".circleci/config.yml"
    jobs: list[Job] = []
    for document in repo.yaml_documents(rel) if repo.exists(rel) else []:
        data = document.data
        if not isinstance(data, dict) or not isinstance(data.get("jobs"), dict):
            continue
        requires: dict[str, tuple[str, ...]] = {}
        branches: dict[str, tuple[str, ...]] = {}
        for workflow in (data.get("workflows") or {}).values():
            if not isinstance(workflow, dict):
                continue
            for entry in _as_list(workflow.get("jobs")):
                if isinstance(entry, dict):
                    for name, spec in entry.items():
                        if isinstance(spec, dict):
                            requires[str(name)] = tuple(map(str, _as_list(spec.get("requires"))))
                            only = (spec.get("filters") or {}).get("branches", {})
                            if isinstance(only, dict):
                                branches[str(name)] = tuple(map(str, _as_list(only.get("only"))))
        for key, spec in data["jobs"].items():
            if not isinstance(spec, dict):
                continue
            job = Job(
                "circleci",
                rel,
                _job_line(repo, rel, str(key)),
                str(key),
                needs=requires.get(str(key), ()),
                branches=branches.get(str(key), ()),
            )
            start = job.line
            for step in _as_list(spec.get("steps")):
                run = step.get("run") if isinstance(step, dict) else None
                if isinstance(run, dict):
                    run = run.get("command")
                if isinstance(run, str):
                    line = _find(repo, rel, run, start)
                    job.commands.append(Command(rel, line, run))
                    start = line or start
            jobs.append(job)
    return jobs


def _bitbucket(repo: Repo) -> list[Job]:
    rel = "bitbucket-pipelines.yml"
    jobs: list[Job] = []
    for document in repo.yaml_documents(rel) if repo.exists(rel) else []:
        pipelines = document.data.get("pipelines") if isinstance(document.data, dict) else None
        if not isinstance(pipelines, dict):
            continue
        groups: list[tuple[str, Any]] = [("", pipelines.get("default"))]
        for kind in ("branches", "tags", "custom"):
            for name, steps in (pipelines.get(kind) or {}).items():
                groups.append((str(name) if kind == "branches" else "", steps))
        for branch, steps in groups:
            previous: list[str] = []
            for entry in _as_list(steps):
                step = entry.get("step") if isinstance(entry, dict) else None
                if not isinstance(step, dict):
                    continue
                name = str(step.get("name", f"step {len(jobs) + 1}"))
                job = Job(
                    "bitbucket",
                    rel,
                    repo.line_of(rel, rf"name:\s*['\"]?{re.escape(name)}"),
                    name,
                    environment=str(step.get("deployment", "")),
                    branches=(branch,) if branch else (),
                    manual=step.get("trigger") == "manual",
                    earlier=tuple(previous),
                )
                start = job.line
                for text in _script_lines(step.get("script")):
                    line = _find(repo, rel, text, start)
                    job.commands.append(Command(rel, line, text))
                    start = line or start
                previous.append(name)
                jobs.append(job)
    return jobs


def _azure(repo: Repo) -> list[Job]:
    jobs: list[Job] = []
    for rel in repo.glob("azure-pipelines.yml", "azure-pipelines.yaml", ".azure-pipelines/*.yml"):
        for document in repo.yaml_documents(rel):
            data = document.data
            if not isinstance(data, dict):
                continue
            stages = _as_list(data.get("stages")) or [{"stage": "", "jobs": data.get("jobs")}]
            if not data.get("stages") and not data.get("jobs") and data.get("steps"):
                stages = [{"stage": "", "jobs": [{"job": "default", "steps": data["steps"]}]}]
            previous: list[str] = []
            for stage in stages:
                if not isinstance(stage, dict):
                    continue
                names: list[str] = []
                for spec in _as_list(stage.get("jobs")):
                    if not isinstance(spec, dict):
                        continue
                    name = str(spec.get("deployment") or spec.get("job") or "job")
                    environment = spec.get("environment", "")
                    if isinstance(environment, dict):
                        environment = environment.get("name", "")
                    job = Job(
                        "azure",
                        rel,
                        repo.line_of(rel, rf"(job|deployment):\s*['\"]?{re.escape(name)}"),
                        name,
                        stage=str(stage.get("stage", "")),
                        environment=str(environment),
                        earlier=tuple(previous),
                    )
                    start = job.line
                    steps = spec.get("steps")
                    strategy = spec.get("strategy")
                    if steps is None and isinstance(strategy, dict):
                        for phase in strategy.values():
                            deploy = phase.get("deploy") if isinstance(phase, dict) else None
                            if isinstance(deploy, dict):
                                steps = deploy.get("steps")
                    for step in _as_list(steps):
                        if not isinstance(step, dict):
                            continue
                        text = step.get("script") or step.get("bash") or step.get("pwsh")
                        if text is None and step.get("task"):
                            text = f"task: {step['task']}"
                        if isinstance(text, str):
                            line = _find(repo, rel, text.removeprefix("task: "), start)
                            job.commands.append(Command(rel, line, text))
                            start = line or start
                    names.append(name)
                    jobs.append(job)
                previous += names
    return jobs


_JENKINS_STAGE = re.compile(r"""stage\s*\(\s*['"]([^'"]+)['"]\s*\)""")
_JENKINS_STEP = re.compile(r"""\b(sh|bat|echo)\s*\(?\s*(?:script:\s*)?(['"]{1,3})(.*?)\2""")


def _jenkins(repo: Repo) -> list[Job]:
    jobs: list[Job] = []
    for rel in repo.named("Jenkinsfile"):
        current: Job | None = None
        previous: list[str] = []
        for number, line in enumerate(repo.lines(rel), 1):
            stage = _JENKINS_STAGE.search(line)
            if stage:
                current = Job("jenkins", rel, number, stage.group(1), earlier=tuple(previous))
                previous.append(stage.group(1))
                jobs.append(current)
            if current is None:
                continue
            for kind, _, text in _JENKINS_STEP.findall(line):
                current.commands.append(
                    Command(rel, number, f"echo {text}" if kind == "echo" else text)
                )
            if "input " in line or "input(" in line:
                current.manual = True
    return jobs


SYSTEMS = {
    "GitHub Actions": _github,
    "GitLab CI": _gitlab,
    "CircleCI": _circleci,
    "Bitbucket Pipelines": _bitbucket,
    "Azure Pipelines": _azure,
    "Jenkins": _jenkins,
}


def read_pipelines(repo: Repo) -> dict[str, list[Job]]:
    """Every CI system present, with its jobs (local scripts read into each job)."""
    found: dict[str, list[Job]] = {}
    for system, read in SYSTEMS.items():
        jobs = read(repo)
        if jobs:
            for job in jobs:
                _local_scripts(repo, job)
            found[system] = jobs
    return found
