"""bench: per-phase wall time, CPU time and memory of a link (--bench).

Like Go's `-benchmark`: each phase of link() runs under Bench.phase, which
records how long it took, how many pages the process touched for the first
time (minor faults: on a VM a fresh page can cost more than the work done in
it), and the process's resident and peak memory after it.
"""

from __future__ import annotations

import os
import resource
import time
from contextlib import contextmanager

import msgspec


class Row(msgspec.Struct):
    phase: str
    wall: float     # seconds
    cpu: float      # seconds of this process and its (finished) forked workers
    rss: int        # bytes resident after the phase
    peak: int       # bytes, peak resident so far
    faults: int = 0      # minor page faults of this process (not its workers)
    start: float = 0.0   # perf_counter at the start
    depth: int = 0       # 1 for a part of a phase (loadlib's read, resolve), ...


def rss_now() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def cpu_time() -> float:
    """cpu_time is user + system time of this process and its reaped children
    (the forked workers of minild.workers)."""
    t = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        u = resource.getrusage(who)
        t += u.ru_utime + u.ru_stime
    return t


def faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def rss_peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


LISTENER = None


class Tally:
    """Tally counts the items of one phase done so far (objects read, blocks
    written) for the progress display: one byte per item in an anonymous
    shared mapping, set when the item is done. Forked workers (minild.workers)
    inherit the mapping, so what they do counts too, and an item done twice
    (a share redone by the parent) counts once. It costs one byte store per
    object or block, and exists only while a display listens (Bench.tally)."""

    def __init__(self, noun: str, n: int):
        import mmap
        self.noun, self.n = noun, n
        self.flags = mmap.mmap(-1, max(n, 1))   # MAP_SHARED | MAP_ANONYMOUS

    def done(self, i: int) -> None:
        self.flags[i] = 1

    def count(self) -> int:
        return self.flags[:self.n].count(1)


class Bench:
    """Bench times the phases of one link."""

    def __init__(self):
        self.rows: list[Row] = []
        self.start = time.perf_counter()
        self.cpu_start = cpu_time()
        self.faults_start = faults()
        self.depth = 0
        # Called with (phase, True) as a phase starts and (phase, False) at its
        # end: the CLI's progress display (minild.progress) sets LISTENER.
        self.listener = LISTENER

    @contextmanager
    def phase(self, name: str):
        """phase times the block under name; a phase inside another is a part
        of it (its row comes after the outer one's and is indented)."""
        if self.listener is not None:
            self.listener(name, True)
        t0, c0, f0 = time.perf_counter(), cpu_time(), faults()
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
            self.rows.append(Row(name, time.perf_counter() - t0, cpu_time() - c0,
                                 rss_now(), rss_peak(), faults() - f0, t0, self.depth))
            if self.listener is not None:
                self.listener(name, False)

    def tally(self, noun: str, n: int) -> Tally | None:
        """tally is a count of the n items ("objects read", "blocks written")
        of the phase at hand, shown by the listener; None when no listener
        counts (piped, -q, the Python API): the callers then count nothing."""
        counting = getattr(self.listener, "counting", None)
        if counting is None:
            return None
        t = Tally(noun, n)
        counting(t)
        return t

    def ordered(self) -> list[Row]:
        """ordered returns the rows in the order the phases started."""
        return sorted(self.rows, key=lambda r: r.start)

    def total(self) -> Row:
        return Row("total", time.perf_counter() - self.start,
                   cpu_time() - self.cpu_start, rss_now(), rss_peak(),
                   faults() - self.faults_start)
