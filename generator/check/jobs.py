"""The linter jobs: which tool runs on which files, run in parallel, findings as problems."""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath

from generator import lint
from generator.check.discovery import _COMPOSE, Inventory
from generator.check.drift import relative
from generator.check.results import Options, Problem, Report, ToolRun
from generator.repofs import RepoReader

# Values with `#`, quotes or a newline must be double-quoted in .env files to keep their
# meaning; dotenv-linter reports that as 301/303. Tolerated in files shipforge generated.
GENERATED_DOTENV_CODES = ("301", "303")


@dataclass(frozen=True)
class Job:
    """One linter run: a display name, the tool name --skip matches, its files, the call."""

    name: str
    tool: str
    files: tuple[str, ...]
    run: Callable[[], lint.LintResult]


def lint_inventory(
    root: Path,
    found: Inventory,
    clean: set[str],
    options: Options,
    report: Report,
    reader: RepoReader | None = None,
    descriptor: str = "",
) -> None:
    """Run every linter that applies to the files found; record what ran and what it said.

    descriptor: the descriptor's path in the repository when the clean files are equal to
    what it renders now (not merely to the hashes of the repository's manifest).
    """
    reader = reader if reader is not None else RepoReader(root)
    with tempfile.TemporaryDirectory(prefix="shipforge-check-") as scratch:
        built, build_problems = _kustomize_builds(root, found, Path(scratch), options)
        jobs = plan_jobs(root, found, clean, options, built, reader, descriptor)
        results = _run_jobs(jobs, options)
        report.problems.extend(build_problems)
        aliases = {str(path): f"{folder}/kustomization.yaml" for folder, path in built.items()}
        for job, result in zip(jobs, results, strict=True):
            problems = [_problem(root, finding, aliases) for finding in result.findings]
            report.tools.append(
                ToolRun(
                    job.name,
                    job.tool,
                    job.files,
                    result.ran,
                    result.skipped_reason or "",
                    len(problems),
                )
            )
            report.problems.extend(problems)
            if not result.ran and not _skipped_on_purpose(job, options):
                # Not installed: a failure with --require-tools (the default under CI), else a
                # warning every report shows; only --skip makes a linter go quietly.
                report.problems.append(
                    Problem(
                        "shipforge",
                        "tool-skipped" if options.require_tools else "tool-missing",
                        "",
                        None,
                        f"{job.name} did not run: {result.skipped_reason}"
                        + (" (--require-tools)" if options.require_tools else ""),
                        "error" if options.require_tools else "warning",
                        failing=options.require_tools,
                    )
                )
        if (
            jobs
            and not any(r.ran for r in results)
            and not all(_skipped_on_purpose(j, options) for j in jobs)
        ):
            report.problems.append(
                Problem(
                    "shipforge",
                    "nothing-linted",
                    "",
                    None,
                    "no linter is installed, so no file was linted: install them "
                    "(pip, pipx or uv: see each skipped linter) or --skip them on purpose",
                )
            )
    if found.helm_charts:
        report.notes.append(
            "Helm charts are not linted (render them first): " + ", ".join(found.helm_charts)
        )


def _skipped_on_purpose(job: Job, options: Options) -> bool:
    return job.tool in options.skip or job.name in options.skip


def _kustomize_builds(
    root: Path, found: Inventory, scratch: Path, options: Options
) -> tuple[dict[str, Path], list[Problem]]:
    """Build each top kustomization once; its output is what kubernetes-validate and checkov see."""
    built: dict[str, Path] = {}
    problems: list[Problem] = []
    if "kustomize" in options.skip or not found.kustomizations:
        return built, problems
    with ThreadPoolExecutor(max_workers=max(1, options.workers)) as pool:
        outputs = list(pool.map(lambda f: lint.kustomize_build(root / f), found.kustomizations))
    for index, (folder, (result, text)) in enumerate(
        zip(found.kustomizations, outputs, strict=True)
    ):
        where = f"{folder}/kustomization.yaml" if folder != "." else "kustomization.yaml"
        if not result.ran:
            continue
        problems.extend(
            Problem("kustomize", f.code, where, None, f.message, "error") for f in result.findings
        )
        if text:
            target = scratch / str(index) / "kustomize-build.yaml"
            target.parent.mkdir()
            target.write_text(text, encoding="utf-8")
            built[folder] = target
    return built, problems


