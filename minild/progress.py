"""progress: what a long link is doing, on a terminal (rich).

A link that is still running after about a second (MINILD_PROGRESS_AFTER,
seconds) shows a spinner, the phase it is in (minild.bench's phases: read,
resolve, asmb, ...) and the time so far on stderr; while objects are read and
blocks written it also shows the count ("3 of 5 objects read", "12 of 40
blocks written"; `minild import`: "2 of 7 objects converted"). The line
is erased when the link ends. Nothing is shown when stderr is not a terminal
(piped, redirected, CI) or with -q, and then nothing is counted either.

The display runs in a thread of the parent (rich's refresh, ten times a
second). The counts come from bench.Tally: the readers and block writers, in
the parent or in forked workers, set one byte per object or block in a shared
mapping; the display reads the mapping when it draws. Nothing is drawn per
object or per block, and the output never depends on the display.
"""

from __future__ import annotations

import os
import sys
import threading

DEFAULT_AFTER = 1.0

# What each of the link's phases (minild.bench's names) is doing, in words.
WORDS = {"loadlib": "loading objects", "read": "reading objects",
         "archives": "loading archive members",
         "columns": "joining the objects' tables", "resolve": "resolving symbols",
         "gensections": "making the format's sections", "dodata": "grouping sections",
         "address": "assigning addresses", "layout": "laying out the file",
         "mmap": "mapping the output", "asmb": "writing sections and applying relocations",
         "asmb2": "writing headers and symbol tables", "munmap": "closing the output",
         "extld": "running the external linker", "import": "converting"}


def wanted(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty() and os.environ.get("TERM") != "dumb"


class Progress:
    """Progress is a Bench listener (bench.listener) that draws after a delay
    (at once with a delay of 0), on console (for the tests; stderr by
    default)."""

    def __init__(self, what: str, after: float | None = None, console=None):
        if after is None:
            try:
                after = float(os.environ.get("MINILD_PROGRESS_AFTER", DEFAULT_AFTER))
            except ValueError:
                after = DEFAULT_AFTER
        self.what, self.phase = what, "starting"
        self.console = console
        self.lock = threading.Lock()
        self.bar = self.task = None
        self.tally = self.tally_phase = None
        self.done = False
        self.timer = None
        if after <= 0:
            self._show()
            return
        self.timer = threading.Timer(after, self._show)
        self.timer.daemon = True
        self.timer.start()

    def _show(self) -> None:
        with self.lock:
            if self.done:
                return
            from rich.console import Console
            from rich.progress import Progress as Bar, SpinnerColumn, TimeElapsedColumn
            self.bar = Bar(SpinnerColumn(), _Line(self), TimeElapsedColumn(),
                           console=self.console or Console(stderr=True), transient=True)
            self.task = self.bar.add_task(self._text(), total=None)
            self.bar.start()

    def _text(self) -> str:
        return f"minild: {self.what}: {WORDS.get(self.phase, self.phase)}"

    def _redraw(self) -> None:
        with self.lock:
            if self.bar is not None:
                self.bar.update(self.task, description=self._text())
                self.bar.refresh()

    def __call__(self, phase: str, starting: bool) -> None:
        """the Bench listener: a phase starts or ends. Each change is drawn at
        once (a few per link), the last count of a phase included."""
        if starting:
            self.phase = phase
        self._redraw()
        if not starting and phase == self.tally_phase:
            self.tally = self.tally_phase = None

    def counting(self, tally) -> None:
        """counting shows tally's count (bench.Tally) until the phase at hand ends."""
        self.tally, self.tally_phase = tally, self.phase
        self._redraw()

    def stop(self) -> None:
        """stop erases the display (and keeps it from ever showing)."""
        if self.timer is not None:
            self.timer.cancel()
        with self.lock:
            self.done = True
            if self.bar is not None:
                self.bar.stop()
                self.bar = None


def _Line(owner: Progress):
    """_Line is the display's rich column: the count while owner has a tally
    ("3 of 5 objects read", read from the tally when rich draws), then the
    link and its phase. One line, cut at its end (…) on a narrow terminal, so
    that the count stays in sight."""
    from rich.progress import ProgressColumn
    from rich.table import Column
    from rich.text import Text

    class Line(ProgressColumn):
        def render(self, task):
            t = owner.tally
            line = Text()
            if t is not None:
                line.append(f"{t.count()} of {t.n} {t.noun}", style="bold")
                line.append("  ")
            line.append(task.description)
            return line

    return Line(table_column=Column(no_wrap=True, overflow="ellipsis"))
