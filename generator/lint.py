"""Run external linters on generated files and return structured findings.

Every public function runs one tool and returns a `LintResult`; none raises when the tool fails.
A tool that is not installed gives ``ran=False`` with a reason; a tool that crashes, or prints
something that cannot be parsed, gives a finding with code ``tool-error`` carrying its output.
A check that looked at nothing is reported as a finding too: a scan that saw nothing is not a pass.

Only the standard library is imported here, so importing this module stays cheap.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

StrPath: TypeAlias = "str | os.PathLike[str]"
Paths: TypeAlias = "StrPath | Iterable[StrPath]"


@dataclass(frozen=True)
class Finding:
    tool: str
    path: str
    line: int | None
    code: str
    message: str


@dataclass(frozen=True)
class LintResult:
    tool: str
    ran: bool
    skipped_reason: str | None
    findings: tuple[Finding, ...]


# How to get the PyPI linters (shipforge's [lint] extra) for each way of installing shipforge.
_PIP = (
    "pip install 'shipforge[lint]'; with pipx: pipx install 'shipforge[lint]' "
    "(or pipx inject shipforge <tool>); with uv: uv tool install 'shipforge[lint]'"
)
_INSTALL_HINTS: Mapping[str, str] = {
    "checkov": "python3 -m venv <tools>/.venv-checkov && <tools>/.venv-checkov/bin/pip install "
    "checkov==3.3.30, then pass --tools-dir <tools> (or SHIPFORGE_TOOLS_DIR=<tools>); "
    "or pipx install checkov==3.3.30 / uv tool install checkov==3.3.30",
    "kubectl": "install kubectl >= 1.27, which bundles kustomize",
    "terraform": "install terraform",
    "promtool": "apt-get install prometheus",
}
_TIMEOUT = 600.0
_MAX_OUTPUT = 4000
# Folders the user named for tools (--tools-dir), on top of $SHIPFORGE_TOOLS_DIR.
_tools_dirs: list[Path] = []


def use_tools_dirs(folders: Iterable[StrPath]) -> None:
    """Also look for tools in these folders (what `--tools-dir` names), for this process."""
    _tools_dirs[:] = [Path(os.fspath(f)).resolve() for f in folders]


def tools_dirs() -> list[Path]:
    """The folders the user named for tools: --tools-dir, then $SHIPFORGE_TOOLS_DIR."""
    named = [p for p in os.environ.get("SHIPFORGE_TOOLS_DIR", "").split(os.pathsep) if p]
    return [*_tools_dirs, *(Path(p).resolve() for p in named)]


def find_tool(name: str) -> str | None:
    """Path of executable `name`, or None.

    Looked for on PATH (absolute entries only), beside the running interpreter (a venv's tools
    are there even when the venv is not activated, as with pipx and uv tool), and in the tool
    folders the user named: each folder itself, its bin/, .venv-checkov/bin and
    .tools/npm/node_modules/.bin (the layout tests/install-tools.sh fills).

    Never from the current directory or the repository under check: a pull request could ship
    its own `hadolint` there and have it run by the Action. That is also why relative PATH
    entries (`.`, an empty entry, `node_modules/.bin`) are ignored.
    """
    search = os.pathsep.join(
        p for p in os.environ.get("PATH", os.defpath).split(os.pathsep) if os.path.isabs(p)
    )
    found = shutil.which(name, path=search)
    if found:
        return found
    candidates = [Path(sys.executable).parent]
    for base in tools_dirs():
        candidates += [
            base,
            base / "bin",
            base / ".venv-checkov" / "bin",
            base / ".tools" / "npm" / "node_modules" / ".bin",
        ]
    for folder in candidates:
        exe = folder / name
        if exe.is_file() and os.access(exe, os.X_OK):
            return str(exe)
    return None


# --- shared helpers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Proc:
    rc: int  # -1 when the process could not be started or timed out
    out: str
    err: str


def _run(
    args: Sequence[str],
    *,
    cwd: StrPath | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = _TIMEOUT,
) -> _Proc:
    try:
        proc = subprocess.run(
            list(args),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return _Proc(-1, "", f"{args[0]}: {exc}")
    return _Proc(proc.returncode, proc.stdout, proc.stderr)


def _as_list(paths: Paths) -> list[str]:
    # A lone str is itself iterable; never split it into characters.
    if isinstance(paths, (str, os.PathLike)):
        return [os.fspath(paths)]
    return [os.fspath(p) for p in paths]


def _skipped(tool: str, exe: str) -> LintResult:
    hint = _INSTALL_HINTS.get(exe, _PIP)
    return LintResult(tool, False, f"{exe} not installed ({hint})", ())


def _done(tool: str, findings: Iterable[Finding]) -> LintResult:
    return LintResult(tool, True, None, tuple(findings))


def _tool_error(tool: str, proc: _Proc, path: str = "") -> Finding:
    text = "\n".join(s.strip() for s in (proc.err, proc.out) if s.strip())
    if len(text) > _MAX_OUTPUT:
        text = text[:_MAX_OUTPUT] + "\n[...]"
    return Finding(tool, path, None, "tool-error", f"exit code {proc.rc}: {text or '(no output)'}")


def _precheck(tool: str, paths: Sequence[str]) -> list[Finding]:
    # Several tools (detect-secrets-hook, kubernetes-validate) pass silently on a missing file,
    # and with no file at all some lint the current directory instead.
    if not paths:
        return [Finding(tool, "", None, "tool-error", "no files given to check")]
    return [
        Finding(tool, p, None, "tool-error", "no such file") for p in paths if not os.path.exists(p)
    ]


def _given(reported: str, given: Sequence[str]) -> str:
    """The path as the caller gave it: some tools print paths relative to the current folder."""
    target = os.path.abspath(reported)
    return next((g for g in given if os.path.abspath(g) == target), reported)


def _json(text: str) -> Any:
    """Parsed JSON, or None when the text is not JSON."""
    try:
        return json.loads(text)
    except ValueError:
        return None


# --- one function per tool --------------------------------------------------------------------


def hadolint(paths: Paths, config_path: StrPath | None = None) -> LintResult:
    tool, files = "hadolint", _as_list(paths)
    exe = find_tool(tool)
    if exe is None:
        return _skipped(tool, tool)
    if bad := _precheck(tool, files):
        return _done(tool, bad)
    config = os.fspath(config_path or NEUTRAL_HADOLINT_CONFIG)
    args = ["--no-color", "--config", config, "--failure-threshold", "warning", "-f", "json"]
    proc = _run([exe, *args, *files])
    data = _json(proc.out)
    # rc 1 with empty output is a crash (e.g. unreadable file), not a clean result.
    if not isinstance(data, list) or proc.rc not in (0, 1) or (proc.rc == 1 and not data):
        return _done(tool, [_tool_error(tool, proc)])
    # The JSON lists info/style items too; keep only what the failure threshold counts.
    return _done(
        tool,
        [
            Finding(
                tool,
                str(d["file"]),
                int(d["line"]),
                str(d["code"]),
                f"[{d['level']}] {d['message']}",
            )
            for d in data
            if d.get("level") in ("error", "warning")
        ],
    )


_COMPOSE_WARNING = re.compile(r'level=warning msg="((?:[^"\\]|\\.)*)"')


def compose_config(path: StrPath, env_file: StrPath | None = None) -> LintResult:
    """Validate a compose file as `docker compose config` does; no engine needed.

    Runs with an empty environment and no `.env` unless `env_file` is given, so a variable
    without a default shows up as a finding instead of being filled from wherever the test runs.
    """
    tool, file = "docker-compose", os.fspath(path)
    exe = find_tool(tool)
    if exe is None:
        return _skipped(tool, tool)
    if bad := _precheck(tool, [file]):
        return _done(tool, bad)
    env = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    # --env-file replaces the implicit .env next to the compose file.
    args = [
        exe,
        "--env-file",
        os.fspath(env_file) if env_file else os.devnull,
        "-f",
        file,
        "config",
        "-q",
    ]
    proc = _run(args, env=env)
    if proc.rc == -1:
        return _done(tool, [_tool_error(tool, proc, file)])
    findings: list[Finding] = []
    other: list[str] = []
    for line in proc.err.splitlines():
        # Unset variables and obsolete keys are only warnings with exit code 0.
        if m := _COMPOSE_WARNING.search(line):
            findings.append(Finding(tool, file, None, "warning", m.group(1).replace('\\"', '"')))
        elif line.strip():
            other.append(line.strip())
    if proc.rc != 0:
        findings.append(
            Finding(tool, file, None, "error", "\n".join(other) or f"exit code {proc.rc}")
        )
    return _done(tool, findings)


def check_jsonschema(paths: Paths, builtin: str) -> LintResult:
    """Validate against a schema bundled with check-jsonschema (works offline).

    `builtin` is e.g. vendor.compose-spec, vendor.github-workflows, vendor.gitlab-ci or
    custom.github-workflows-require-timeout.
    """
    tool, files = "check-jsonschema", _as_list(paths)
    exe = find_tool(tool)
    if exe is None:
        return _skipped(tool, tool)
    if bad := _precheck(tool, files):
        return _done(tool, bad)
    proc = _run([exe, "--builtin-schema", builtin, "-o", "json", "--color", "never", *files])
    data = _json(proc.out)
    if not isinstance(data, dict) or proc.rc not in (0, 1):
        return _done(tool, [_tool_error(tool, proc)])
    findings: list[Finding] = []
    for err in data.get("errors", []):
        # The top-level message is often "... is not valid under any of the given schemas";
        # the deepest best match names the actual problem.
        best = err.get("best_deep_match") or err.get("best_match") or err
        findings.append(
            Finding(tool, str(err["filename"]), None, builtin, f"{best['path']}: {best['message']}")
        )
    for err in data.get("parse_errors", []):
        findings.append(
            Finding(tool, str(err["filename"]), None, "parse-error", str(err["message"]))
        )
    if proc.rc != 0 and not findings:
        findings.append(_tool_error(tool, proc))
    return _done(tool, findings)


_YAMLLINT_LINE = re.compile(
    r"^(?P<path>.*):(?P<line>\d+):(?P<col>\d+): \[(?P<level>\w+)\] (?P<msg>.*?)(?: \((?P<rule>[\w-]+)\))?$"
)
DEFAULT_YAMLLINT_CONFIG = Path(__file__).with_name("yamllint.yaml")
# Configurations that change nothing, passed when the checked repository has no (safe) own
# one: without an explicit file, hadolint, actionlint and zizmor look for theirs in the
# current folder or the repository, where a link could point them at any file.
NEUTRAL_HADOLINT_CONFIG = Path(__file__).with_name("hadolint.yaml")
NEUTRAL_ACTIONLINT_CONFIG = Path(__file__).with_name("actionlint.yaml")


def yamllint(paths: Paths, config_path: StrPath | None = None) -> LintResult:
    """Lint YAML; by default with the yamllint.yaml shipped beside this module.

    Warnings are findings too: the shipped config has no warning-level rules.
    """
    tool, files = "yamllint", _as_list(paths)
    exe = find_tool(tool)
    if exe is None:
        return _skipped(tool, tool)
    if bad := _precheck(tool, files):
        return _done(tool, bad)
    config = os.fspath(config_path) if config_path is not None else str(DEFAULT_YAMLLINT_CONFIG)
    proc = _run([exe, "-c", config, "-f", "parsable", *files])
    findings = [
        Finding(
            tool, m["path"], int(m["line"]), m["rule"] or m["level"], f"[{m['level']}] {m['msg']}"
        )
        for m in map(_YAMLLINT_LINE.match, proc.out.splitlines())
        if m
    ]
    # rc 1: errors found; rc 0 may still carry warnings. Anything else (255: unreadable file,
    # bad config) is the tool failing.
    if proc.rc not in (0, 1) or (proc.rc == 1 and not findings) or proc.err.strip():
        findings.append(_tool_error(tool, proc))
    return _done(tool, findings)


_DOTENV_LINE = re.compile(r"^(?P<path>.*):(?P<line>\d+) (?P<code>\d{3}) (?P<msg>.*)$")


def dotenv_linter(paths: Paths, allowed_codes: Iterable[str] = ()) -> LintResult:
    """Lint .env files with the PyPI dotenv-linter (wemake-services, 0.9.x).

    `allowed_codes` are ignored, e.g. ("301", "303"): values with `#`, quotes or newlines must be
    double-quoted to keep their meaning for compose and python-dotenv, which the linter rejects.
    """
    tool, files = "dotenv-linter", _as_list(paths)
    exe = find_tool(tool)
    if exe is None:
        return _skipped(tool, tool)
    if bad := _precheck(tool, files):
        return _done(tool, bad)
    proc = _run([exe, "lint", *files])
    # Problems are printed on stderr as "PATH:LINE CODE MESSAGE"; code 001 (line 0) means the
    # whole file could not be parsed (e.g. an `export` prefix) and hides every other problem.
    parsed = [m for m in map(_DOTENV_LINE.match, proc.err.splitlines()) if m]
    if proc.rc not in (0, 1) or (proc.rc == 1 and not parsed):
        return _done(tool, [_tool_error(tool, proc)])
    allowed = {str(c) for c in allowed_codes}
    return _done(
        tool,
        [
            Finding(tool, m["path"], int(m["line"]) or None, m["code"], m["msg"])
            for m in parsed
            if m["code"] not in allowed
        ],
    )


def detect_secrets(paths: Paths) -> LintResult:
    tool, files = "detect-secrets", _as_list(paths)
    exe = find_tool("detect-secrets-hook")
    if exe is None:
        return _skipped(tool, "detect-secrets-hook")
    if bad := _precheck(tool, files):
        return _done(tool, bad)
    with tempfile.TemporaryDirectory(prefix="shipforge-secrets-") as tmp:
        # detect-secrets treats `*.example` as a file type of its own and reports nothing in it,
        # so such files are scanned as a copy without the suffix (one folder each: same names).
        scanned: dict[str, str] = {}
        for i, original in enumerate(files):
            target = original
            if original.endswith(".example"):
                folder = Path(tmp, str(i))
                folder.mkdir()
                target = str(folder / Path(original).name.removesuffix(".example"))
                shutil.copyfile(original, target)
            scanned[target] = original
        proc = _run([exe, "--json", *scanned])
    # --json prints nothing at all when no secret is found.
    if proc.rc == 0 and not proc.out.strip():
        return _done(tool, [])
    data = _json(proc.out)
    if (
        not isinstance(data, dict)
        or proc.rc not in (0, 1)
        or not isinstance(data.get("results"), dict)
    ):
        return _done(tool, [_tool_error(tool, proc)])
    findings = [
        Finding(
            tool,
            scanned.get(name, name),
            s.get("line_number"),
            str(s["type"]),
            f"possible secret: {s['type']}",
        )
        for name, secrets in data["results"].items()
        for s in secrets
    ]
    if proc.rc == 1 and not findings:
        findings.append(_tool_error(tool, proc))
    return _done(tool, findings)


def actionlint(paths: Paths, config_path: StrPath | None = None) -> LintResult:
    tool, files = "actionlint", _as_list(paths)
    exe = find_tool(tool)
    if exe is None:
        return _skipped(tool, tool)
    # Without shellcheck actionlint silently skips every `run:` script; rather say it did not run.
    shellcheck_exe = find_tool("shellcheck")
    if shellcheck_exe is None:
        return _skipped(tool, "shellcheck")
    if bad := _precheck(tool, files):
        return _done(tool, bad)
    # -pyflakes= : no pyflakes is installed and `shell: python` steps are not generated.
    proc = _run(
        [
            exe,
            "-no-color",
            "-format",
            "{{json .}}",
            f"-shellcheck={shellcheck_exe}",
            "-pyflakes=",
            "-config-file",
            os.fspath(config_path or NEUTRAL_ACTIONLINT_CONFIG),
            *files,
        ],
        # The shellcheck it runs on each `run:` script reads no .shellcheckrc either.
        env={**os.environ, "SHELLCHECK_OPTS": "--norc"},
    )
    data = _json(proc.out)
    # rc 1: problems found; 2: bad arguments; 3: fatal error.
    if not isinstance(data, list) or proc.rc not in (0, 1) or (proc.rc == 1 and not data):
        return _done(tool, [_tool_error(tool, proc)])
    findings: list[Finding] = []
    for d in data:
        code = str(d.get("kind", "actionlint"))
        if code == "shellcheck" and (m := re.search(r"\bSC\d+\b", str(d["message"]))):
            code = m.group(0)
        path = _given(str(d["filepath"]), files)
        findings.append(Finding(tool, path, int(d["line"]), code, str(d["message"])))
    return _done(tool, findings)


def zizmor(paths: Paths, config_path: StrPath | None = None) -> LintResult:
    tool, files = "zizmor", _as_list(paths)
    exe = find_tool(tool)
    if exe is None:
        return _skipped(tool, tool)
    if bad := _precheck(tool, files):
        return _done(tool, bad)
    # --strict-collection: otherwise a workflow that fails zizmor's schema is skipped with only a
    # log warning, and the remaining files "pass".
    proc = _run(
        [
            exe,
            "--offline",
            "--strict-collection",
            "--format",
            "json",
            "--no-progress",
            "--color",
            "never",
            *(["--config", os.fspath(config_path)] if config_path else ["--no-config"]),
            *files,
        ]
    )
    data = _json(proc.out)
    # Exit codes 10-14 mean findings of increasing severity; 1-3 are failures of the tool.
    if not isinstance(data, list) or not (proc.rc == 0 or 10 <= proc.rc <= 14):
        return _done(tool, [_tool_error(tool, proc)])
    findings: list[Finding] = []
    for d in data:
        if d.get("ignored"):
            continue
        locations = d.get("locations") or [{}]
        primary = next(
            (loc for loc in locations if loc.get("symbolic", {}).get("kind") == "Primary"),
            locations[0],
        )
        symbolic, concrete = primary.get("symbolic", {}), primary.get("concrete", {})
        path = symbolic.get("key", {}).get("Local", {}).get("verbatim_path", "")
        row = concrete.get("location", {}).get("start_point", {}).get("row")
        sev = d.get("determinations", {}).get("severity", "?")
        note = symbolic.get("annotation", "")
        findings.append(
            Finding(
                tool,
                str(path),
                row + 1 if isinstance(row, int) else None,  # rows are 0-based
                str(d["ident"]),
                f"[{sev}] {d.get('desc', '')}: {note}",
            )
        )
    if proc.rc != 0 and not findings:
        findings.append(_tool_error(tool, proc))
    return _done(tool, findings)


def shellcheck(paths: Paths, rc_path: StrPath | None = None) -> LintResult:
    tool, files = "shellcheck", _as_list(paths)
    exe = find_tool(tool)
    if exe is None:
        return _skipped(tool, tool)
    if bad := _precheck(tool, files):
        return _done(tool, bad)
    # The given rc file, else none: shellcheck would search the scripts' folders upwards.
    rc = [f"--rcfile={os.fspath(rc_path)}"] if rc_path else ["--norc"]
    proc = _run([exe, *rc, "-f", "json1", *files])
    data = _json(proc.out)
    # rc 2 (e.g. unreadable file) still prints {"comments": []}: check the code first.
    if (
        not isinstance(data, dict)
        or proc.rc not in (0, 1)
        or (proc.rc == 1 and not data.get("comments"))
    ):
        return _done(tool, [_tool_error(tool, proc)])
    return _done(
        tool,
        [
            Finding(
                tool,
                str(c["file"]),
                int(c["line"]),
                f"SC{c['code']}",
                f"[{c['level']}] {c['message']}",
            )
            for c in data.get("comments", [])
        ],
    )


def kubernetes_validate(paths: Paths, version: str) -> LintResult:
    """Strict schema validation of Kubernetes manifests for one Kubernetes version.

    `version` like "1.29.0", "1.29" or "v1.29.0"; kubernetes-validate 1.37.0 knows 1.25 to 1.37.
    """
    tool, files = "kubernetes-validate", _as_list(paths)
    exe = find_tool(tool)
    if exe is None:
        return _skipped(tool, tool)
    if bad := _precheck(tool, files):
        return _done(tool, bad)
    proc = _run([exe, "--strict", "-k", version, *files])
    findings: list[Finding] = []
    validated = 0
    for line in proc.out.splitlines():
        level, _, rest = line.partition(" ")
        path = next((p for p in files if rest.startswith(p + " ")), "")
        message = rest[len(path) :].strip() if path else rest
        if level == "INFO":
            validated += 1
        elif level == "WARN":
            # An unknown kind, or an apiVersion the given Kubernetes release removed, is only a
            # warning with exit code 0; for generated manifests it is an error.
            findings.append(Finding(tool, path, None, "no-schema", message))
        elif level == "ERROR":
            # Only the first schema error of each resource is reported.
            findings.append(Finding(tool, path, None, "invalid", message))
        elif level == "FATAL":  # e.g. a Kubernetes version it has no schemas for
            findings.append(Finding(tool, path, None, "tool-error", message))
    findings = list(dict.fromkeys(findings))  # FATAL lines come once per file
    # YAML syntax errors and unreadable files go to stderr with exit code 1.
    if proc.err.strip() or proc.rc not in (0, 1, 2) or (proc.rc != 0 and not findings):
        findings.append(_tool_error(tool, proc))
    if validated == 0 and not findings:
        findings.append(
            Finding(tool, "", None, "tool-error", "no Kubernetes resource was validated")
        )
    return _done(tool, findings)


def kustomize_build(dir: StrPath) -> tuple[LintResult, str]:
    """Render a kustomization with `kubectl kustomize`; returns the result and the YAML."""
    tool, folder = "kustomize", os.fspath(dir)
    exe = find_tool("kubectl")
    if exe is None:
        return _skipped(tool, "kubectl"), ""
    proc = _run([exe, "kustomize", folder])
    if proc.rc != 0:
        # Drop kubectl's klog prefix ('E1121 05:52:42.738353   20901 run.go:72] ').
        text = re.sub(r"^[EWI]\d{4} [\d:.]+\s+\d+ \S+\] ", "", proc.err.strip(), flags=re.M)
        return _done(
            tool, [Finding(tool, folder, None, "error", text or f"exit code {proc.rc}")]
        ), ""
    # Deprecations (e.g. commonLabels) are printed as "# Warning: ..." on stderr with exit code 0.
    warnings = [
        Finding(tool, folder, None, "warning", line.removeprefix("# Warning:").strip())
        for line in proc.err.splitlines()
        if line.strip()
    ]
    return _done(tool, warnings), proc.out


def checkov(dir_or_files: Paths, frameworks: Sequence[str]) -> LintResult:
    """Run checkov on one folder or on a list of files, offline.

    Each framework asked for must have seen something: checkov's JSON simply leaves out a
    framework that found nothing to scan, and prints a bare summary when no framework did.
    `secrets` is the exception, as it reports only when it finds something.
    """
    tool, targets = "checkov", _as_list(dir_or_files)
    exe = find_tool(tool)
    if exe is None:
        return _skipped(tool, tool)
    if bad := _precheck(tool, targets):
        return _done(tool, bad)
    if not frameworks:
        return _done(tool, [Finding(tool, "", None, "tool-error", "no checkov framework given")])
    folder = targets[0] if len(targets) == 1 and os.path.isdir(targets[0]) else None
    # checkov loads .checkov.yaml from the folder it scans and from the current directory, and
    # such a file can name `external-checks-dir`: Python modules checkov imports. A checked
    # repository must not choose code to run, so files are scanned from an empty folder, and
    # a folder holding such a file is refused.
    if folder is not None and any(
        os.path.lexists(os.path.join(folder, name)) for name in (".checkov.yaml", ".checkov.yml")
    ):
        return _done(
            tool,
            [
                Finding(
                    tool,
                    folder,
                    None,
                    "tool-error",
                    "the folder has a .checkov.yaml, which could make checkov run code from it: "
                    "not scanned as a folder",
                )
            ],
        )
    # --quiet would drop the list of files that failed to parse (only their count stays).
    common = ["--compact", "--skip-download", "-o", "json", "--framework", *frameworks]
    with tempfile.TemporaryDirectory(prefix="shipforge-checkov-") as empty:
        # Run inside the folder: with `-d some/dir` checkov reports Kubernetes paths relative
        # to the current directory but joins them to the folder again (file_abs_path is wrong).
        proc = (
            _run([exe, "-d", ".", *common], cwd=folder)
            if folder is not None
            else _run([exe, "-f", *(os.path.abspath(t) for t in targets), *common], cwd=empty)
        )
    data = _json(proc.out)
    # A missing folder gives exit code 0 and a log line instead of JSON.
    if not isinstance(data, (dict, list)) or proc.rc not in (0, 1):
        return _done(tool, [_tool_error(tool, proc)])
    reports = [
        r
        for r in (data if isinstance(data, list) else [data])
        if isinstance(r, dict) and "check_type" in r
    ]

    def where(check: Mapping[str, Any]) -> str:
        if folder is not None:
            return os.path.join(folder, str(check.get("file_path", "")).lstrip("/"))
        return _given(str(check.get("file_abs_path") or check.get("file_path", "")), targets)

    findings: list[Finding] = []
    for report in reports:
        results, summary = report.get("results", {}), report.get("summary", {})
        for c in results.get("failed_checks", []):
            lines = c.get("file_line_range") or [None]
            findings.append(
                Finding(
                    tool,
                    where(c),
                    lines[0],
                    str(c["check_id"]),
                    f"{c.get('check_name')} ({c.get('resource')})",
                )
            )
        errors = results.get("parsing_errors", [])
        for p in errors:
            findings.append(
                Finding(
                    tool,
                    str(p),
                    None,
                    "parsing-error",
                    f"checkov {report['check_type']} could not parse this file",
                )
            )
        if summary.get("parsing_errors") and not errors:
            findings.append(
                Finding(
                    tool,
                    "",
                    None,
                    "parsing-error",
                    f"{summary['parsing_errors']} file(s) could not be parsed",
                )
            )
    seen = {
        r["check_type"]
        for r in reports
        if sum(int(r.get("summary", {}).get(k, 0)) for k in ("passed", "failed", "skipped")) > 0
    }
    for fw in frameworks:
        if fw != "secrets" and fw not in seen:
            findings.append(
                Finding(
                    tool,
                    folder or "",
                    None,
                    "nothing-scanned",
                    f"checkov framework {fw} found nothing to scan",
                )
            )
    return _done(tool, findings)


def terraform_fmt(dir: StrPath) -> LintResult:
    tool, folder = "terraform-fmt", os.fspath(dir)
    exe = find_tool("terraform")
    if exe is None:
        return _skipped(tool, "terraform")
    if not os.path.isdir(folder):
        return _done(tool, [Finding(tool, folder, None, "tool-error", "no such folder")])
    # Without a CLI config file terraform may print a warning about it on every command.
    env = {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull}
    # Run inside the folder: given a path, terraform prints file names relative to the current
    # folder even when the path was absolute.
    proc = _run(
        [exe, "fmt", "-check", "-diff", "-recursive", "-no-color", "."], cwd=folder, env=env
    )
    if proc.rc == 0:
        return _done(tool, [])
    if proc.rc == 3:
        # stdout: each unformatted file's name, then its diff starting "--- old/PATH".
        findings: list[Finding] = []
        blocks = re.split(r"^--- old/(.+)$", proc.out, flags=re.MULTILINE)
        for path, diff in zip(blocks[1::2], blocks[2::2], strict=True):
            lines = diff.rstrip("\n").split("\n")
            if lines and lines[-1].strip() in blocks[1::2]:
                lines.pop()  # the next file's name line
            findings.append(
                Finding(
                    tool,
                    os.path.join(folder, path),
                    None,
                    "fmt",
                    "not formatted (terraform fmt):\n" + "\n".join(lines).strip("\n"),
                )
            )
        return _done(tool, findings or [_tool_error(tool, proc, folder)])
    if proc.rc == 2:  # syntax errors
        return _done(
            tool, [Finding(tool, folder, None, "error", proc.err.strip() or proc.out.strip())]
        )
    return _done(tool, [_tool_error(tool, proc, folder)])


def _promtool(tool: str, subcommand: Sequence[str], paths: Sequence[str], code: str) -> LintResult:
    exe = find_tool("promtool")
    if exe is None:
        return _skipped(tool, "promtool")
    if bad := _precheck(tool, paths):
        return _done(tool, bad)
    findings: list[Finding] = []
    # One file per run: promtool's messages do not always name the file they are about.
    for path in paths:
        proc = _run([exe, *subcommand, path])
        if proc.rc == 0:
            continue
        if proc.rc in (1, 3):  # 3: lint error with --lint-fatal
            text = "\n".join(s.strip() for s in (proc.err, proc.out) if s.strip())
            kind = "lint" if proc.rc == 3 else code
            # Debian's promtool is built without Kubernetes and Consul service discovery and
            # rejects a valid config that uses them as having unknown fields.
            if m := re.search(r"field (kubernetes_sd_configs|consul_sd_configs) not found", text):
                kind = "unsupported"
                text = f"this promtool build does not support {m.group(1)}:\n{text}"
            findings.append(Finding(tool, path, None, kind, text))
        else:
            findings.append(_tool_error(tool, proc, path))
    return _done(tool, findings)


def promtool_check_config(path: StrPath) -> LintResult:
    """Also checks the rule files the config names (relative to the config's folder)."""
    return _promtool(
        "promtool-config", ["check", "config", "--lint-fatal"], [os.fspath(path)], "invalid"
    )


def promtool_check_rules(paths: Paths) -> LintResult:
    return _promtool(
        "promtool-rules", ["check", "rules", "--lint-fatal"], _as_list(paths), "invalid"
    )


def promtool_test_rules(paths: Paths) -> LintResult:
    """Run rule unit tests; their `rule_files` are relative to each test file's folder."""
    return _promtool("promtool-test", ["test", "rules"], _as_list(paths), "test-failed")
