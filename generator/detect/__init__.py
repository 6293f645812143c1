"""Detect what a repository is, for `shipforge init`: services, runtimes, commands, datastores.

One module per ecosystem, as generator/targets/ has one per target:

- `evidence`: what platform files already say (Dockerfile, compose, Procfile, fly.toml,
  app.json, render.yaml): the strongest evidence, read first.
- `python`, `node`: framework conventions, then the code (`ast` for Python), then defaults.
- `repository`: which folders are services (monorepos), their names and secret names.
- `descriptor`: the questions left open, the commented shipforge.yaml, `--explain`.

Every file is read through one `RepoReader` (generator/repofs.py): no link out of the
repository, no FIFO or device, bounded bytes; what it refuses becomes a note in the file.
"""

from generator.detect.base import Detection, Question, Service, Why, dns_label
from generator.detect.descriptor import (
    apply_answers,
    explain,
    guess_port_placeholders,
    questions,
    render_descriptor,
)
from generator.detect.repository import detect

__all__ = [
    "Detection",
    "Question",
    "Service",
    "Why",
    "apply_answers",
    "detect",
    "dns_label",
    "explain",
    "guess_port_placeholders",
    "questions",
    "render_descriptor",
]
