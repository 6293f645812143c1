"""Parse the YAML shipforge itself generates, an order of magnitude faster than yaml.load.

The targets' checks parse every file they render; with 1,000 services that is tens of MB, and
PyYAML's constructor (Python code per node, even with libyaml's parser) spent most of a generate
run there. This builds the documents straight from libyaml's events, with the same results as
`yaml.load_all(text, Loader=loader)`: plain scalars are resolved and constructed by the loader's
own resolver and constructor (so `on` is a bool or a string exactly as that loader says), once
per distinct value. Anything beyond plain trees (anchors, aliases, explicit tags, merge keys) is
handed to yaml.load_all itself, so the fast path never changes a result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from yaml.nodes import ScalarNode

Loader = type[yaml.CSafeLoader]
_MERGE = "tag:yaml.org,2002:merge"


class _Fallback(Exception):
    """The text uses YAML the fast path does not build: let PyYAML do it."""


_PLAIN: dict[Loader, Callable[[str], Any]] = {}


def _plain(loader_class: Loader) -> Callable[[str], Any]:
    """A memoized constructor of plain (unquoted) scalars, as `loader_class` resolves them
    (one per loader class and process: scalars are immutable, so sharing them is safe)."""
    if loader_class in _PLAIN:
        return _PLAIN[loader_class]
    loader = loader_class("")
    cache: dict[str, Any] = {}

    def construct(value: str) -> Any:
        try:
            return cache[value]
        except KeyError:
            pass
        tag = loader.resolve(ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
        if tag == _MERGE:
            raise _Fallback
        result = loader.yaml_constructors[tag](loader, ScalarNode(tag, value))
        cache[value] = result
        return result

    _PLAIN[loader_class] = construct
    return construct


def _documents(text: str, loader: Loader) -> list[Any]:
    plain = _plain(loader)
    documents: list[Any] = []
    stack: list[Any] = []
    keys: list[Any] = []  # per open collection: a mapping's pending key, or _NO_KEY
    # (libyaml reports an empty document as an empty plain scalar, so it builds as None.)
    event: Any
    for event in yaml.parse(text, Loader=loader):
        kind = type(event)
        if kind is ScalarEvent:
            if event.anchor is not None or (event.tag is not None and event.tag != "!"):
                raise _Fallback
            value = event.value if event.style or event.tag == "!" else plain(event.value)
        elif kind is MappingStartEvent or kind is SequenceStartEvent:
            if event.anchor is not None or (event.tag is not None and not event.implicit):
                raise _Fallback
            stack.append({} if kind is MappingStartEvent else [])
            keys.append(_NO_KEY)
            continue
        elif kind is MappingEndEvent or kind is SequenceEndEvent:
            value = stack.pop()
            keys.pop()
        elif kind is AliasEvent:
            raise _Fallback
        else:
            continue
        if not stack:
            documents.append(value)
            continue
        top = stack[-1]
        if type(top) is list:
            top.append(value)
        elif keys[-1] is _NO_KEY:
            if isinstance(value, dict | list):
                raise _Fallback  # a complex key: unhashable in Python as in PyYAML
            keys[-1] = value
        else:
            top[keys[-1]] = value
            keys[-1] = _NO_KEY
    return documents


_NO_KEY = object()


def load_all(text: str, loader: Loader = yaml.CSafeLoader) -> list[Any]:
    """Every document of text, as `list(yaml.load_all(text, Loader=loader))` gives them."""
    try:
        return _documents(text, loader)
    except _Fallback:
        return list(yaml.load_all(text, Loader=loader))


def load(text: str, loader: Loader = yaml.CSafeLoader) -> Any:
    """The one document of text, as `yaml.load(text, Loader=loader)` gives it."""
    documents = load_all(text, loader)
    if len(documents) > 1:
        # yaml.load raises on a second document: let it say so, with its position.
        return yaml.load(text, Loader=loader)
    return documents[0] if documents else None
