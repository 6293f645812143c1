"""`shipforge check` of an all-target 10-service project against its slowest linter alone.

Usage: python bench/bench_check.py [--runs N] [--tools-dir DIR]

Generates the 10-service descriptor of bench_generate.py with every target (Docker, compose,
.env, PM2, Kubernetes, Terraform, GitHub CI, monitoring) into a fresh folder, with the
lockfiles its Dockerfiles copy. Then it times, as whole processes (median of N runs):

- every linter job `shipforge check` plans, each run alone exactly as check runs it;
- `shipforge check` itself (every linter, in parallel).

and prints the ratio of check to its slowest linter; the budget is 1.25x (issue 15). The tools
come from PATH and --tools-dir (default: this repository's .venv-checkov and .tools).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_generate import descriptor

ROOT = Path(__file__).resolve().parent.parent
BUDGET = 1.25


def all_targets(services: int) -> dict[str, object]:
    data = descriptor(services)
    data["environments"] = {
        "staging": {"domain": "staging.bench.example.com", "branch": "develop"},
        "production": {"domain": "bench.example.com", "branch": "main", "approval": True},
    }
    data["targets"] = {
        "docker": True,
        "compose": True,
        "env": True,
        "pm2": True,
        "kubernetes": True,
        "terraform": "aws-ecs",
        "ci": "github",
        "runbook": True,
    }
    data["deploy"] = "kubernetes"
    data["monitoring"] = {"prometheus": True, "grafana": True}
    return data


def project(folder: Path) -> Path:
    from generator.loader import load
    from generator.pipeline import generate
    from generator.writer import apply

    folder.mkdir(parents=True, exist_ok=True)
    descriptor_path = folder / "shipforge.yaml"
    descriptor_path.write_text(yaml.safe_dump(all_targets(10)))
    _, changes = generate(descriptor_path, folder)
    apply(folder, changes)
    for image in load(descriptor_path).dockerfiles:
        for name in image.lockfiles:
            (folder / image.path).mkdir(parents=True, exist_ok=True)
            (folder / image.path / name).touch()
    return folder


def median(runs: int, call: object) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tools-dir", default=str(ROOT))
    args = parser.parse_args()
    os.environ["SHIPFORGE_TOOLS_DIR"] = args.tools_dir

    from generator.check import Options, discover, plan_jobs
    from generator.check.jobs import _kustomize_builds

    with tempfile.TemporaryDirectory() as scratch:
        repo = project(Path(scratch) / "repo")
        options = Options()
        found = discover(repo)
        built, _ = _kustomize_builds(repo, found, Path(scratch), options)
        jobs = plan_jobs(repo, found, set(), options, built)
        alone: dict[str, float] = {}
        for job in jobs:
            alone[job.name] = median(args.runs, job.run)
        check = [sys.executable, "-m", "generator", "check", str(repo), "--format", "json"]
        whole = median(
            args.runs,
            lambda: subprocess.run(check, stdout=subprocess.DEVNULL, check=False),
        )
    width = max(len(name) for name in alone)
    for name, seconds in sorted(alone.items(), key=lambda item: -item[1]):
        print(f"  {name:<{width}}  {seconds:6.2f} s alone")
    slowest_name, slowest = max(alone.items(), key=lambda item: item[1])
    ratio = whole / slowest
    print(f"shipforge check, every linter: {whole:6.2f} s (median of {args.runs})")
    print(f"slowest linter alone ({slowest_name}): {slowest:6.2f} s")
    print(f"ratio: {ratio:.2f}x (budget {BUDGET}x): {'ok' if ratio <= BUDGET else 'OVER'}")


if __name__ == "__main__":
    main()
