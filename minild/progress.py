"""progress: what a long link is doing, on a terminal (rich).

A link that is still running after about a second (MINILD_PROGRESS_AFTER,
seconds) shows a spinner, the phase it is in (minild.bench's phases: read,
resolve, asmb, ...), how many objects it links and the time so far, on
stderr; the line is erased when the link ends. Nothing is shown when stderr
is not a terminal (piped, redirected, CI) or with -q. The display runs in a
thread of the parent; forked workers never touch it.
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
    """Progress is a Bench listener (bench.listener) that draws after a delay."""

    def __init__(self, what: str, after: float | None = None):
        if after is None:
            try:
                after = float(os.environ.get("MINILD_PROGRESS_AFTER", DEFAULT_AFTER))
            except ValueError:
                after = DEFAULT_AFTER
        self.what, self.phase = what, "starting"
        self.lock = threading.Lock()
        self.bar = self.task = None
        self.done = False
        self.timer = threading.Timer(after, self._show)
        self.timer.daemon = True
        self.timer.start()

    def _show(self) -> None:
        with self.lock:
            if self.done:
                return
            from rich.console import Console
            from rich.progress import Progress as Bar, SpinnerColumn, TextColumn, TimeElapsedColumn
            self.bar = Bar(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                           console=Console(stderr=True), transient=True)
            self.task = self.bar.add_task(self._text(), total=None)
            self.bar.start()

    def _text(self) -> str:
        return f"minild: {self.what}: {WORDS.get(self.phase, self.phase)}"

    def __call__(self, phase: str, starting: bool) -> None:
        """the Bench listener: a phase starts or ends."""
        if starting:
            self.phase = phase
            with self.lock:
                if self.bar is not None:
                    self.bar.update(self.task, description=self._text())

    def stop(self) -> None:
        """stop erases the display (and keeps it from ever showing)."""
        self.timer.cancel()
        with self.lock:
            self.done = True
            if self.bar is not None:
                self.bar.stop()
                self.bar = None
