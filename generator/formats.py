"""Quoting per output format, so a descriptor value lands as the very string the user wrote.

A value such as `on`, `0755`, `${{ x }}`, `{{ x }}`, `$(cmd)` or a newline must never change
meaning or become code in YAML, shell, HCL, JavaScript, .env or CI files. The filters are
registered by `ShipforgeExtension`, which both shipforge's renderer and copier load.
"""

from __future__ import annotations

import html
import json
import re
import shlex
from typing import Any

from jinja2.ext import Extension

# Characters YAML 1.1 and Jinja's line-based filters treat as line breaks.
_LINE_BREAKS = {"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _escape_line_breaks(text: str) -> str:
    for char, escape in _LINE_BREAKS.items():
        text = text.replace(char, escape)
    return text


def yaml_str(value: Any) -> str:
    """A YAML double-quoted scalar (JSON string syntax is valid YAML)."""
    return _escape_line_breaks(json.dumps(str(value), ensure_ascii=False))


_STR_TAG = "tag:yaml.org,2002:str"
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
# YAML 1.1 booleans PyYAML's resolver misses (y, n) but other readers and yamllint do not.
_YAML11_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}


def yaml_key(value: Any) -> str:
    """A mapping key: plain when every YAML reader sees text, else quoted (`on`, `no`, `1e3`)."""
    import yaml

    text = str(value)
    if text.lower() in _YAML11_WORDS:
        return yaml_str(text)
    resolver = yaml.resolver.Resolver()
    tag = resolver.resolve(yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    if _PLAIN.match(text) and tag == _STR_TAG:
        return text
    return yaml_str(text)


def compose_str(value: Any) -> str:
    """A YAML string for a compose file, where `$` starts an interpolation unless doubled."""
    return yaml_str(str(value).replace("$", "$$"))


def kube_str(value: Any) -> str:
    """A YAML string for a Kubernetes command, args or env value, where `$(VAR)` expands."""
    return yaml_str(str(value).replace("$", "$$"))


def gha_str(value: Any) -> str:
    """A YAML string for a GitHub workflow, where `${{` opens an expression even in quotes."""
    return yaml_str(str(value).replace("${{", "${{ '${{' }}"))


def gitlab_str(value: Any) -> str:
    """A YAML string for a GitLab CI variable, where `$` expands unless doubled."""
    return yaml_str(str(value).replace("$", "$$"))


def sh(value: Any) -> str:
    """A single POSIX shell word."""
    return shlex.quote(str(value))


def js_str(value: Any) -> str:
    """A JavaScript string literal (ASCII-only so U+2028 cannot end a line)."""
    return json.dumps(str(value), ensure_ascii=True)


_HCL_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def hcl_str(value: Any) -> str:
    """An HCL quoted string, with `${` and `%{` escaped so no template is evaluated."""
    out = []
    for char in str(value):
        if char in _HCL_ESCAPES:
            out.append(_HCL_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F or char in _LINE_BREAKS:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    text = "".join(out).replace("${", "$${").replace("%{", "%%{")
    return f'"{text}"'


_DOTENV_BARE = re.compile(r"^[A-Za-z0-9_./:@+,=-]*$")


def dotenv(value: Any) -> str:
    """A .env value: bare when plain, single-quoted when it holds `$`, else double-quoted.

    Compose expands `$` inside double quotes (unless escaped as `\\$`) but reads single-quoted
    values literally, as python-dotenv does; both read the escapes of double-quoted values.
    dotenv-linter dislikes quotes (rule 301), but correctness wins on exactly such values.
    NEL and the Unicode line separators stay inside the double quotes: .env readers have no
    escape for them, and compose and python-dotenv end a line only at \\n (tests prove both).
    """
    text = str(value)
    if _DOTENV_BARE.match(text):
        return text
    if "$" in text and not any(c in text for c in "'\n\r\\"):
        return f"'{text}'"
    escaped = (
        text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    )
    # Compose reads \$ in double quotes as a literal dollar sign.
    return '"' + escaped.replace("$", "\\$") + '"'


def docker_arg(value: Any) -> str:
    """A Dockerfile ARG/ENV value: double-quoted, with `\\`, `"` and `$` escaped so no
    variable expands; a line break (which a Dockerfile line cannot hold) becomes `\\n`."""
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return '"' + text.replace("\r", "\\r").replace("\n", "\\n") + '"'


def to_json(value: Any) -> str:
    """Compact JSON on one line (Dockerfile exec form, YAML flow lists), without HTML escaping.

    NEL and the Unicode line separators are written as JSON escapes: a reader that splits
    lines on them (YAML 1.1, Python's splitlines) still sees one line and one argument.
    """
    if isinstance(value, tuple):
        value = list(value)
    return _escape_line_breaks(json.dumps(value, ensure_ascii=False))


def comment(value: Any) -> str:
    """Free text made safe for a one-line comment in any format."""
    return " ".join(str(value).split())


_MD_INLINE = re.compile(r"([\\`*_\[\]|~])")
# What opens a block at the start of a line: a heading, a list, a quote, a rule, a table row.
_MD_BLOCK_START = re.compile(r"^(\d{1,9}(?=[.)])|[#>+=\-|])")


def md_text(value: Any) -> str:
    """Descriptor text as one Markdown paragraph that stays text: no HTML, link, list or table.

    Whitespace is folded to one line, `&`, `<`, `>` and `"` become HTML entities (no raw HTML,
    no comment to close), inline markup characters are backslash-escaped, and so is a character
    that would start a block.
    """
    text = html.escape(comment(value), quote=True)
    text = _MD_INLINE.sub(r"\\\1", text)
    return _MD_BLOCK_START.sub(
        lambda m: m.group(1) + "\\" if m.group(1)[0].isdigit() else "\\" + m.group(1), text, count=1
    )


def md_code(value: Any, table: bool = False) -> str:
    """Descriptor text as one Markdown code span, shown exactly (whitespace folded).

    The fence is one backtick longer than the longest run of backticks in the value, so no
    backtick in it can close the span; nothing inside a span is HTML. In a table cell (`table`)
    `|` is escaped too, as GitHub's tables split cells on it even inside code.
    """
    text = comment(value)
    if table:
        text = text.replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    # A space on each side keeps a leading or trailing backtick from joining the fence; the
    # renderer strips one such space from each side.
    padded = f" {text} " if text.startswith("`") or text.endswith("`") else text
    return f"{fence}{padded}{fence}"


FILTERS = {
    "yaml_str": yaml_str,
    "yaml_key": yaml_key,
    "compose_str": compose_str,
    "kube_str": kube_str,
    "gha_str": gha_str,
    "gitlab_str": gitlab_str,
    "sh": sh,
    "js_str": js_str,
    "hcl_str": hcl_str,
    "dotenv": dotenv,
    "comment": comment,
    "json": to_json,
    "md_text": md_text,
    "md_code": md_code,
    "docker_arg": docker_arg,
}


class ShipforgeExtension(Extension):
    """Registers shipforge's filters and model builder in a Jinja environment (ours or copier's)."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        environment.filters.update(FILTERS)
        environment.globals["shipforge_model"] = shipforge_model
        # copier's typed questions (copier.yml): validators and derived blocks.
        from generator import quickstart

        environment.globals.update(
            name_problem=quickstart.name_problem,
            manager_problem=quickstart.manager_problem,
            default_command=quickstart.default_command,
            quickstart_blocks=quickstart.quickstart_blocks,
            descriptor_text=quickstart.descriptor_text,
        )


def shipforge_model(**answers: Any) -> str:
    """Copier's bridge: validate the answers as a descriptor and return the model as JSON."""
    from generator.loader import validate
    from generator.model import build_project
    from generator.targets import context

    descriptor = {key: value for key, value in answers.items() if value is not None}
    project = build_project(validate(descriptor, "copier answers"))
    return json.dumps(context(project)["model"])
