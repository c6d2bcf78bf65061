"""workers: run shares of a link's work in forked children.

CPython threads take turns on the GIL, so the parallel parts of a link (reading
objects in loadlib, block writing in asmb) run in forked children instead: a
child inherits the whole link context for free (copy-on-write), does its share,
and leaves its results where the parent sees them: in an anonymous shared
mapping (loader.read_objects) or in the shared mapping of the output file
(asmb). A child that fails, or whose share needs more than writing (a region
too small, a relocation error to report), exits non-zero and the parent redoes
that share itself; the work is deterministic, so redoing it gives the same
objects and bytes. Where fork() does not exist, everything runs in the parent.
"""

from __future__ import annotations

import os
from typing import Callable

# -j: forked workers for reading objects and writing blocks; -jN is
# byte-identical to -j1, and faster on the large benchmark
# (docs/performance.md), so the default is parallel.
DEFAULT_JOBS = min(os.cpu_count() or 1, 4)
# MINILD_FORK_LOG=FILE: each forked child appends "MODULE LO HI STATUS" to FILE
# when its share ends, so that a test can see that a link forked (docs/testing.md).
FORK_LOG = os.environ.get("MINILD_FORK_LOG")


def shares(n: int, parts: int) -> list[tuple[int, int]]:
    """shares cuts range(n) into `parts` contiguous (lo, hi) ranges."""
    return [(n * k // parts, n * (k + 1) // parts) for k in range(parts)]


def weighted_shares(weights: list[int], parts: int, first: float = 1.0) -> list[tuple[int, int]]:
    """weighted_shares cuts range(len(weights)) into `parts` contiguous ranges
    of about equal total weight, the first `first` times the others' (some
    may be empty)."""
    total = sum(weights) or 1
    scale = first + parts - 1
    cuts, acc, k = [0], 0, 1
    for i, w in enumerate(weights):
        acc += w
        while k < parts and acc * scale >= total * (first + k - 1):
            cuts.append(i + 1)
            k += 1
    cuts += [len(weights)] * (parts + 1 - len(cuts))
    return list(zip(cuts[:-1], cuts[1:]))


def fork_map(n: int, jobs: int, run: Callable[[int, int], bool],
             cuts: list[tuple[int, int]] | None = None) -> list[tuple[int, int]]:
    """fork_map runs run(lo, hi) over shares of range(n) (`cuts`, else equal
    ones for up to `jobs` workers): the first share here, the others in forked
    children. run returns True when its share is done. fork_map returns the
    shares still to do (the caller redoes them): a child's share whose run
    returned False or raised, or the parent's own share if its run returned
    False. Without fork(), the parent runs every share."""
    if cuts is None:
        cuts = shares(n, max(1, min(jobs, n)))
    if TRACE_PATH is not None:
        run = _traced(run)
    if not hasattr(os, "fork"):
        return [c for c in cuts if not run(*c)]
    children = []
    for lo, hi in cuts[1:]:
        pid = os.fork()
        if pid == 0:  # the child: its share, then leave without any cleanup
            code = 1
            try:
                code = 0 if run(lo, hi) else 2
            finally:
                if FORK_LOG:
                    _log(f"{run.__module__} {lo} {hi} {code}\n")
                os._exit(code)
        children.append((pid, (lo, hi)))
    try:
        redo = [] if run(*cuts[0]) else [cuts[0]]
    finally:
        # Wait for every child even when the parent's share failed: no child may
        # go on writing into a file the parent is about to remove.
        status = [(os.waitpid(pid, 0)[1], share) for pid, share in children]
    return redo + [share for code, share in status if code != 0]


# --trace: the file (set by the CLI) that each share's start and end are
# appended to, one JSON line per share, by whichever process ran it (forked
# children share CLOCK_MONOTONIC, time.perf_counter's clock, with the parent).
TRACE_PATH: str | None = None


def _traced(run: Callable[[int, int], bool]) -> Callable[[int, int], bool]:
    def traced(lo: int, hi: int) -> bool:
        import json
        import time
        t0 = time.perf_counter()
        ok = False
        try:
            ok = run(lo, hi)
            return ok
        finally:
            line = json.dumps({"name": run.__module__.rpartition(".")[2], "lo": lo, "hi": hi,
                               "start": t0, "end": time.perf_counter(), "pid": os.getpid(),
                               "ok": bool(ok)})
            fd = os.open(TRACE_PATH, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, (line + "\n").encode())
            finally:
                os.close(fd)
    traced.__module__ = run.__module__
    return traced


def _log(line: str) -> None:
    fd = os.open(FORK_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