def plan_jobs(
    root: Path,
    found: Inventory,
    clean: set[str],
    options: Options,
    built: dict[str, Path] | None = None,
    reader: RepoReader | None = None,
    descriptor: str = "",
) -> list[Job]:
    """Every linter job the files call for, slowest first (checkov), in a stable order."""
    built = built or {}
    reader = reader if reader is not None else RepoReader(root)

    def at(paths: list[str]) -> list[str]:
        return [str(root / p) for p in paths]

    jobs: list[Job] = []

    def add(name: str, tool: str, files: list[str], call: Callable[[], lint.LintResult]) -> None:
        if files:
            jobs.append(Job(name, tool, tuple(files), call))

    frameworks = [
        name
        for name, present in (
            ("dockerfile", found.dockerfiles),
            ("kubernetes", found.kubernetes or list(built)),
            ("github_actions", found.workflows),
            ("gitlab_ci", found.gitlab),
            ("terraform", found.terraform),
        )
        if present
    ]
    checkov_files = [
        *at(found.dockerfiles),
        *at(found.kubernetes),
        *(str(p) for p in built.values()),
        *at(found.workflows),
        *at(found.gitlab),
        *at(found.terraform),
    ]
    if frameworks:
        add(
            "checkov",
            "checkov",
            [
                *found.dockerfiles,
                *found.kubernetes,
                *built,
                *found.workflows,
                *found.gitlab,
                *found.terraform,
            ],
            # No "secrets" framework: detect-secrets scans the same files below, and each
            # check runs once (checkov's secrets scan was a large part of its time).
            lambda: lint.checkov(checkov_files, frameworks),
        )
    configs = {tool: _own_config(root, reader, tool) for tool in OWN_CONFIGS}
    add(
        "hadolint",
        "hadolint",
        found.dockerfiles,
        lambda: lint.hadolint(at(found.dockerfiles), configs["hadolint"]),
    )
    for compose_file in found.compose:
        env_file = _compose_env_example(root, compose_file, reader)
        add(
            f"docker-compose config ({compose_file})",
            "docker-compose",
            [compose_file],
            partial(
                lint.compose_config, root / compose_file, root / env_file if env_file else None
            ),
        )
    schemas = (
        (found.compose, "vendor.compose-spec"),
        (found.workflows, "vendor.github-workflows"),
        (found.workflows, "custom.github-workflows-require-timeout"),
        (found.actions, "vendor.github-actions"),
        (found.gitlab, "vendor.gitlab-ci"),
    )
    for files, schema in schemas:
        add(
            f"check-jsonschema ({schema})",
            "check-jsonschema",
            files,
            partial(lint.check_jsonschema, at(files), schema),
        )
    add(
        "actionlint",
        "actionlint",
        found.workflows,
        lambda: lint.actionlint(at(found.workflows), configs["actionlint"]),
    )
    github = [*found.workflows, *found.actions]
    add("zizmor", "zizmor", github, lambda: lint.zizmor(at(github), configs["zizmor"]))
    kubernetes = [*at(found.kubernetes), *(str(p) for p in built.values())]
    add(
        f"kubernetes-validate ({options.kubernetes_version})",
        "kubernetes-validate",
        [*found.kubernetes, *built],
        lambda: lint.kubernetes_validate(kubernetes, options.kubernetes_version),
    )
    yaml_files = found.yaml_files()
    add(
        "yamllint",
        "yamllint",
        yaml_files,
        lambda: lint.yamllint(at(yaml_files), configs["yamllint"]),
    )
    for folder in found.terraform_dirs:
        add(
            f"terraform fmt ({folder})",
            "terraform",
            [folder],
            partial(lint.terraform_fmt, root / folder),
        )
    add(
        "shellcheck",
        "shellcheck",
        found.shell,
        lambda: lint.shellcheck(at(found.shell), configs["shellcheck"]),
    )
    generated_env = [p for p in found.env_examples if p in clean]
    own_env = [p for p in found.env_examples if p not in clean]
    add(
        "dotenv-linter (generated)",
        "dotenv-linter",
        generated_env,
        lambda: lint.dotenv_linter(at(generated_env), GENERATED_DOTENV_CODES),
    )
    add("dotenv-linter", "dotenv-linter", own_env, lambda: lint.dotenv_linter(at(own_env)))
    # The descriptor is scanned; a generated file equal to its render holds no value the
    # descriptor does not (shipforge writes the names of secrets, never values), so scanning
    # the render again (a fifth of check's time) finds nothing new. Files clean only by the
    # manifest's hashes are scanned: a pull request can change a file and its hash together.
    scanned = [
        *([descriptor] if descriptor else []),
        *(p for p in found.all_files() if not (descriptor and p in clean)),
    ]
    scanned = [p for p in scanned if (root / p).is_file()]
    add("detect-secrets", "detect-secrets", scanned, lambda: lint.detect_secrets(at(scanned)))
    add(
        "promtool check config",
        "promtool",
        found.prometheus_configs,
        lambda: _merge(lint.promtool_check_config(root / p) for p in found.prometheus_configs),
    )
    add(
        "promtool check rules",
        "promtool",
        found.prometheus_rules,
        lambda: lint.promtool_check_rules(at(found.prometheus_rules)),
    )
    add(
        "promtool test rules",
        "promtool",
        found.prometheus_tests,
        lambda: lint.promtool_test_rules(at(found.prometheus_tests)),
    )
    return jobs


