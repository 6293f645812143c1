"""The audit's checks, area by area: each looks for evidence and says pass, fail or n/a.

A check never judges: it passes when the evidence it names is there and fails when it is not,
and says where it looked. `docs/audit.md` lists every check, why it matters and what passes it.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from generator.audit.pipelines import Command, Job
from generator.audit.repo import Repo

PASS, FAIL, NA = "pass", "fail", "n/a"


@dataclass(frozen=True)
class Evidence:
    """Where a check looked or what it found: a file and line, never a secret value."""

    file: str
    line: int | None
    text: str

    def place(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class Finding:
    """The outcome of one check."""

    check: str
    area: str
    title: str
    status: str
    severity: str
    message: str
    evidence: tuple[Evidence, ...] = ()
    fix: str = ""
    shipforge: str = ""


@dataclass
class Context:
    """What every check may read: the tree, its pipelines, and the options of the run."""

    repo: Repo
    pipelines: dict[str, list[Job]]
    history: bool = False
    tools_missing: list[str] = field(default_factory=list)

    @property
    def jobs(self) -> list[Job]:
        return [job for jobs in self.pipelines.values() for job in jobs]


Check = Callable[[Context], Iterator[Finding]]
CHECKS: list[tuple[str, Check]] = []


def check(area: str) -> Callable[[Check], Check]:
    def register(function: Check) -> Check:
        CHECKS.append((area, function))
        return function

    return register


def _finding(
    check_id: str,
    title: str,
    status: str,
    severity: str,
    message: str,
    evidence: list[Evidence] | tuple[Evidence, ...] = (),
    fix: str = "",
    shipforge: str = "",
) -> Finding:
    return Finding(check_id, "", title, status, severity, message, tuple(evidence), fix, shipforge)


def _ev(command: Command) -> Evidence:
    return Evidence(command.file, command.line, _short(command.text))


def _short(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= 100 else first[:97] + "..."


# --- what commands do -------------------------------------------------------------------------

DEPLOY_COMMAND = re.compile(
    r"\bkubectl\b.*\b(apply|set\s+image|rollout\s+restart|replace|create)\b"
    r"|\bhelm\s+(upgrade|install)\b"
    r"|\baws\s+ecs\s+(update-service|create-service|deploy)\b|\becs-deploy\b"
    r"|\baws\s+(lambda\s+update-function-code|deploy\s+create-deployment|apprunner\s+start-deployment)\b"
    r"|\b(sam|cdk|serverless|sls)\s+deploy\b|\bcopilot\s+\w+\s+deploy\b"
    r"|\bgcloud\s+(beta\s+)?run\s+(deploy|services\s+(update|replace)|jobs\s+deploy)\b"
    r"|\bgcloud\s+app\s+deploy\b"
    r"|\baz\s+(containerapp\s+(update|up|create)|webapp\s+(deploy|config\s+container)|aks\b.*\bcommand)"
    r"|\bterraform\s+apply\b|\bpulumi\s+up\b|\btofu\s+apply\b"
    r"|\bdocker(-|\s+)compose\b.*\bup\b|\bdocker\s+stack\s+deploy\b"
    r"|\bpm2\s+(deploy|reload|startOrReload|startOrRestart)\b"
    r"|\b(fly|flyctl)\s+deploy\b|\brailway\s+up\b|\bheroku\s+container:release\b"
    r"|\b(fastapi|wrangler|firebase|eb|kamal|dokku|render|northflank)\s+deploy\b"
    r"|\bgit\s+push\s+\S*(heroku|dokku)\b|\bvercel\b.*--prod\b|\bnetlify\s+deploy\b"
    r"|\bargocd\s+app\s+sync\b|\bflux\s+reconcile\b|\bansible-playbook\b|\bkamal\s+deploy\b"
    r"|\bssh\b.*\b(docker|systemctl|pm2|kubectl)\b"
    r"|uses:\s*(aws-actions/amazon-ecs-deploy-task-definition|google-github-actions/deploy-cloudrun"
    r"|azure/(container-apps-deploy-action|webapps-deploy|k8s-deploy|aks-set-context)"
    r"|appleboy/ssh-action|superfly/flyctl-actions|akhileshns/heroku-deploy)"
    r"|task:\s*(AzureWebApp|AzureContainerApps|KubernetesManifest|HelmDeploy|Kubernetes)@",
    re.IGNORECASE,
)
ROLLBACK_COMMAND = re.compile(
    r"\bkubectl\b.*\brollout\s+undo\b|\bhelm\s+rollback\b|\bhelm\s+upgrade\b.*--atomic\b"
    r"|\bgcloud\s+run\s+services\s+update-traffic\b"
    r"|\baz\s+containerapp\s+(revision\s+(activate|set-mode)|ingress\s+traffic\s+set)\b"
    r"|\bpm2\s+deploy\b.*\brevert\b|\bargocd\s+app\s+rollback\b|\bflyctl?\s+releases?\s+rollback\b"
    r"|\bheroku\s+rollback\b|\bkamal\s+rollback\b"
    r"|\baws\s+ecs\s+update-service\b.*--task-definition\s+\S*(previous|prev|last|rollback)",
    re.IGNORECASE,
)
MIGRATION_COMMAND = re.compile(
    r"\balembic\b.*\bupgrade\b|\bmanage\.py\s+migrate\b|\bdjango-admin\s+migrate\b"
    r"|\bprisma\s+migrate\s+deploy\b|\bflask\s+db\s+upgrade\b|\bknex\s+migrate:latest\b"
    r"|\bsequelize(-cli)?\s+db:migrate\b|\btypeorm\b.*\bmigration:run\b|\brails\s+db:migrate\b"
    r"|\brake\s+db:migrate\b|\bgoose\b.*\bup\b|\bmigrate\s+.*-path\b.*\bup\b"
    r"|\b(npm|yarn|pnpm)\s+(run\s+)?(db:)?migrat(e|ion)\b|\bdbmate\s+up\b|\bflyway\s+migrate\b",
    re.IGNORECASE,
)
TEST_COMMAND = re.compile(
    r"\b(pytest|tox|nox|jest|vitest|mocha|go\s+test|cargo\s+test|mvn\s+(-\S+\s+)*(test|verify)"
    r"|gradle\w*\s+test|phpunit|rspec|coverage\s+run|playwright\s+test|cypress\s+run)\b"
    r"|\b(npm|yarn|pnpm)\s+(run\s+)?test\b|\bmake\s+test\b|\bmanage\.py\s+test\b|\bunittest\b",
    re.IGNORECASE,
)
PLACEHOLDER = re.compile(
    r"add\s+(your\s+)?deploy(ment)?\s+(script|command|step)s?\s+here|deploy(ment)?\s+commands?\s+go\s+here"
    r"|\bTODO\b|\bFIXME\b|\bplaceholder\b|replace\s+(this\s+)?with\s+(your|the|real)|not\s+implemented"
    r"|your\s+deploy(ment)?\s+(script|command)",
    re.IGNORECASE,
)
# What a job may say or do without doing anything: printing, waiting, succeeding.
NOOP = re.compile(r"^\s*(echo|printf|sleep|true|:|exit\s+0|cat\s+<<|date|env|pwd|ls)\b")
DEPLOY_NAME = re.compile(r"deploy|rollout|\bship\b", re.I)
# "release" names GitHub-release drafting as often as a deploy: such a job counts as a deploy
# only with an environment, a deploy command or placeholder text.
MAYBE_DEPLOY_NAME = re.compile(r"release|promot", re.I)
ROLLBACK_NAME = re.compile(r"rollback|roll-back|\broll\b.*\bback\b|revert|undo", re.I)
STAGING = re.compile(r"stag|preprod|pre-prod|uat|qa", re.I)
PRODUCTION = re.compile(r"prod|live", re.I)


# A deploy script usually wraps its CLI in functions (`kns() { kubectl -n "$ns" "$@"; }`), so
# inside the repository's own scripts a platform tool anywhere plus a deploy verb on a line is
# the evidence.
SCRIPT_TOOL = re.compile(
    r"\b(kubectl|helm|aws|gcloud|az|docker|podman|pm2|terraform|tofu|flyctl|fly|ssh|argocd)\b"
)
SCRIPT_DEPLOY = re.compile(
    r"\b(apply|set\s+image|update-service|register-task-definition|services\s+update|"
    r"containerapp\s+update|up\s+(-d|--wait|--detach)|reload|startOrReload|deploy\s+\S+\s+ref)\b"
)
SCRIPT_ROLLBACK = re.compile(r"\brollout\s+undo\b|update-traffic|\brevert\b|\brollback\b")
PROMOTION = re.compile(
    r"\bpromot(e|ion)\b.*\b(verified|digest|staging|production)\b|images\.sh\s+promote", re.I
)


def _script_evidence(job: Job, line: re.Pattern[str]) -> Command | None:
    by_file: dict[str, list[Command]] = {}
    for command in job.script_commands:
        by_file.setdefault(command.file, []).append(command)
    for commands in by_file.values():
        if any(SCRIPT_TOOL.search(c.text) for c in commands):
            for command in commands:
                if line.search(command.text) and not NOOP.match(command.text):
                    return command
    return None


def _deploy_evidence(job: Job) -> Command | None:
    return _first(job.all_commands(), DEPLOY_COMMAND) or _script_evidence(job, SCRIPT_DEPLOY)


def _rollback_evidence(job: Job) -> Command | None:
    return _first(job.all_commands(), ROLLBACK_COMMAND) or _script_evidence(job, SCRIPT_ROLLBACK)


def _is_deploy_job(job: Job) -> bool:
    if ROLLBACK_NAME.search(job.name):
        return False
    named = DEPLOY_NAME.search(f"{job.name} {job.stage}") is not None
    if named:
        return True
    # A job bound to an environment (or named after a promotion) deploys when it runs a deploy,
    # or pretends to: placeholder text there is exactly what the audit must catch.
    if job.environment or MAYBE_DEPLOY_NAME.search(f"{job.name} {job.stage}"):
        return _deploy_evidence(job) is not None or _is_placeholder(job)[0]
    return False


def _is_placeholder(job: Job) -> tuple[bool, Command | None]:
    """Whether the job only prints or waits, or says it is a placeholder."""
    for command in job.commands:
        if PLACEHOLDER.search(command.text):
            return True, command
    lines = [
        line.strip()
        for command in job.commands
        if not command.text.startswith("uses:")
        for line in command.text.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    uses = [c for c in job.commands if c.text.startswith("uses:")]
    real_uses = [c for c in uses if "actions/checkout" not in c.text]
    if lines and all(NOOP.match(line) for line in lines) and not real_uses:
        return True, job.commands[0]
    return False, None


def _deploy_jobs(ctx: Context) -> list[Job]:
    return [job for job in ctx.jobs if _is_deploy_job(job)]


def _first(commands: list[Command], regex: re.Pattern[str]) -> Command | None:
    for command in commands:
        if regex.search(command.text):
            return command
    return None


# --- Deploy is real ---------------------------------------------------------------------------


@check("Deploy is real")
def deploy_checks(ctx: Context) -> Iterator[Finding]:
    ci_files = sorted({job.file for job in ctx.jobs})
    if not ctx.pipelines:
        yield _finding(
            "deploy.ci",
            "A CI system is configured",
            FAIL,
            "high",
            "no CI configuration found",
            [
                Evidence(
                    "(repository)",
                    None,
                    "searched .github/workflows/, .gitlab-ci.yml, .circleci/config.yml, "
                    "bitbucket-pipelines.yml, azure-pipelines.yml, Jenkinsfile",
                )
            ],
            "add a pipeline that tests, builds and deploys on every push",
            "targets.ci: github | gitlab, then `shipforge generate`",
        )
        return
    yield _finding(
        "deploy.ci",
        "A CI system is configured",
        PASS,
        "high",
        f"{', '.join(ctx.pipelines)}",
        [Evidence(f, None, "CI configuration") for f in ci_files],
    )
    deploys = _deploy_jobs(ctx)
    if not deploys:
        yield _finding(
            "deploy.real",
            "Deploy jobs really deploy",
            FAIL,
            "high",
            "no deploy job: the pipelines build and test only",
            [
                Evidence(f, None, "no job named deploy/release/promote or with an environment")
                for f in ci_files
            ],
            "add deploy jobs for staging and production",
            "deploy: kubernetes | aws-ecs | gcp-cloud-run | azure-container-apps | pm2 | compose",
        )
        return
    for job in deploys:
        placeholder, where = _is_placeholder(job)
        real = _deploy_evidence(job)
        target = job.environment or job.name
        branches = f" from {', '.join(job.branches)}" if job.branches else ""
        if placeholder or real is None:
            evidence = [_ev(where)] if where else [Evidence(job.file, job.line, f"job {job.name}")]
            reason = (
                "only prints or waits, or carries placeholder text"
                if placeholder
                else "runs no deploy command (kubectl, helm, aws ecs, gcloud run, az containerapp, "
                "terraform apply, docker compose up, pm2, ...)"
            )
            yield _finding(
                "deploy.real",
                "Deploy jobs really deploy",
                FAIL,
                "critical",
                f"job `{job.name}` ({target}) {reason}",
                evidence,
                "make the job run the real deploy, verify it and roll back on failure",
                "deploy: <platform> with targets.ci, then `shipforge generate`",
            )
        else:
            yield _finding(
                "deploy.real",
                "Deploy jobs really deploy",
                PASS,
                "critical",
                f"job `{job.name}` deploys {target}{branches}",
                [_ev(real)],
            )


# --- Rollback ---------------------------------------------------------------------------------


@check("Rollback exists")
def rollback_checks(ctx: Context) -> Iterator[Finding]:
    deploys = _deploy_jobs(ctx)
    if not deploys:
        yield _finding(
            "rollback.exists", "A rollback exists", NA, "high", "no deploy job to roll back"
        )
        return
    automatic: list[Evidence] = []
    manual: list[Evidence] = []
    for job in ctx.jobs:
        found = _rollback_evidence(job)
        if found is None:
            continue
        on_failure = job.on_failure or any(
            c.text.startswith("[on failure]") and ROLLBACK_COMMAND.search(c.text)
            for c in job.commands
        )
        if on_failure or _is_deploy_job(job):
            automatic.append(_ev(found))
        elif ROLLBACK_NAME.search(job.name) or job.manual:
            manual.append(_ev(found))
        else:
            manual.append(_ev(found))
    documented = ctx.repo.search(
        [f for f in ctx.repo.files if f.lower().endswith(".md")], r"(?i)^#+.*roll\s*-?back"
    )
    if automatic:
        yield _finding(
            "rollback.exists",
            "A rollback exists",
            PASS,
            "high",
            "a failed deploy is rolled back automatically",
            automatic[:5],
        )
    elif manual:
        evidence = manual[:5]
        if documented:
            evidence.append(Evidence(documented[0], documented[1], documented[2]))
        yield _finding(
            "rollback.exists",
            "A rollback exists",
            PASS if documented else FAIL,
            "high",
            "a manual rollback exists"
            + (" and is documented" if documented else ", but nothing documents it")
            + "; a failed deploy is not rolled back by itself",
            evidence,
            "" if documented else "document the rollback procedure (a runbook heading)",
        )
    else:
        yield _finding(
            "rollback.exists",
            "A rollback exists",
            FAIL,
            "high",
            "no rollback: no job or script runs a rollback command",
            [Evidence(j.file, j.line, f"deploy job {j.name}") for j in deploys[:5]],
            "verify each deploy with a health check and restore the previous version on failure",
            "deploy: <platform> (the generated deploy scripts roll back automatically)",
        )


# --- Migrations -------------------------------------------------------------------------------

MIGRATION_TOOLS = (
    ("alembic", ("alembic.ini", "*/alembic.ini")),
    ("Django", ("*/migrations/0001_*.py", "migrations/0001_*.py")),
    ("Prisma", ("prisma/schema.prisma", "*/prisma/schema.prisma", "*/schema.prisma")),
    ("Flask-Migrate", ("migrations/env.py",)),
    ("knex", ("knexfile.*", "*/knexfile.*")),
    ("Rails", ("db/migrate/*.rb",)),
    ("SQL migrations", ("migrations/*.sql", "db/migrations/*.sql")),
)


def _start_commands(repo: Repo) -> list[Command]:
    """Commands that start the app: Dockerfile CMD/ENTRYPOINT, compose command, Procfile web."""
    found: list[Command] = []
    for rel in repo.named("Dockerfile", "Dockerfile.*", "*.Dockerfile", "Containerfile"):
        for number, line in enumerate(repo.lines(rel), 1):
            if re.match(r"\s*(CMD|ENTRYPOINT)\b", line, re.I):
                found.append(Command(rel, number, line.strip()))
    for rel in _compose_files(repo):
        for number, line in enumerate(repo.lines(rel), 1):
            if re.match(r"\s*(command|entrypoint):", line):
                found.append(Command(rel, number, line.strip()))
    for rel in repo.named("Procfile"):
        for number, line in enumerate(repo.lines(rel), 1):
            if line.startswith("web:"):
                found.append(Command(rel, number, line.strip()))
    for rel in repo.named("entrypoint.sh", "docker-entrypoint.sh", "start.sh", "start-*.sh"):
        for number, line in enumerate(repo.lines(rel), 1):
            found.append(Command(rel, number, line.strip()))
    return found


def _release_steps(ctx: Context) -> list[Command]:
    """Places that run a command before the new version takes traffic."""
    repo = ctx.repo
    found: list[Command] = []
    for job in ctx.jobs:
        found += [c for c in job.all_commands() if MIGRATION_COMMAND.search(c.text)]
    for rel in repo.named("Procfile"):
        for number, line in enumerate(repo.lines(rel), 1):
            if line.startswith("release:"):
                found.append(Command(rel, number, line.strip()))
    for rel in repo.named("fly.toml"):
        hit = repo.search([rel], r"release_command\s*=")
        if hit:
            found.append(Command(*hit))
    for rel in repo.named("render.yaml", "app.json"):
        hit = repo.search([rel], r"preDeployCommand|\"postdeploy\"|\"release\"")
        if hit:
            found.append(Command(*hit))
    for rel in repo.named("shipforge.yaml"):
        hit = repo.search([rel], r"^\s+release:\s*\S")
        if hit:
            found.append(Command(*hit))
    applying = _applying_commands(ctx)
    for doc_file, kind, name, data, at in _kube_objects(repo):
        if kind in ("Deployment", "StatefulSet") and _pod_spec(data).get("initContainers"):
            init = str(_pod_spec(data).get("initContainers"))
            if MIGRATION_COMMAND.search(init) or re.search(r"migrat", init, re.I):
                found.append(Command(doc_file, at, f"{kind} {name}: an init container migrates"))
        elif kind == "Job" and _runs_migrations(_pod_spec(data)):
            how = _job_applied(repo, applying, doc_file, data)
            if how:
                found.append(Command(doc_file, at, f"Job {name} runs the migrations ({how})"))
        elif kind == "CronJob":
            template = ((data.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {}
            pod = (
                (template.get("template") or {}).get("spec") if isinstance(template, dict) else None
            )
            if not isinstance(pod, dict) or not _runs_migrations(pod):
                continue
            from_cron = re.compile(rf"\bcreate\s+job\b.*--from[= ]cronjob/{re.escape(name)}\b")
            trigger = _first(applying, from_cron)
            if trigger:
                found.append(
                    Command(
                        trigger.file, trigger.line, f"a Job from CronJob {name}: {trigger.text}"
                    )
                )
    return found


HOOK_ANNOTATION = re.compile(r"^(helm\.sh/hook|argocd\.argoproj\.io/hook)$")


def _runs_migrations(pod: dict[str, Any]) -> bool:
    """Whether a pod spec's containers run a migration command (command, args)."""
    runs = " ".join(
        str(c.get(part) or "")
        for c in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]
        if isinstance(c, dict)
        for part in ("command", "args")
    )
    return (
        MIGRATION_COMMAND.search(runs) is not None or re.search(r"migrat", runs, re.I) is not None
    )


