"""Whole-process timings of `shipforge generate` and `shipforge --help`.

Usage: python bench/bench_generate.py [--runs N]

Prints the median wall time of: generate for 10 and 100 services (docker, compose and env
targets, into a fresh folder each run), `shipforge --help`, and `--help` of a bare typer app,
plus the ratios the performance budget is stated in (see README, Performance).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

SHIPFORGE = [sys.executable, "-m", "generator"]
BARE_TYPER = [
    sys.executable,
    "-c",
    "import typer\napp = typer.Typer()\n@app.command()\ndef main() -> None: pass\napp()",
    "--help",
]


def descriptor(services: int) -> dict[str, object]:
    """A descriptor with python and node services, web and workers, datastores and secrets."""
    body: dict[str, object] = {}
    for i in range(services):
        python = i % 2 == 0
        service: dict[str, object] = {
            "runtime": "python" if python else "node",
            "package_manager": ["pip", "poetry", "uv"][i % 3]
            if python
            else ["npm", "pnpm", "yarn"][i % 3],
            "path": f"services/s{i}",
            "command": "uvicorn app:app --port 8000" if python else "node server.js",
            "env": {"LOG_LEVEL": "info", f"FEATURE_{i}": "on"},
            "secrets": ["API_KEY"],
            "uses": ["postgres", "redis"],
        }
        if i % 3 != 2:
            service.update(
                port=8000 + i, public=i % 2 == 0, release="migrate up" if i == 0 else None
            )
        body[f"svc{i}"] = service
    return {
        "version": 1,
        "project": {"name": "bench"},
        "services": body,
        "datastores": {"postgres": {}, "redis": {}},
    }


def median_seconds(command: list[str], runs: int, fresh_out: bool) -> float:
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as out:
            args = [*command, "--out", out] if fresh_out else command
            start = time.perf_counter()
            subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as folder:
        results = {}
        for count in (10, 100):
            path = Path(folder) / f"shipforge-{count}.yaml"
            path.write_text(yaml.safe_dump(descriptor(count)))
            results[count] = median_seconds([*SHIPFORGE, "generate", str(path)], runs, True)
            print(
                f"generate, {count:>3} services: {results[count] * 1000:7.1f} ms (median of {runs})"
            )
    help_time = median_seconds([*SHIPFORGE, "--help"], runs, False)
    bare_time = median_seconds(BARE_TYPER, runs, False)
    print(f"shipforge --help:            {help_time * 1000:7.1f} ms")
    print(f"bare typer app --help:       {bare_time * 1000:7.1f} ms")
    print(f"100 / 10 services:           {results[100] / results[10]:7.2f}x (budget 3x)")
    print(f"10 services vs 0.3 s budget: {'ok' if results[10] <= 0.3 else 'OVER'}")


if __name__ == "__main__":
    main()
