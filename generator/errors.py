"""Issues (problems with a place) and the one error base the CLI turns into exit codes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Issue:
    """One problem, with where it is and what to do about it."""

    message: str
    file: str = ""
    line: int | None = None
    path: str = ""
    hint: str = ""

    def __str__(self) -> str:
        place = self.file
        if self.line is not None:
            place += f":{self.line}"
        parts = [place] if place else []
        if self.path:
            parts.append(self.path)
        text = ": ".join([*parts, self.message])
        return f"{text} ({self.hint})" if self.hint else text


class ShipforgeError(Exception):
    """A failure the user can act on. The exit code lives on the class."""

    exit_code = 1

    def __init__(self, summary: str, issues: tuple[Issue, ...] = ()) -> None:
        super().__init__(summary)
        self.summary = summary
        self.issues = issues


class InvalidDescriptor(ShipforgeError):
    """The descriptor is missing, unreadable, or breaks the contract."""


class RefusedOverwrite(ShipforgeError):
    """Writing would destroy a user's edit."""


class CheckFailed(ShipforgeError):
    """Our own output checks found a problem: a shipforge bug, reported with its place."""


class UsageError(ShipforgeError):
    """The command line itself is wrong."""

    exit_code = 2