def _applying_commands(ctx: Context) -> list[Command]:
    """What may apply a manifest: every CI command (and the scripts it runs), every script."""
    found = [c for job in ctx.jobs for c in job.all_commands()]
    for rel in ctx.repo.named("*.sh", "*.bash", "Makefile", "justfile"):
        for number, line in enumerate(ctx.repo.lines(rel), 1):
            if line.strip() and not line.strip().startswith("#"):
                found.append(Command(rel, number, line.strip()))
    return found


def _job_applied(repo: Repo, commands: list[Command], rel: str, data: dict[str, Any]) -> str:
    """How a Job manifest gets applied (a hook, a kustomization, a command), or ""."""
    annotations = (data.get("metadata") or {}).get("annotations") or {}
    if isinstance(annotations, dict):
        hook = next((str(k) for k in annotations if HOOK_ANNOTATION.match(str(k))), None)
        if hook:
            return f"{hook} annotation"
    folder, _, base = rel.rpartition("/")
    for kustomization in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
        path = f"{folder}/{kustomization}" if folder else kustomization
        for document in repo.yaml_documents(path) if repo.exists(path) else []:
            resources = document.data.get("resources") if isinstance(document.data, dict) else None
            if isinstance(resources, list) and any(
                str(r).removeprefix("./") == base for r in resources
            ):
                return f"listed in {path}"
    mentions = [re.escape(rel)]
    if folder:
        mentions.append(rf"(-f|-k|--filename|--kustomize)[= ]+\.?/?{re.escape(folder)}/?(\s|$)")
    applied = _first(commands, re.compile("|".join(mentions)))
    return f"applied by {applied.file}:{applied.line}" if applied else ""


