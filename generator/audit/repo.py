"""The repository under audit: its files, read once through the safe reader, and searched."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from generator.repofs import NOT_SOURCE, RepoReader

# Besides what never holds a repository's own files, build output is not its own either.
PRUNED = NOT_SOURCE | {"dist", "build"}
# A repository larger than this many files is audited on its first files (by name order),
# and the report says so: an audit must stay fast on any tree.
MAX_FILES = 20_000
CODE_SUFFIXES = (
    *(".py", ".js", ".mjs", ".cjs", ".ts", ".tsx", ".jsx"),
    *(".go", ".java", ".kt", ".cs", ".rb", ".php", ".rs", ".ex", ".scala"),
)


@dataclass
class Document:
    """One YAML document of a file, with the line each key of it starts on."""

    file: str
    data: Any
    start: int  # line of the document's first node


@dataclass
class Repo:
    """The audited tree: paths relative to the root, text on demand, YAML parsed once."""

    root: Path
    reader: RepoReader
    files: list[str]
    truncated: bool = False
    _text: dict[str, str | None] = field(default_factory=dict)
    _yaml: dict[str, list[Document]] = field(default_factory=dict)
    # What the checks derive from the whole tree once per run (the Kubernetes objects).
    memo: dict[str, Any] = field(default_factory=dict)
    _file_set: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        self._file_set = frozenset(self.files)

    @classmethod
    def open(cls, root: Path) -> Repo:
        reader = RepoReader(root)
        files: list[str] = []
        truncated = False
        for path in reader.walk(prune=PRUNED):
            if len(files) >= MAX_FILES:
                truncated = True
                break
            files.append(path.relative_to(reader.root).as_posix())
        return cls(reader.root, reader, files, truncated)

    def text(self, rel: str) -> str | None:
        """The file's text, or None when it is absent, refused or not text."""
        if rel not in self._text:
            self._text[rel] = self.reader.read_text(self.root / rel)
        return self._text[rel]

    def lines(self, rel: str) -> list[str]:
        text = self.text(rel)
        return text.splitlines() if text is not None else []

    def exists(self, rel: str) -> bool:
        return rel in self._file_set

    def glob(self, *patterns: str) -> list[str]:
        """Files whose relative path matches one of the patterns (fnmatch, `*` crosses `/`)."""
        return [f for f in self.files if any(fnmatch.fnmatchcase(f, p) for p in patterns)]

    def named(self, *names: str) -> list[str]:
        """Files whose base name matches one of the patterns, anywhere in the tree."""
        return [
            f
            for f in self.files
            if any(fnmatch.fnmatchcase(f.rsplit("/", 1)[-1], n) for n in names)
        ]

    def yaml_documents(self, rel: str) -> list[Document]:
        """Every non-empty YAML document of the file (none when it does not parse)."""
        if rel in self._yaml:
            return self._yaml[rel]
        documents: list[Document] = []
        text = self.text(rel)
        if text is not None:
            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
            try:
                while loader.check_node():
                    node = loader.get_node()
                    if node is None:
                        break
                    data = loader.construct_document(node)
                    if data is not None:
                        documents.append(Document(rel, data, node.start_mark.line + 1))
            except (yaml.YAMLError, RecursionError, ValueError, TypeError):
                documents = []
            finally:
                loader.dispose()
        self._yaml[rel] = documents
        return documents

    def line_of(self, rel: str, pattern: str, start: int = 1) -> int | None:
        """The first line at or after `start` matching the regular expression, or None."""
        regex = re.compile(pattern)
        for number, line in enumerate(self.lines(rel), 1):
            if number >= start and regex.search(line):
                return number
        return None

    def code_files(self) -> list[str]:
        return [
            f
            for f in self.files
            if f.endswith(CODE_SUFFIXES)
            and not re.search(r"(^|/)(tests?|__tests__)/", f)
            # Tool configuration (ecosystem.config.js, next.config.mjs) is not application code.
            and not re.search(r"\.config\.[cm]?[jt]s$", f)
        ]

    def search(self, files: list[str], pattern: str) -> tuple[str, int, str] | None:
        """The first (file, line, text) among files whose line matches the expression."""
        regex = re.compile(pattern)
        for rel in files:
            for number, line in enumerate(self.lines(rel), 1):
                if regex.search(line):
                    return rel, number, line.strip()
        return None
