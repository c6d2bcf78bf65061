"""trace: --trace FILE, the link's phases and workers as Chrome trace JSON.

lld's --time-trace writes the same format: a {"traceEvents": [...]} object of
complete ("X") events with microsecond timestamps, which Perfetto
(ui.perfetto.dev) and chrome://tracing load. Each phase of minild.bench is an
event on the main process's track, nested as the phases nest; each share of
work a forked worker did (reading objects, writing blocks: minild.workers) is
an event on a track of its own, named after its process, and the parent's own
share is on the main track. --bench stays the quick table.
"""

from __future__ import annotations

import json
import os


def events(bench, worker_lines: list[str], pid: int) -> list[dict]:
    """events turns a Bench's rows and the workers' JSON lines into trace events."""
    t0 = bench.start
    us = lambda t: round((t - t0) * 1e6, 3)  # noqa: E731
    ev: list[dict] = [
        {"name": "process_name", "ph": "M", "pid": pid, "tid": pid, "args": {"name": "minild"}},
        {"name": "thread_name", "ph": "M", "pid": pid, "tid": pid, "args": {"name": "main"}}]
    for r in bench.ordered():
        ev.append({"name": r.phase, "cat": "phase", "ph": "X", "ts": us(r.start),
                   "dur": round(r.wall * 1e6, 3), "pid": pid, "tid": pid,
                   "args": {"cpu_ms": round(r.cpu * 1e3, 3), "rss_mib": round(r.rss / 2**20, 1),
                            "peak_mib": round(r.peak / 2**20, 1), "faults": r.faults}})
    named = set()
    for line in worker_lines:
        try:
            w = json.loads(line)
        except ValueError:
            continue
        tid = w["pid"]
        if tid != pid and tid not in named:
            named.add(tid)
            ev.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
                       "args": {"name": f"worker {tid}"}})
        ev.append({"name": f"{w['name']} [{w['lo']}, {w['hi']})", "cat": "worker", "ph": "X",
                   "ts": us(w["start"]), "dur": round((w["end"] - w["start"]) * 1e6, 3),
                   "pid": pid, "tid": tid,
                   "args": {"share": [w["lo"], w["hi"]], "done": w["ok"],
                            "forked": tid != pid}})
    return ev


def write_trace(path: str, bench, worker_file: str | None) -> None:
    """write_trace writes the trace of a finished link to path."""
    lines: list[str] = []
    if worker_file is not None:
        try:
            with open(worker_file) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            pass
    doc = {"traceEvents": events(bench, lines, os.getpid()), "displayTimeUnit": "ms",
           "otherData": {"generator": "minild"}}
    from .outfile import write_file
    write_file(path, (json.dumps(doc) + "\n").encode(), "trace file ")