@check("Migrations")
def migration_checks(ctx: Context) -> Iterator[Finding]:
    repo = ctx.repo
    tools = [(name, repo.glob(*patterns)) for name, patterns in MIGRATION_TOOLS]
    tools = [(name, files) for name, files in tools if files]
    if not tools:
        yield _finding(
            "migrations.run",
            "Migrations run before the new version takes traffic",
            NA,
            "high",
            "no migration tool found (alembic, Django, Prisma, Flask-Migrate, knex, Rails, SQL)",
        )
        return
    names = ", ".join(name for name, _ in tools)
    where = [Evidence(files[0], None, f"{name} migrations") for name, files in tools]
    releases = _release_steps(ctx)
    racing = [c for c in _start_commands(repo) if MIGRATION_COMMAND.search(c.text)]
    if releases:
        yield _finding(
            "migrations.run",
            "Migrations run before the new version takes traffic",
            PASS,
            "high",
            f"{names}: a release step runs them before the rollout",
            [_ev(c) for c in releases[:5]],
        )
    elif racing:
        yield _finding(
            "migrations.run",
            "Migrations run before the new version takes traffic",
            FAIL,
            "high",
            f"{names}: migrations run in the start command, so every replica races to run "
            "them while the old version still serves",
            [_ev(c) for c in racing[:5]],
            "run them once per deploy, before the rollout (a release job or pre-deploy hook)",
            "services.<name>.release, then `shipforge generate`",
        )
    else:
        yield _finding(
            "migrations.run",
            "Migrations run before the new version takes traffic",
            FAIL,
            "high",
            f"{names}: no pipeline, release hook or Job runs the migrations",
            [
                *where,
                Evidence("(pipelines)", None, "searched every CI job and the scripts it runs"),
            ],
            "run the migration command once per deploy, before the rollout",
            "services.<name>.release, then `shipforge generate`",
        )


# --- Secrets ----------------------------------------------------------------------------------

KEY_SHAPES = (
    ("AWS access key id", re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("private key", re.compile(r"-----BEGIN (RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----")),
    ("GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b|\bgithub_pat_[A-Za-z0-9_]{40,}")),
    ("GitLab token", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}")),
    ("Anthropic API key", re.compile(r"\bsk-ant-[A-Za-z0-9_-]{20,}")),
    ("OpenAI API key", re.compile(r"\bsk-(proj-)?[A-Za-z0-9_-]{32,}")),
    ("Stripe secret key", re.compile(r"\b[rs]k_live_[A-Za-z0-9]{20,}")),
    ("Slack token", re.compile(r"\bxox[baprs]-[A-Za-z0-9-]{10,}")),
    ("Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("URL with a password", re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:([^/\s@'\"$]{3,})@")),
)
SECRET_NAME = re.compile(
    r"(^|_)(PASSWORD|PASSWD|SECRET|SECRET_KEY|TOKEN|API_?KEY|PRIVATE_KEY|ACCESS_KEY|AUTH_KEY)$",
    re.I,
)
PLACEHOLDER_VALUE = re.compile(
    r"^(|change[-_]?(me|this|it)|xxx+|\*+|<[^>]*>|\$\{[^}]*\}|\$[A-Z_]+|your[-_].*|"
    r"example|dummy|test|secret|password|none|null|todo|replace[-_]?me|\.\.\.)$",
    re.I,
)
SECRET_FILES = (
    ".env",
    ".env.*",
    "*/.env",
    "*/.env.*",
    "*.tf",
    "*.tfvars",
    "*.ipynb",
    "*.yaml",
    "*.yml",
    "*.json",
    "*.toml",
    "*.ini",
    "*.cfg",
    "*.conf",
    "*.properties",
    "*.py",
    "*.js",
    "*.ts",
    "*.sh",
    "Dockerfile*",
)


# Files that are private keys by their name: reported by name and line, never read out.
# (`*.pem` holding only certificates is public and passes.)
KEY_FILES = (
    *("*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.ppk"),
    *("id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_ecdsa_sk", "id_ed25519_sk"),
)
CERTIFICATE_ONLY = re.compile(r"-----BEGIN (TRUSTED )?CERTIFICATE-----")


