"""Scale of `shipforge generate` with every target on: 10, 100 and 1,000 services.

Usage: python bench/bench_scale.py [--runs N] [--sizes 10,100,1000] [--no-copier] [--keep DIR]

Each size is generated into a fresh folder as a whole process (`python -m generator generate`),
timed by wall clock, with the peak resident memory of that process (getrusage of the child).
Then `copier copy` of the 10-service descriptor from this template, for the 0.2x goal. Prints
the ratios the goals of issue 19 are stated in (README, Performance):

- all-target generate of 100 services at most 12x the time of 10, 1,000 at most 12x of 100;
- peak memory of 1,000 services under 1 GB;
- all-target generate of 10 services at most 0.2x `copier copy` of the same descriptor.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
# Run as a script or loaded by the tests from a file path: either way bench/ is a folder of
# the repository root, not an installed package.
sys.path.insert(0, str(ROOT))

from bench.bench_generate import descriptor as core_descriptor  # noqa: E402

SHIPFORGE = [sys.executable, "-m", "generator"]


def descriptor(services: int) -> dict[str, object]:
    """Every target on (Kubernetes deploy, GitHub CI, AWS ECS, PM2, compose, monitoring), over
    bench_generate's services: python and node, web and workers, datastores, secrets and a
    release command."""
    data = core_descriptor(services)
    body: dict[str, dict[str, object]] = data["services"]  # type: ignore[assignment]
    for i, service in enumerate(body.values()):
        if service["runtime"] == "python":
            service["command"] = f"uvicorn app:app --host 0.0.0.0 --port {8000 + i}"
    body["svc0"]["release"] = "alembic upgrade head"
    data["project"] = {"name": "bench", "registry": "ghcr.io/acme"}
    data["datastores"] = {"postgres": {"version": "16"}, "redis": {"version": "7"}}
    data["environments"] = {
        "staging": {"domain": "staging.example.com", "branch": "develop"},
        "production": {"domain": "example.com", "branch": "main", "approval": True},
    }
    data["targets"] = {
        "docker": True,
        "compose": True,
        "pm2": True,
        "kubernetes": True,
        "terraform": "aws-ecs",
        "ci": "github",
        "env": True,
        "runbook": True,
    }
    data["deploy"] = "kubernetes"
    data["monitoring"] = {"prometheus": True, "grafana": True, "metrics_path": "/metrics"}
    return data


# As a user runs them: Python may cache compiled modules (some sandboxes disable that, which
# adds a recompile of every module to each run and measures the sandbox, not shipforge).
ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def run(command: list[str], cwd: Path | None = None) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one whole process, from its own rusage."""
    with tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        child = subprocess.Popen(
            command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=stderr, env=ENV
        )
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode:
            stderr.seek(0)
            sys.exit(f"{' '.join(command)} failed:\n{stderr.read().decode(errors='replace')}")
    return elapsed, usage.ru_maxrss * 1024  # KiB on Linux


def generate(path: Path, runs: int, keep: Path | None) -> tuple[float, int, int]:
    """Median time and peak RSS of `runs` generates, after one warm-up run (which fills the
    caches a user's second run finds: compiled modules and templates), and the output's bytes."""
    times, peak, size = [], 0, 0
    for index in range(-1, runs):
        out = Path(tempfile.mkdtemp(prefix="shipforge-bench-"))
        try:
            seconds, rss = run([*SHIPFORGE, "generate", str(path), "--out", str(out)])
            if index < 0:
                size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
                continue
            times.append(seconds)
            peak = max(peak, rss)
            if keep and index == 0:
                shutil.copytree(out, keep / path.stem, dirs_exist_ok=True)
        finally:
            shutil.rmtree(out)
    return statistics.median(times), peak, size


def copier_ratio(path: Path, runs: int) -> tuple[float, float]:
    """Median times of generate and `copier copy` of one descriptor, run in turns (generate,
    copier, generate, ...) so that load from other jobs on the machine hits both alike."""
    generate_times, copier_times = [], []
    for _ in range(runs):
        generate_times.append(generate(path, 1, None)[0])
        copier_times.append(copier_copy(path, 1))
    return statistics.median(generate_times), statistics.median(copier_times)


def copier_copy(path: Path, runs: int) -> float:
    """`copier copy` of this template with the descriptor as its answers, as the README says.

    The template is copied outside any git checkout first (as the parity test does), so copier
    renders the working tree rather than a tag."""
    copier = Path(sys.executable).with_name("copier")
    times = []
    with tempfile.TemporaryDirectory(prefix="shipforge-template-") as source:
        shutil.copy(ROOT / "copier.yml", Path(source) / "copier.yml")
        shutil.copytree(ROOT / "template", Path(source) / "template")
        for index in range(-1, runs):
            with tempfile.TemporaryDirectory(prefix="shipforge-copier-") as out:
                command = [
                    str(copier),
                    "copy",
                    "--trust",
                    "--defaults",
                    "--quiet",
                    "--data-file",
                    str(path),
                    source,
                    out,
                ]
                seconds = run(command)[0]
                if index >= 0:
                    times.append(seconds)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--no-copier", action="store_true")
    parser.add_argument("--keep", type=Path, help="copy each size's first output here")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    results: dict[int, tuple[float, int, int]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for count in sizes:
            path = Path(folder) / f"services-{count}.yaml"
            path.write_text(yaml.safe_dump(descriptor(count), sort_keys=False))
            results[count] = generate(path, args.runs, args.keep)
            seconds, peak, size = results[count]
            print(
                f"generate, all targets, {count:>5} services: {seconds:8.2f} s, "
                f"peak RSS {peak / 2**20:7.1f} MiB, output {size / 2**20:6.1f} MiB "
                f"(median of {args.runs})",
                flush=True,
            )
        pair = None
        if not args.no_copier and 10 in results:
            pair = copier_ratio(Path(folder) / "services-10.yaml", args.runs)
            print(
                f"in turns: generate {pair[0]:.2f} s, copier copy {pair[1]:.2f} s "
                f"(10 services, median of {args.runs} each)",
                flush=True,
            )
    for small, large in itertools.pairwise(sizes):
        ratio = results[large][0] / results[small][0]
        verdict = "ok" if ratio <= 12 else "OVER"
        print(f"{large:>5} / {small:<5} services time: {ratio:6.2f}x (goal <= 12x) {verdict}")
        growth = results[large][2] / results[small][2]
        print(f"{large:>5} / {small:<5} services output bytes: {growth:6.2f}x")
    if 1000 in results:
        peak = results[1000][1]
        verdict = "ok" if peak < 2**30 else "OVER"
        print(f"peak RSS at 1000 services:  {peak / 2**20:7.1f} MiB (goal < 1024) {verdict}")
    if pair:
        ratio = pair[0] / pair[1]
        verdict = "ok" if ratio <= 0.2 else "OVER"
        print(f"10 services / copier copy:  {ratio:7.2f}x (goal <= 0.2x) {verdict}")


if __name__ == "__main__":
    main()
