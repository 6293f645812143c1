"""Cold and warm build times and image sizes of the real fixture apps (measured, not asserted).

Usage: .venv/bin/python -m bench.bench_images [APP ...]   (default: every app of
tests/realapps.py). Each app is built once in fresh image storage (cold: no layer cache; the
package managers' BuildKit cache mounts may still be warm from earlier runs, as on a
developer's machine) and again after a one-line source change (warm). Needs what the slow
tier needs: podman and the stand-in base images of tests/install-tools.sh.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from tests import realapps


def main(names: list[str]) -> int:
    scratch = Path(tempfile.mkdtemp(prefix="bench-images-", dir="/var/tmp"))
    try:
        lab = realapps.podman_lab(scratch)
        print(f"{'app':<16} {'cold s':>8} {'warm s':>8} {'warm/cold':>10} {'size MiB':>9}")
        for name in names or list(realapps.APPS_UNDER_TEST):
            app = realapps.APPS_UNDER_TEST[name]
            root = realapps.prepare(app, scratch)
            tag = f"localhost/bench-{name}:latest-build"
            cold, _ = realapps.build(lab, root, tag)
            source = root / app.source
            comment = "# bench\n" if source.suffix == ".py" else "// bench\n"
            source.write_text(source.read_text() + comment)
            warm, _ = realapps.build(lab, root, tag)
            size = realapps.image_size(lab, tag) / 2**20
            print(f"{name:<16} {cold:>8.1f} {warm:>8.1f} {warm / cold:>10.0%} {size:>9.0f}")
        return 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