def _key_files(repo: Repo) -> list[Evidence]:
    found: list[Evidence] = []
    for rel in repo.named(*KEY_FILES):
        text = repo.text(rel) or ""
        if rel.endswith(".pem") and CERTIFICATE_ONLY.search(text) and "PRIVATE KEY" not in text:
            continue
        line = repo.line_of(rel, r"PRIVATE KEY") if text else None
        found.append(Evidence(rel, line, "private key file (content not shown)"))
    return found


def _kube_secret_literals(repo: Repo) -> list[Evidence]:
    """Values written into Kubernetes Secret manifests (stringData, or non-empty data)."""
    found: list[Evidence] = []
    for rel, kind, name, data, at in _kube_objects(repo):
        if kind != "Secret":
            continue
        for part in ("stringData", "data"):
            values = data.get(part)
            if not isinstance(values, dict):
                continue
            start = repo.line_of(rel, rf"^\s*{part}:", at) or at
            for key, value in values.items():
                text = "" if value is None else str(value).strip()
                if not text or PLACEHOLDER_VALUE.match(text):
                    continue
                line = repo.line_of(rel, rf"^\s*['\"]?{re.escape(str(key))}['\"]?\s*:", start)
                found.append(
                    Evidence(
                        rel, line, f"Secret {name} {part}.{key} is a literal ({fingerprint(text)})"
                    )
                )
    return found


# `name = "value"` (HCL) or `"name": "value"` (a .tfvars.json line).
TFVARS_ASSIGNMENT = re.compile(r"^\s*\"?([A-Za-z_][A-Za-z0-9_-]*)\"?\s*[=:]\s*\"([^\"]*)\"")


def _tfvars_literals(repo: Repo) -> list[Evidence]:
    """Secret-named Terraform variables given a literal value in a `*.tfvars` file."""
    found: list[Evidence] = []
    for rel in repo.glob("*.tfvars", "*.tfvars.json"):
        for number, line in enumerate(repo.lines(rel), 1):
            match = TFVARS_ASSIGNMENT.match(line)
            if not match or not SECRET_NAME.search(match.group(1)):
                continue
            value = match.group(2).strip()
            if PLACEHOLDER_VALUE.match(value) or len(value) < 6:
                continue
            found.append(Evidence(rel, number, f"value of {match.group(1)} ({fingerprint(value)})"))
    return found


def fingerprint(value: str) -> str:
    """A stable, redacted name for a secret value: enough to match it, never to read it."""
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:12]


def _secret_hits(rel: str, lines: list[str]) -> Iterator[tuple[int, str, str]]:
    """(line, kind, fingerprint) of every credential-shaped value in the file."""
    env_like = re.search(r"(^|/)\.env", rel) is not None
    for number, line in enumerate(lines, 1):
        for kind, regex in KEY_SHAPES:
            match = regex.search(line)
            if match:
                value = match.group(1) if regex.groups and match.group(1) else match.group(0)
                if kind == "URL with a password" and PLACEHOLDER_VALUE.match(value):
                    continue
                yield number, kind, fingerprint(value)
                break
        else:
            if env_like:
                assignment = re.match(
                    r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$", line
                )
                if assignment and SECRET_NAME.search(assignment.group(1)):
                    value = assignment.group(2).strip().strip("'\"")
                    if not PLACEHOLDER_VALUE.match(value) and len(value) >= 6:
                        yield number, f"value of {assignment.group(1)}", fingerprint(value)


def _git(repo: Repo, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo.root), *args],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


# detect-secrets' plugins that name a kind of key; its entropy and keyword plugins are left
# out: on real repositories they mostly flag hashes, ids and variable names.
DETECT_SECRETS_GUESSES = ("Base64 High Entropy String", "Hex High Entropy String", "Secret Keyword")


def detect_secrets_hits(repo: Repo, files: list[str]) -> list[Evidence] | None:
    """Keys detect-secrets finds in these files (kind, file, line), or None when not installed."""
    from generator import lint

    if lint.find_tool("detect-secrets-hook") is None:
        return None
    if not files:
        return []
    result = lint.detect_secrets([str(repo.root / rel) for rel in files])
    by_path = {str(repo.root / rel): rel for rel in files}
    return [
        Evidence(by_path.get(f.path, f.path), f.line, f"{f.code} (detect-secrets)")
        for f in result.findings
        if f.code not in DETECT_SECRETS_GUESSES and f.code != "tool-error"
    ]


@check("Secrets")
def secret_checks(ctx: Context) -> Iterator[Finding]:
    repo = ctx.repo
    hits: list[Evidence] = _key_files(repo)
    key_files = {e.file for e in hits}
    seen: set[tuple[str, int | None]] = set()
    searched = [
        rel
        for rel in repo.glob(*SECRET_FILES)
        if not rel.endswith((".lock", "-lock.json", "package-lock.json")) and rel not in key_files
    ]
    for rel in searched:
        for number, kind, mark in _secret_hits(rel, repo.lines(rel)):
            hits.append(Evidence(rel, number, f"{kind} ({mark})"))
            seen.add((rel, number))
    more = [*_kube_secret_literals(repo), *_tfvars_literals(repo)]
    more += detect_secrets_hits(repo, searched) or []
    for extra in more:
        if (extra.file, extra.line) not in seen:
            hits.append(extra)
            seen.add((extra.file, extra.line))
    yield _finding(
        "secrets.committed",
        "No secret values in the tree",
        FAIL if hits else PASS,
        "critical",
        f"{len(hits)} credential-shaped value(s) committed" if hits else "no credential found",
        hits[:50]
        or [Evidence("(repository)", None, f"searched {len(repo.glob(*SECRET_FILES))} files")],
        "rotate each key, remove it from the tree (and history), and pass it as a secret name"
        if hits
        else "",
        "services.<name>.secrets (names only; values in the platform's secret store)"
        if hits
        else "",
    )
    literal: list[Evidence] = []
    for rel in _compose_files(repo):
        for number, line in enumerate(repo.lines(rel), 1):
            match = re.match(
                r"\s*-?\s*['\"]?([A-Z0-9_]*(PASSWORD|SECRET|TOKEN|API_KEY)[A-Z0-9_]*)['\"]?\s*[:=]\s*(.*)$",
                line,
            )
            if match:
                value = match.group(3).strip().strip("'\"")
                # NAME_FILE points at a mounted secret file (/run/secrets/...), not a value.
                by_file = match.group(1).endswith("_FILE") or value.startswith("/run/secrets/")
                if value and "${" not in value and not value.startswith("$") and not by_file:
                    literal.append(
                        Evidence(
                            rel, number, f"{match.group(1)} is a literal ({fingerprint(value)})"
                        )
                    )
    if _compose_files(repo):
        yield _finding(
            "secrets.compose-passwords",
            "Compose files take passwords from the environment",
            FAIL if literal else PASS,
            "high",
            f"{len(literal)} hard-coded password(s) in compose files"
            if literal
            else "no literal password",
            literal[:20] or [Evidence(f, None, "searched") for f in _compose_files(repo)],
            "use `${NAME:?set NAME}` and keep the value in an untracked .env or a secret store"
            if literal
            else "",
        )
    ignored = _env_ignored(repo)
    tracked = _git(repo, "ls-files", "--", ".env", "*/.env")
    tracked_env = [t for t in (tracked or "").splitlines() if t]
    if tracked_env:
        status, message = FAIL, f"{', '.join(tracked_env)} is tracked by git"
        evidence = [Evidence(t, None, "tracked") for t in tracked_env]
    elif ignored is None:
        status, message = FAIL, ".env is not in .gitignore"
        evidence = [Evidence(".gitignore", None, "no pattern ignores .env")]
        # Without any .env file yet, the gap is a trap for later, not a leak today.
        if not repo.named(".env", ".env.*"):
            message += " (no .env file exists yet)"
    else:
        status, message = PASS, ".env is ignored"
        evidence = [Evidence(".gitignore", ignored[0], ignored[1])]
    yield _finding(
        "secrets.env-ignored",
        ".env files stay out of git",
        status,
        "high",
        message,
        evidence,
        "add `.env` and `.env.*` (with `!.env.example`) to .gitignore; `git rm --cached .env`"
        if status == FAIL
        else "",
        "targets.env (writes the .gitignore block)" if status == FAIL else "",
    )
    if ctx.history:
        yield from _history_secrets(repo)


