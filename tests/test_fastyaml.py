"""generator/fastyaml.py gives exactly what yaml.load_all gives, for the targets' loaders."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from generator import fastyaml
from generator.targets.ci import _Loader as GitHubLoader
from tests.conftest import EXAMPLES

LOADERS = [yaml.CSafeLoader, GitHubLoader]

SAMPLES = [
    "",
    "a: 1\n",
    "---\n---\n",
    "a: 1\n---\nb: [1, 2]\n...\n",
    "a: &x {k: v}\nb: *x\n",
    "base: &b {x: 1}\nchild:\n  <<: *b\n  y: 2\n",
    "<<: {a: 1}\nb: 2\n",
    "on: yes\noff: no\nt: 2001-12-14\nf: 1.5\nh: 0x1f\ns: 190:20:30\nn: ~\ne: .inf\n",
    "? [1, 2]\n: complex key\n",
    "!!str 1\n",
    "a: !!int '3'\nb: !custom x\n",
    "- a\n- 'b'\n- \"c\\td\"\n- |\n  block\n- >\n  folded\n",
    "a: 1\na: 2\n",
    "null: 1\n~: 2\n",
    "'on': \"yes\"\nplain: on\n",
]


@pytest.mark.parametrize("loader", LOADERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("text", SAMPLES)
def test_samples_load_as_pyyaml_loads_them(text: str, loader: fastyaml.Loader) -> None:
    try:
        expected: object = list(yaml.load_all(text, Loader=loader))
    except yaml.YAMLError as error:
        expected = type(error)
    try:
        got: object = fastyaml.load_all(text, loader)
    except yaml.YAMLError as error:
        got = type(error)
    assert got == expected


def test_invalid_yaml_raises_a_yaml_error() -> None:
    with pytest.raises(yaml.YAMLError):
        fastyaml.load("a: [1, 2\n")
    with pytest.raises(yaml.YAMLError):
        fastyaml.load("a: 1\n---\nb: 2\n")  # load() takes one document, as yaml.load does


def test_every_generated_yaml_file_loads_the_same(generated: dict[str, Path]) -> None:
    checked = 0
    for root in generated.values():
        for path in sorted(root.rglob("*")):
            if path.suffix not in (".yml", ".yaml") or not path.is_file():
                continue
            text = path.read_text()
            for loader in LOADERS:
                assert fastyaml.load_all(text, loader) == list(
                    yaml.load_all(text, Loader=loader)
                ), path
            checked += 1
    assert checked > 100
    assert len(generated) == len(EXAMPLES)