def _merge(results: Iterator[lint.LintResult]) -> lint.LintResult:
    collected = list(results)
    first = collected[0]
    return lint.LintResult(
        first.tool,
        all(r.ran for r in collected),
        first.skipped_reason,
        tuple(f for r in collected for f in r.findings),
    )


def _compose_env_example(root: Path, compose_file: str, reader: RepoReader) -> str:
    """The .env example beside a compose file that documents the variables it interpolates."""
    pure = PurePosixPath(compose_file)
    middle = _COMPOSE.match(pure.name)
    suffix = middle.group(2) if middle else None
    names = ([f".env{suffix}.example"] if suffix else []) + [".env.example"]
    for name in names:
        candidate = pure.parent / name
        # Read through the reader: compose would quote an outside file's lines in its errors.
        if reader.read_text(root / candidate) is not None:
            return candidate.as_posix()
    return ""


# Each linter's own configuration files in a repository, as the tool would find them.
OWN_CONFIGS = {
    "yamllint": (".yamllint", ".yamllint.yaml", ".yamllint.yml"),
    "hadolint": (".hadolint.yaml", ".hadolint.yml"),
    "actionlint": (".github/actionlint.yaml", ".github/actionlint.yml"),
    "zizmor": ("zizmor.yml", ".github/zizmor.yml"),
    "shellcheck": (".shellcheckrc",),
}


def _own_config(root: Path, reader: RepoReader, tool: str) -> Path | None:
    """The repository's own configuration of a linter when it has one, else None.

    Only a regular file inside the repository counts (the reader refuses links out, FIFOs
    and devices, and notes why); the tools are then always given their configuration
    explicitly, so none goes looking for one where a link could lead it elsewhere.
    """
    for name in OWN_CONFIGS[tool]:
        if reader.read_text(root / name) is not None:
            return root / name
    return None


def _run_jobs(jobs: list[Job], options: Options) -> list[lint.LintResult]:
    """Every job once, in parallel (checkov first: it is the slowest), results in job order."""

    def one(job: Job) -> lint.LintResult:
        if _skipped_on_purpose(job, options):
            return lint.LintResult(job.tool, False, "skipped with --skip", ())
        started = time.monotonic()
        result = job.run()
        if options.progress is not None:
            took = time.monotonic() - started
            if not result.ran:
                verdict = f"skipped: {result.skipped_reason}"
            else:
                count = len(result.findings)
                verdict = f"{count} finding(s)" if count else "ok"
            options.progress(f"{job.name}: {verdict} ({took:.1f} s)")
        return result

    # The tools are separate processes: threads overlap their waits (checkov takes seconds).
    with ThreadPoolExecutor(max_workers=max(1, options.workers)) as pool:
        return list(pool.map(one, jobs))


_LEVEL = re.compile(r"^\[(\w+)\]")
_LEVELS = {
    "error": "error",
    "warning": "warning",
    "high": "error",
    "medium": "warning",
    "low": "warning",
    "info": "note",
    "informational": "note",
    "style": "note",
    "unknown": "warning",
}


def _problem(root: Path, finding: lint.Finding, aliases: dict[str, str]) -> Problem:
    path = aliases.get(finding.path, finding.path)
    if path and os.path.isabs(path):
        path = relative(Path(path), root)
    match = _LEVEL.match(finding.message)
    level = _LEVELS.get(match.group(1).lower(), "error") if match else "error"
    line = finding.line if finding.line and finding.line > 0 else None
    # Some tools name resources by absolute path inside their messages.
    message = finding.message.replace(f"{root}/", "")
    if finding.code == "unsupported":
        # The tool cannot read this file at all (e.g. Debian's promtool has no Kubernetes
        # service discovery): said plainly, but not held against the file.
        return Problem(finding.tool, finding.code, path, line, message, "warning", False)
    return Problem(finding.tool, finding.code, path, line, message, level)