def _history_secrets(repo: Repo) -> Iterator[Finding]:
    log = _git(repo, "log", "--all", "-p", "--no-color", "--unified=0", "--max-count=2000")
    if log is None:
        yield _finding(
            "secrets.history",
            "No secret values in the git history",
            NA,
            "critical",
            "not a git repository, or git could not read it",
        )
        return
    hits: list[Evidence] = []
    commit, path = "", ""
    for line in log.splitlines()[:2_000_000]:
        if line.startswith("commit "):
            commit = line.split()[1][:12]
        elif line.startswith("+++ b/"):
            path = line[6:]
        elif line.startswith("+") and not line.startswith("+++"):
            for _, kind, mark in _secret_hits(path, [line[1:]]):
                hits.append(Evidence(path, None, f"commit {commit}: {kind} ({mark})"))
    unique = list(dict.fromkeys(hits))
    yield _finding(
        "secrets.history",
        "No secret values in the git history",
        FAIL if unique else PASS,
        "critical",
        f"{len(unique)} credential-shaped value(s) in past commits" if unique else "none found",
        unique[:50],
        "rotate those keys: a value once pushed is public to everyone who cloned" if unique else "",
    )


def _env_ignored(repo: Repo) -> tuple[int, str] | None:
    import fnmatch

    for number, line in enumerate(repo.lines(".gitignore"), 1):
        pattern = line.strip().lstrip("/")
        if pattern and not pattern.startswith(("#", "!")) and fnmatch.fnmatchcase(".env", pattern):
            return number, line.strip()
    return None


# --- Images -----------------------------------------------------------------------------------


def _dockerfiles(repo: Repo) -> list[str]:
    return repo.named("Dockerfile", "Dockerfile.*", "*.Dockerfile", "Containerfile")


def _instructions(repo: Repo, rel: str) -> list[tuple[int, str, str]]:
    """(line, INSTRUCTION, arguments) with continuation lines joined."""
    out: list[tuple[int, str, str]] = []
    pending = ""
    start = 0
    for number, line in enumerate(repo.lines(rel), 1):
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if not pending:
            start = number
        pending += " " + stripped.rstrip("\\")
        if stripped.endswith("\\"):
            continue
        word, _, rest = pending.strip().partition(" ")
        out.append((start, word.upper(), rest.strip()))
        pending = ""
    return out


FROZEN = (
    # (A pinned tool installed globally, `npm install --global pnpm@9.15.0`, is no dependency.)
    (
        re.compile(r"\bnpm\s+(install|i)\b(?!.*(--(ci|frozen)|\s(-g|--global)\b))"),
        "npm install (use npm ci)",
    ),
    (
        re.compile(r"\bpnpm\s+(install|i)\b(?!.*--frozen-lockfile)"),
        "pnpm install without --frozen-lockfile",
    ),
    (
        re.compile(r"\byarn(\s+install)?\s*($|&&|;)(?!.*--(immutable|frozen-lockfile))"),
        "yarn install without --immutable",
    ),
    (
        re.compile(r"\bpoetry\s+lock\b"),
        "poetry lock in the image (the lockfile should come from git)",
    ),
    (re.compile(r"\buv\s+sync\b(?!.*--(locked|frozen))"), "uv sync without --locked"),
    (
        re.compile(
            r"\bpip3?\s+install\b(?!.*(-r\s|--requirement|-c\s|--constraint|--require-hashes|\s\.(\s|;|$)|\.whl|/wheels|--no-index|\bpip\b\s+[-\w]*$|poetry|uv\b|--upgrade\s+pip|pip\s*$))"
        ),
        "pip install of names without a lock or requirements file",
    ),
)


@check("Images")
def image_checks(ctx: Context) -> Iterator[Finding]:
    repo = ctx.repo
    files = _dockerfiles(repo)
    if not files:
        yield _finding(
            "images.present", "Container images are defined", NA, "medium", "no Dockerfile"
        )
        return
    for rel in files:
        steps = _instructions(repo, rel)
        froms = [(n, a) for n, w, a in steps if w == "FROM"]
        stage_names = {a.split()[-1].lower() for _, a in froms if " as " in a.lower()}
        users = [(n, a) for n, w, a in steps if w == "USER"]
        last_from = froms[-1][0] if froms else 0
        final_user = [u for u in users if u[0] > last_from]
        user = final_user[-1] if final_user else None
        root = user is None or user[1].split(":")[0] in ("root", "0")
        yield _finding(
            "images.non-root",
            "Images run as a non-root user",
            FAIL if root else PASS,
            "high",
            f"{rel}: " + ("the final stage runs as root" if root else f"runs as {user[1]}"),  # type: ignore[index]
            [
                Evidence(
                    rel,
                    user[0] if user else last_from or None,
                    f"USER {user[1]}" if user else "no USER in the final stage",
                )
            ],
            "add a non-root USER to the final stage" if root else "",
            "targets.docker" if root else "",
        )
        health = [(n, a) for n, w, a in steps if w == "HEALTHCHECK"]
        probed = _probes_exist(repo) or _compose_healthchecks(repo)
        worker_only = not any(w == "EXPOSE" for _, w, _ in steps)
        status = PASS if health or probed or worker_only else FAIL
        yield _finding(
            "images.healthcheck",
            "Images have a health check",
            status,
            "medium",
            f"{rel}: "
            + (
                "HEALTHCHECK " + _short(health[0][1])
                if health
                else "health is checked by the platform (probes or compose healthchecks)"
                if probed
                else "no EXPOSE: a worker, checked by its process"
                if worker_only
                else "no HEALTHCHECK, and no probe or compose healthcheck"
            ),
            [
                Evidence(
                    rel, health[0][0] if health else None, "HEALTHCHECK" if health else "searched"
                )
            ],
            "add a HEALTHCHECK that calls the health route" if status == FAIL else "",
        )
        multi = len(froms) > 1
        yield _finding(
            "images.multi-stage",
            "Images build in a separate stage",
            PASS if multi else FAIL,
            "low",
            f"{rel}: {len(froms)} stage(s)",
            [Evidence(rel, froms[0][0] if froms else None, "FROM")],
            "build in one stage and copy only what runs into a slim final stage"
            if not multi
            else "",
        )
        unpinned = []
        for number, args in froms:
            image = next((w for w in args.split() if not w.startswith("--")), "")
            if image.lower() in stage_names or image == "scratch":
                continue
            tag = image.split("@")[0].rsplit("/", 1)[-1]
            if "@sha256:" not in image and (":" not in tag or tag.endswith(":latest")):
                unpinned.append(Evidence(rel, number, f"FROM {image}"))
        yield _finding(
            "images.pinned-base",
            "Base images are pinned",
            FAIL if unpinned else PASS,
            "medium",
            f"{rel}: "
            + (
                "a base image without a version tag"
                if unpinned
                else "every base has a version tag or digest"
            ),
            unpinned or [Evidence(rel, froms[0][0] if froms else None, "FROM")],
            "pin a version tag (or a digest)" if unpinned else "",
        )
        loose = []
        for number, word, args in steps:
            if word != "RUN":
                continue
            for regex, why in FROZEN:
                if regex.search(args):
                    loose.append(Evidence(rel, number, why))
                    break
        yield _finding(
            "images.frozen-install",
            "Dependencies install from the lockfile",
            FAIL if loose else PASS,
            "medium",
            f"{rel}: "
            + (
                "an install that can resolve other versions than the lockfile"
                if loose
                else "installs are locked or from requirements files"
            ),
            loose or [Evidence(rel, None, "every RUN install")],
            "install with npm ci / --frozen-lockfile / --immutable / uv sync --locked / -r requirements"
            if loose
            else "",
        )
        context = rel.rsplit("/", 1)[0] if "/" in rel else ""
        ignore = f"{context}/.dockerignore" if context else ".dockerignore"
        ignore_lines = [line.strip() for line in repo.lines(ignore)]
        missing = [
            p for p in (".env", ".git") if not any(_ignores(line, p) for line in ignore_lines)
        ]
        yield _finding(
            "images.dockerignore",
            "A .dockerignore keeps secrets out of the image",
            FAIL if missing or not repo.exists(ignore) else PASS,
            "high",
            f"{rel}: "
            + (
                "no .dockerignore beside it"
                if not repo.exists(ignore)
                else f".dockerignore does not exclude {', '.join(missing)}"
                if missing
                else ".dockerignore excludes .env and .git"
            ),
            [Evidence(ignore, None, "searched")],
            "add a .dockerignore with .env*, .git, keys and state files"
            if missing or not repo.exists(ignore)
            else "",
            "targets.docker (writes .dockerignore)" if missing or not repo.exists(ignore) else "",
        )


def _ignores(line: str, name: str) -> bool:
    import fnmatch

    pattern = line.strip().lstrip("/").rstrip("/").removeprefix("**/")
    if not pattern or pattern.startswith(("#", "!")):
        return False
    return fnmatch.fnmatchcase(name, pattern) or pattern in ("*", "**")


# --- Runtime ----------------------------------------------------------------------------------


def _compose_files(repo: Repo) -> list[str]:
    return [
        f
        for f in repo.named(
            "compose.yaml",
            "compose.yml",
            "docker-compose*.yml",
            "docker-compose*.yaml",
            "compose.*.yaml",
            "compose.*.yml",
        )
    ]


