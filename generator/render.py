"""Plan and render: walk the one template tree, as copier does, into rendered files.

Path parts are Jinja too: a part that renders empty is skipped (that is how a disabled target's
files disappear), and `{% yield x from items %}` in a part makes one file per item.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.parser import Parser

from generator.formats import ShipforgeExtension

TEMPLATE_DIR = Path(__file__).resolve().parent / "_data" / "template"
SUFFIX = ".jinja"
# Copier's own answers file is written by copier only; `shipforge generate` keeps its
# bookkeeping in .shipforge/ instead.
COPIER_ONLY = "_copier_conf"
# Macros templates import; never a file of their own (copier.yml excludes it likewise).
MACROS = "_shipforge_macros/"


@dataclass(frozen=True)
class Artifact:
    """A planned file: which template renders it, where, with which extra variables."""

    template: str
    path: str
    extra: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Rendered:
    """A rendered file ready to be checked and written."""

    path: str
    template: str
    content: str
    executable: bool


class YieldExtension(Extension):
    """`{% yield name from items %}...{% endyield %}`: the same tag copier offers in paths."""

    tags = {"yield"}  # noqa: RUF012

    def parse(self, parser: Parser) -> nodes.Node:
        lineno = next(parser.stream).lineno
        target = parser.parse_assign_target(name_only=True)
        parser.stream.expect("name:from")
        iterable = parser.parse_expression()
        body = parser.parse_statements(("name:endyield",), drop_needle=True)
        call = self.call_method("_record", [nodes.Const(target.name), iterable])
        return nodes.CallBlock(call, [], [], body, lineno=lineno)

    def _record(self, name: str, iterable: Any, caller: Any) -> str:
        self.environment.shipforge_yield = (name, list(iterable))  # type: ignore[attr-defined]
        try:
            return str(caller())
        except jinja2.UndefinedError:  # the first pass, before the yielded name is bound
            return ""


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates cached per user: compiling is most of a generate run's cost."""
    from generator import __version__

    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folder = root / "shipforge" / f"jinja-{__version__}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # a read-only home only costs speed
    return jinja2.FileSystemBytecodeCache(str(folder))


def environment() -> jinja2.Environment:
    """The one Jinja environment, configured as copier.yml's _envops configure copier's.

    Files load as `template/<path>`, the names copier's loader gives them (so imports work in
    both); path parts load as `part/<part>` so they are compiled once and cached like files.
    """
    env = jinja2.Environment(
        loader=jinja2.PrefixLoader(
            {
                "template": jinja2.FileSystemLoader(TEMPLATE_DIR),
                "part": jinja2.FunctionLoader(lambda part: (part, None, lambda: True)),
            }
        ),
        bytecode_cache=_bytecode_cache(),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        extensions=[ShipforgeExtension, YieldExtension],
    )
    return env


def _render_part(
    env: jinja2.Environment, part: str, context: dict[str, Any]
) -> Iterator[tuple[str, dict[str, Any]]]:
    template = env.get_template(f"part/{part}")
    env.shipforge_yield = None  # type: ignore[attr-defined]
    rendered = template.render(context)
    found = env.shipforge_yield  # type: ignore[attr-defined]
    if found is None:
        yield rendered, {}
        return
    name, items = found
    for item in items:
        yield template.render({**context, name: item}), {name: item}


def plan(env: jinja2.Environment, context: dict[str, Any]) -> list[Artifact]:
    """Every file the template tree produces for this project, sorted by output path."""
    artifacts: list[Artifact] = []
    for source in sorted(p for p in TEMPLATE_DIR.rglob("*") if p.is_file()):
        relative = source.relative_to(TEMPLATE_DIR).as_posix()
        if COPIER_ONLY in relative or relative.startswith(MACROS):
            continue
        parts = relative.removesuffix(SUFFIX).split("/")
        artifacts.extend(_expand(env, relative, parts, (), {}, context))
    return sorted(artifacts, key=lambda a: a.path)


def _expand(
    env: jinja2.Environment,
    template: str,
    parts: list[str],
    done: tuple[str, ...],
    extra: dict[str, Any],
    context: dict[str, Any],
) -> Iterator[Artifact]:
    if not parts:
        yield Artifact(template, str(PurePosixPath(*done)), tuple(extra.items()))
        return
    for rendered, added in _render_part(env, parts[0], {**context, **extra}):
        if rendered:
            yield from _expand(
                env, template, parts[1:], (*done, rendered), {**extra, **added}, context
            )


def render(
    env: jinja2.Environment, artifacts: list[Artifact], context: dict[str, Any]
) -> list[Rendered]:
    """Render each planned artifact's template with the model and its yielded variables."""
    out = []
    for artifact in artifacts:
        source = TEMPLATE_DIR / artifact.template
        if artifact.template.endswith(SUFFIX):
            content = env.get_template(f"template/{artifact.template}").render(
                {**context, **dict(artifact.extra)}
            )
        else:
            content = source.read_text(encoding="utf-8")
        out.append(
            Rendered(
                artifact.path,
                artifact.template,
                content,
                executable=bool(source.stat().st_mode & 0o111),
            )
        )
    return out
