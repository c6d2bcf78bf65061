"""errors: located diagnostics, collected across a phase and raised together.

Every phase of the pipeline reports bad input through a Diagnostics collector
instead of raising on the first problem, so that one run of the linker shows all
of a link's errors (capped, like lld's --error-limit, with a count of the rest).
The CLI renders them; nothing below it prints.
"""

from __future__ import annotations

import msgspec


ERROR_LIMIT = 20


class Diag(msgspec.Struct):
    """One error: a headline and the '>>> ' lines that locate it (lld's shape)."""

    message: str
    notes: list[str] = msgspec.field(default_factory=list)

    def render(self) -> str:
        return "\n".join([self.message] + [">>> " + n for n in self.notes])


class LinkError(Exception):
    """A link failed for reasons of its input or environment; exit status 1."""

    def __init__(self, diags: list[Diag], suppressed: int = 0):
        self.diags = diags
        self.suppressed = suppressed
        super().__init__("\n".join(d.render() for d in diags))

    def __reduce__(self):
        # Forked readers pickle errors back to the parent (loader.read_objects).
        return (LinkError, (self.diags, self.suppressed))


class UsageError(LinkError):
    """UsageError: the command line asks for what cannot be (exit status 2),
    such as an output format that the objects' arch has no part for."""

    def __reduce__(self):
        return (UsageError, (self.diags, self.suppressed))


class InternalError(Exception):
    """A bug or a broken invariant inside minild (never the user's input)."""


class Diagnostics:
    """Diagnostics collects errors up to a limit and counts the rest."""

    def __init__(self, limit: int = ERROR_LIMIT):
        self.limit = limit
        self.diags: list[Diag] = []
        self.suppressed = 0

    def error(self, message: str, *notes: str) -> None:
        if len(self.diags) < self.limit:
            self.diags.append(Diag(message, list(notes)))
        else:
            self.suppressed += 1

    def __bool__(self) -> bool:
        return bool(self.diags)

    def check(self) -> None:
        """check raises the collected errors, if any, as one LinkError."""
        if self.diags:
            raise LinkError(self.diags, self.suppressed)


def fail(message: str, *notes: str) -> LinkError:
    """fail builds a LinkError holding one diagnostic (for `raise fail(...)`)."""
    return LinkError([Diag(message, list(notes))])


def usage(message: str, *notes: str) -> UsageError:
    """usage builds a UsageError holding one diagnostic (for `raise usage(...)`)."""
    return UsageError([Diag(message, list(notes))])