def _kube_objects(repo: Repo) -> list[tuple[str, str, str, dict[str, Any], int]]:
    """(file, kind, name, object, line) of every Kubernetes object in YAML files."""
    if "kube" in repo.memo:
        return repo.memo["kube"]  # type: ignore[no-any-return]
    found: list[tuple[str, str, str, dict[str, Any], int]] = []
    compose = set(_compose_files(repo))
    for rel in repo.glob("*.yaml", "*.yml"):
        if rel.startswith(".github/") or rel == ".gitlab-ci.yml" or rel in compose:
            continue
        for document in repo.yaml_documents(rel):
            data = document.data
            if isinstance(data, dict) and "apiVersion" in data and "kind" in data:
                name = str((data.get("metadata") or {}).get("name", ""))
                line = (
                    repo.line_of(rel, rf"^\s*name:\s*['\"]?{re.escape(name)}", document.start)
                    or document.start
                )
                found.append((rel, str(data["kind"]), name, data, line))
    repo.memo["kube"] = found
    return found


def _pod_spec(data: dict[str, Any]) -> dict[str, Any]:
    spec = data.get("spec") or {}
    template = spec.get("template") or {}
    pod = template.get("spec") if isinstance(template, dict) else None
    return pod if isinstance(pod, dict) else {}


WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")


def _probes_exist(repo: Repo) -> bool:
    return any(
        c.get("readinessProbe") or c.get("livenessProbe")
        for _, kind, _, data, _ in _kube_objects(repo)
        if kind in WORKLOADS
        for c in _pod_spec(data).get("containers") or []
        if isinstance(c, dict)
    )


def _compose_healthchecks(repo: Repo) -> bool:
    return any(
        re.search(r"^\s+healthcheck:", t, re.M)
        for t in (repo.text(f) or "" for f in _compose_files(repo))
    )


def _health_paths(repo: Repo) -> list[Evidence]:
    """HTTP paths that probes and health checks call."""
    found: list[Evidence] = []
    for rel, kind, _, data, line in _kube_objects(repo):
        if kind not in WORKLOADS:
            continue
        for container in _pod_spec(data).get("containers") or []:
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                path = ((container.get(probe) or {}).get("httpGet") or {}).get("path")
                if path:
                    found.append(
                        Evidence(
                            rel,
                            repo.line_of(rel, rf"path:\s*['\"]?{re.escape(path)}", line),
                            str(path),
                        )
                    )
    # Only health checks, and only the local URLs they call (a `curl https://bun.sh/install`
    # in a RUN line is a download, not a probe).
    for rel in [*_dockerfiles(repo), *_compose_files(repo)]:
        for number, line_text in enumerate(repo.lines(rel), 1):
            if re.search(r"^\s*HEALTHCHECK\b|^\s*test:|^\s*-\s*\[?\s*['\"]?CMD", line_text):
                local = r"https?://(?:127\.0\.0\.1|localhost|0\.0\.0\.0)(?::\d+)?"
                for match in re.finditer(local + r"(/[A-Za-z0-9._~/-]*)", line_text):
                    if match.group(1) not in ("", "/"):
                        found.append(Evidence(rel, number, match.group(1)))
    return list(dict.fromkeys(found))


HELM_WORKLOAD = re.compile(r"^kind:\s*['\"]?(Deployment|StatefulSet|DaemonSet)\b")


def _helm_workloads(repo: Repo) -> list[tuple[str, str, int, str]]:
    """(template, kind, line, text) of the workloads in Helm chart templates, read as text:
    a template is Go-templated YAML that rarely parses before it is rendered."""
    parsed = {o[0] for o in _kube_objects(repo) if o[1] in WORKLOADS}
    found: list[tuple[str, str, int, str]] = []
    for rel in repo.glob("charts/*/templates/*", "*/charts/*/templates/*"):
        if rel in parsed or not rel.endswith((".yaml", ".yml", ".tpl")):
            continue
        text = repo.text(rel) or ""
        # One manifest per `---`; each workload is checked on its own text.
        offset = 0
        for part in re.split(r"^---\s*$", text, flags=re.M):
            for number, line in enumerate(part.splitlines(), offset + 1):
                match = HELM_WORKLOAD.match(line)
                if match:
                    found.append((rel, match.group(1), number, part))
                    break
            offset += part.count("\n") + 1
    return found


def _chart_values(repo: Repo, template: str) -> str:
    chart = template.split("/templates/", 1)[0]
    return "\n".join(repo.text(f"{chart}/{name}") or "" for name in ("values.yaml", "values.yml"))


def _helm_workload_checks(repo: Repo) -> Iterator[Finding]:
    for rel, kind, line, text in _helm_workloads(repo):
        values = _chart_values(repo, rel)
        # Limits written in the template, or taken from values.yaml that sets a memory limit.
        inline = re.search(r"^\s*limits:\s*(\{[^}]*memory|\n\s+memory:)", text, re.M)
        from_values = re.search(r"\.Values\.[\w.]*resources", text) and re.search(
            r"^\s*limits:\s*(\{[^}]*memory|\n(\s+#.*\n)*\s+memory:)", values, re.M
        )
        limited = bool(inline or from_values)
        where = [Evidence(rel, line, f"Helm template {kind}")]
        yield _finding(
            "runtime.resources",
            "Containers have resource limits",
            PASS if limited else FAIL,
            "medium",
            f"{rel} ({kind}, read as text): "
            + ("a memory limit is set" if limited else "no memory limit in the template or values"),
            where,
            "" if limited else "set resources.limits.memory (in the template or values.yaml)",
        )
        if not re.search(r"containerPort:", text):
            continue  # a worker: restarted when it exits
        probed = all(
            re.search(rf"^\s*{p}:", text, re.M) for p in ("readinessProbe", "livenessProbe")
        )
        yield _finding(
            "runtime.probes",
            "Containers have readiness and liveness probes",
            PASS if probed else FAIL,
            "high",
            f"{rel} ({kind}, read as text): "
            + ("probed" if probed else "no readiness and liveness probe"),
            where,
            "" if probed else "add readiness and liveness probes to the template",
            "" if probed else "services.<name>.health",
        )


@check("Runtime")
def runtime_checks(ctx: Context) -> Iterator[Finding]:
    repo = ctx.repo
    code = repo.code_files()
    paths = _health_paths(repo)
    if not paths:
        yield _finding(
            "runtime.health-routes",
            "Health routes exist for the probes that call them",
            NA,
            "high",
            "no probe or health check calls an HTTP path",
        )
    elif not code:
        yield _finding(
            "runtime.health-routes",
            "Health routes exist for the probes that call them",
            NA,
            "high",
            "no application code in this tree to search",
            paths[:5],
        )
    else:
        for probe in paths:
            # Frameworks write routes with or without the slashes (Django: "ready/").
            route = re.escape(probe.text.strip("/"))
            hit = repo.search(code, rf"['\"`]/?{route}/?['\"`]")
            yield _finding(
                "runtime.health-routes",
                "Health routes exist for the probes that call them",
                PASS if hit else FAIL,
                "high",
                f"{probe.text}: "
                + (
                    f"served by {hit[0]}:{hit[1]}" if hit else "no route with this path in the code"
                ),
                [probe, *([Evidence(hit[0], hit[1], hit[2])] if hit else [])],
                "" if hit else "add the route, or point the probe at one that exists",
                "" if hit else "services.<name>.health",
            )
    workloads = [o for o in _kube_objects(repo) if o[1] in WORKLOADS]
    if not workloads and not _helm_workloads(repo):
        yield _finding(
            "runtime.kubernetes",
            "Kubernetes workloads have probes, limits and disruption budgets",
            NA,
            "medium",
            "no Kubernetes workload",
        )
    pdbs = [o for o in _kube_objects(repo) if o[1] == "PodDisruptionBudget"]
    hpas = {
        str(((o[3].get("spec") or {}).get("scaleTargetRef") or {}).get("name"))
        for o in _kube_objects(repo)
        if o[1] == "HorizontalPodAutoscaler"
    }
    for rel, kind, name, data, line in workloads:
        containers = [c for c in _pod_spec(data).get("containers") or [] if isinstance(c, dict)]
        unlimited = [
            c.get("name", "?")
            for c in containers
            if not ((c.get("resources") or {}).get("limits") or {}).get("memory")
        ]
        yield _finding(
            "runtime.resources",
            "Containers have resource limits",
            FAIL if unlimited else PASS,
            "medium",
            f"{kind} {name}: "
            + (
                f"no memory limit for {', '.join(map(str, unlimited))}"
                if unlimited
                else "requests and limits set"
            ),
            [Evidence(rel, line, f"{kind} {name}")],
            "set resources.requests and resources.limits" if unlimited else "",
        )
        unprobed = [
            c.get("name", "?")
            for c in containers
            # A container without ports is a worker: Kubernetes restarts it when it exits.
            if c.get("ports") and not (c.get("readinessProbe") and c.get("livenessProbe"))
        ]
        yield _finding(
            "runtime.probes",
            "Containers have readiness and liveness probes",
            FAIL if unprobed else PASS,
            "high",
            f"{kind} {name}: "
            + (f"no probe for {', '.join(map(str, unprobed))}" if unprobed else "probed"),
            [Evidence(rel, line, f"{kind} {name}")],
            "add readiness and liveness probes" if unprobed else "",
            "services.<name>.health" if unprobed else "",
        )
        replicas = (data.get("spec") or {}).get("replicas", 1)
        if (isinstance(replicas, int) and replicas > 1) or name in hpas:
            labels = ((data.get("spec") or {}).get("template") or {}).get("metadata", {}).get(
                "labels"
            ) or {}
            covered = [
                p
                for p in pdbs
                if set(
                    (
                        ((p[3].get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
                    ).items()
                )
                <= set(labels.items())
                and (((p[3].get("spec") or {}).get("selector") or {}).get("matchLabels"))
            ]
            yield _finding(
                "runtime.disruption-budget",
                "Replicated workloads have a disruption budget",
                PASS if covered else FAIL,
                "medium",
                f"{kind} {name}: "
                + (
                    f"PodDisruptionBudget {covered[0][2]}"
                    if covered
                    else "several replicas, no PodDisruptionBudget selects them"
                ),
                [
                    Evidence(covered[0][0], covered[0][4], "PodDisruptionBudget")
                    if covered
                    else Evidence(rel, line, f"{kind} {name}")
                ],
                "" if covered else "add a PodDisruptionBudget with minAvailable 1",
            )
    yield from _helm_workload_checks(repo)
    for rel in _compose_files(repo):
        documents = repo.yaml_documents(rel)
        services = (
            documents[0].data.get("services")
            if documents and isinstance(documents[0].data, dict)
            else None
        )
        if not isinstance(services, dict):
            continue
        production = "prod" in rel or len(_compose_files(repo)) == 1
        if not production:
            continue
        for name, spec in services.items():
            if not isinstance(spec, dict):
                continue
            policy = spec.get("restart") or ((spec.get("deploy") or {}).get("restart_policy"))
            one_off = str(spec.get("restart", "")).strip("'\"") == "no" and (
                "profiles" in spec or "release" in str(name) or "migrat" in str(name)
            )
            if one_off:
                continue
            yield _finding(
                "runtime.restart-policy",
                "Services restart after a crash",
                PASS if policy else FAIL,
                "medium",
                f"{rel} {name}: " + (f"restart {policy}" if policy else "no restart policy"),
                [
                    Evidence(
                        rel, repo.line_of(rel, rf"^\s+{re.escape(str(name))}:"), f"service {name}"
                    )
                ],
                "" if policy else "set `restart: unless-stopped`",
            )


# --- Observability ----------------------------------------------------------------------------


@check("Observability")
def observability_checks(ctx: Context) -> Iterator[Finding]:
    repo = ctx.repo
    configs = [
        f for f in repo.glob("*.yml", "*.yaml") if re.search(r"scrape_configs:", repo.text(f) or "")
    ]
    annotations = repo.search(
        repo.glob("*.yaml", "*.yml"), r"prometheus\.io/scrape|kind:\s*(ServiceMonitor|PodMonitor)"
    )
    clients = repo.search(
        [
            f
            for f in repo.files
            if f.rsplit("/", 1)[-1]
            in ("requirements.txt", "pyproject.toml", "package.json", "Pipfile", "poetry.lock")
        ],
        r"prometheus[-_]client|prom-client|prometheus-fastapi-instrumentator|django-prometheus|opentelemetry",
    )
    evidence = [
        Evidence(f, repo.line_of(f, "scrape_configs:"), "scrape_configs") for f in configs[:3]
    ]
    if annotations:
        evidence.append(Evidence(*annotations))
    if clients:
        evidence.append(Evidence(*clients))
    yield _finding(
        "observability.metrics",
        "Metrics are scraped",
        PASS if evidence else FAIL,
        "medium",
        "Prometheus scrapes the services"
        if evidence
        else "no scrape configuration, monitor or metrics client",
        evidence
        or [
            Evidence(
                "(repository)",
                None,
                "searched YAML for scrape_configs and dependency files for metrics clients",
            )
        ],
        "" if evidence else "expose /metrics and scrape it",
        "" if evidence else "monitoring.prometheus: true",
    )
    rules = [
        f
        for f in repo.glob("*.yml", "*.yaml")
        if re.search(r"^\s*-?\s*alert:\s*\S", repo.text(f) or "", re.M)
    ]
    receivers = [
        f
        for f in repo.glob("*.yml", "*.yaml")
        if re.search(r"^receivers:", repo.text(f) or "", re.M)
    ]
    wired = [f for f in configs if re.search(r"alertmanagers:", repo.text(f) or "")]
    if not rules:
        yield _finding(
            "observability.alerts",
            "Alerts exist and reach a receiver",
            FAIL,
            "medium",
            "no alert rules",
            [Evidence("(repository)", None, "searched YAML for `alert:` rules")],
            "write alert rules for availability, errors and restarts",
            "monitoring.prometheus: true",
        )
    else:
        ok = bool(receivers) and bool(wired)
        why = (
            "alert rules reach an Alertmanager with receivers"
            if ok
            else "alert rules exist, but no Alertmanager receives them"
            if not receivers
            else "an Alertmanager config exists, but Prometheus is not pointed at it (alerting.alertmanagers)"
        )
        yield _finding(
            "observability.alerts",
            "Alerts exist and reach a receiver",
            PASS if ok else FAIL,
            "high",
            why,
            [Evidence(rules[0], repo.line_of(rules[0], r"alert:"), "alert rules")]
            + [Evidence(r, repo.line_of(r, "^receivers:"), "receivers") for r in receivers[:2]],
            "" if ok else "run an Alertmanager with a receiver and point Prometheus at it",
        )


LOG_COLLECTOR = re.compile(
    r"\b(fluent-?bit|fluentd|vector|promtail|grafana/alloy|otel/opentelemetry-collector"
    r"|opentelemetry-collector|filebeat|logstash|datadog/agent|grafana/loki)\b",
    re.I,
)
LOG_DRIVERS = re.compile(
    r"^\s*driver:\s*['\"]?(awslogs|fluentd|gelf|loki|syslog|journald|splunk|gcplogs|logentries|etwlogs)\b"
)
CLOUD_LOGS = re.compile(
    r"logDriver\s*=?\s*:?\s*['\"]awslogs['\"]|\"logDriver\"\s*:\s*\"(awslogs|awsfirelens|splunk)\""
    r"|resource\s+\"aws_cloudwatch_log_group\"|resource\s+\"google_cloud_run(_v2)?_service\""
    r"|resource\s+\"azurerm_log_analytics_workspace\"|logs_destination\s*=",
)
STRUCTURED_LOGGING = re.compile(
    r"^\s*['\"]?(structlog|python-json-logger|loguru|pino|winston|bunyan|logrus|zap|zerolog"
    r"|pm2-logrotate)\b",
    re.I,
)


def _log_evidence(repo: Repo) -> list[Evidence]:
    found: list[Evidence] = []
    for rel in _compose_files(repo):
        lines = repo.lines(rel)
        for number, line in enumerate(lines, 1):
            if LOG_DRIVERS.match(line):
                found.append(Evidence(rel, number, f"logging {line.strip()}"))
            elif re.match(r"^\s*driver:\s*['\"]?(json-file|local)\b", line) and any(
                "max-size" in later for later in lines[number : number + 4]
            ):
                found.append(
                    Evidence(rel, number, f"logging {line.strip()}, rotated (kept on the host)")
                )
            elif re.match(r"^\s*image:", line) and LOG_COLLECTOR.search(line):
                found.append(Evidence(rel, number, f"log collector {line.strip()}"))
    for rel, kind, name, data, at in _kube_objects(repo):
        if kind in (*WORKLOADS, "HelmRelease", "Application") and LOG_COLLECTOR.search(
            f"{name} {_pod_spec(data).get('containers')} {data.get('spec')}"
        ):
            found.append(Evidence(rel, at, f"{kind} {name}: a log collector"))
    hit = repo.search(repo.glob("*.tf", "*.json"), CLOUD_LOGS.pattern)
    if hit:
        found.append(Evidence(hit[0], hit[1], _short(hit[2])))
    manifests = [
        f
        for f in repo.files
        if f.rsplit("/", 1)[-1] in ("requirements.txt", "pyproject.toml", "package.json", "go.mod")
    ]
    for rel in manifests:
        for number, line in enumerate(repo.lines(rel), 1):
            bare = line.strip().strip(",").split(":")[0].strip().strip("'\"")
            if STRUCTURED_LOGGING.match(bare) or re.search(
                r"\b(go\.uber\.org/zap|sirupsen/logrus|rs/zerolog)\b", line
            ):
                found.append(Evidence(rel, number, f"logging library {bare}"))
                break
    hit = repo.search(
        [f for f in repo.files if f.endswith((".sh", ".js", ".yml", ".yaml")) or "Dockerfile" in f],
        r"pm2\s+install\s+pm2-logrotate|module:\s*['\"]pm2-logrotate",
    )
    if hit:
        found.append(Evidence(hit[0], hit[1], "pm2-logrotate"))
    return found


@check("Observability")
def log_checks(ctx: Context) -> Iterator[Finding]:
    repo = ctx.repo
    evidence = _log_evidence(repo)
    kubernetes = any(o[1] in WORKLOADS for o in _kube_objects(repo)) or _helm_workloads(repo)
    elsewhere = (
        _compose_files(repo)
        or repo.glob("*.tf")
        or [f for f in repo.files if f.endswith(("ecosystem.config.js", "ecosystem.config.cjs"))]
    )
    if not evidence and kubernetes and not elsewhere:
        # Kubernetes keeps each container's stdout on its node (the kubelet rotates it) and
        # the cluster's log agent ships it: both live outside the repository, so a verdict
        # here would be a guess either way.
        yield _finding(
            "observability.logs",
            "Logs are shipped or kept",
            NA,
            "medium",
            "the workloads log to Kubernetes (stdout), whose log agent is the cluster's, not "
            "the repository's: check that the cluster ships container logs with a retention",
            [Evidence("(repository)", None, "no collector, logging driver or log service in it")],
            "",
        )
        return
    unseen = (
        " (a cluster-wide collector installed outside this repository is not visible here)"
        if kubernetes
        else ""
    )
    yield _finding(
        "observability.logs",
        "Logs are shipped or kept",
        PASS if evidence else FAIL,
        "medium",
        "logs are shipped to a collector or platform, or kept and rotated"
        if evidence
        else "nothing ships or keeps the logs: they live in the container until it is replaced"
        + unseen,
        evidence[:5]
        or [
            Evidence(
                "(repository)",
                None,
                "searched compose logging drivers and collector images, Kubernetes log "
                "collectors (fluent-bit, vector, promtail, otel), CloudWatch/Cloud Logging/"
                "Log Analytics in Terraform and task definitions, pm2-logrotate, and logging "
                "libraries in the dependency files",
            )
        ],
        ""
        if evidence
        else "ship stdout to a log store (a logging driver, a collector DaemonSet, the "
        "platform's log service) with a retention",
    )


# --- Environments and releases ----------------------------------------------------------------


@check("Environments and releases")
def environment_checks(ctx: Context) -> Iterator[Finding]:
    if ctx.pipelines:
        yield from _version_check(ctx)
    yield from _environment_gates(ctx)


def _version_check(ctx: Context) -> Iterator[Finding]:
    tagged = _first(
        [c for j in ctx.jobs for c in j.all_commands()],
        re.compile(
            r"GITHUB_SHA|github\.sha|CI_COMMIT_SHA|CI_COMMIT_TAG|GIT_SHA|GIT_COMMIT|BUILD_SOURCEVERSION|CIRCLE_SHA1|BITBUCKET_COMMIT|github\.ref_name|\$\{?VERSION"
        ),
    )
    yield _finding(
        "environments.versions",
        "Releases are versioned",
        PASS if tagged else FAIL,
        "medium",
        "images are tagged with the commit or version"
        if tagged
        else "no commit SHA or version in the pipelines: images are mutable tags",
        [_ev(tagged)]
        if tagged
        else [Evidence("(pipelines)", None, "searched for a commit SHA or version")],
        "" if tagged else "tag each image with the commit SHA and deploy by digest",
    )


def _environment_gates(ctx: Context) -> Iterator[Finding]:
    deploys = [j for j in _deploy_jobs(ctx) if not _is_placeholder(j)[0]]
    if not deploys:
        yield _finding(
            "environments.staging",
            "Staging deploys before production",
            NA,
            "high",
            "no real deploy job",
        )
        return
    staging = [j for j in deploys if STAGING.search(f"{j.environment} {j.name}")]
    production = [
        j for j in deploys if PRODUCTION.search(f"{j.environment} {j.name}") and j not in staging
    ]
    yield _finding(
        "environments.staging",
        "Staging deploys before production",
        PASS if staging and production else FAIL,
        "high",
        (
            f"staging: {', '.join(j.name for j in staging)}; production: {', '.join(j.name for j in production)}"
        )
        if staging and production
        else "no staging deploy"
        if production
        else "no production deploy"
        if staging
        else "deploy jobs name no staging or production environment",
        [Evidence(j.file, j.line, f"job {j.name}") for j in (staging + production)[:6]],
        "" if staging and production else "deploy to staging first, then promote to production",
    )
    by_name = {j.name: j for j in ctx.jobs}
    for job in production:
        held = next((j for j in _upstream(job, by_name) if j.blocking), None)
        gate = (
            job.manual
            or held is not None
            or (job.system == "github" and bool(job.environment))
            or (job.system in ("azure", "bitbucket") and bool(job.environment))
        )
        how = (
            "a manual job"
            if job.manual
            else f"it needs the manual job `{held.name}`"
            if held is not None
            else f"environment `{job.environment}` (its required reviewers are set in the repository settings)"
        )
        yield _finding(
            "environments.approval",
            "Production deploys need an approval",
            PASS if gate else FAIL,
            "high",
            f"job `{job.name}`: " + (how if gate else "runs without a person's approval"),
            [Evidence(job.file, job.line, f"job {job.name}")],
            "" if gate else "make the production deploy a manual job or a protected environment",
            "" if gate else "environments.production.approval: true",
        )


# --- Tests in CI ------------------------------------------------------------------------------


def _upstream(job: Job, jobs: dict[str, Job]) -> list[Job]:
    """Every job this one waits for through `needs`, transitively."""
    found: list[Job] = []
    frontier = list(job.needs)
    while frontier:
        other = jobs.get(frontier.pop())
        if other is None or other in found:
            continue
        found.append(other)
        frontier += other.needs
    return found


def _depends_on(job: Job, wanted: set[str], jobs: dict[str, Job]) -> bool:
    seen: set[str] = set()
    frontier = [*job.needs, *job.earlier]
    while frontier:
        name = frontier.pop()
        if name in wanted:
            return True
        if name in seen or name not in jobs:
            continue
        seen.add(name)
        frontier += [*jobs[name].needs, *jobs[name].earlier]
    return False


@check("Tests in CI")
def test_checks(ctx: Context) -> Iterator[Finding]:
    if not ctx.pipelines:
        yield _finding("tests.in-ci", "CI runs the tests", NA, "high", "no CI configuration")
        return
    testing = [(j, c) for j in ctx.jobs if (c := _first(j.all_commands(), TEST_COMMAND))]
    yield _finding(
        "tests.in-ci",
        "CI runs the tests",
        PASS if testing else FAIL,
        "high",
        f"{len(testing)} job(s) run tests" if testing else "no job runs a test command",
        [_ev(c) for _, c in testing[:5]]
        or [Evidence("(pipelines)", None, "searched for pytest, npm test, jest, go test, ...")],
        "" if testing else "run the test suite in CI",
        "" if testing else "targets.ci: github | gitlab",
    )
    names = {j.name for j, _ in testing} | {j.stage for j, _ in testing}
    by_name = {j.name: j for j in ctx.jobs} | {j.stage: j for j in ctx.jobs if j.stage}
    for job in _deploy_jobs(ctx):
        if _is_placeholder(job)[0]:
            continue
        own = _first(job.all_commands(), TEST_COMMAND) is not None
        # Promotion deploys the artifact a staging run built, tested and verified.
        promotes = _first(job.all_commands(), PROMOTION) is not None
        gated = own or promotes or _depends_on(job, names, by_name)
        yield _finding(
            "tests.gate-deploys",
            "Deploys depend on the tests",
            PASS if gated else FAIL,
            "high",
            f"job `{job.name}`: "
            + (
                "promotes the artifact verified in staging"
                if promotes and not own
                else "runs after the tests"
                if gated
                else "can deploy without the tests passing"
            ),
            [Evidence(job.file, job.line, f"job {job.name}")],
            "" if gated else "make the deploy job need the test job (needs: / a later stage)",
        )
