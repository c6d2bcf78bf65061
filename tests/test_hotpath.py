"""The hot-path guard: linking does no Python-level work per relocation.

Not a timed test (timings on a shared 2-core machine are noise): it counts the
Python events (function calls and executed lines, the tracer's 'call' and
'line') in minild's own modules while linking a generated program, then links
the same program with ten times the relocations (each function sits ten times
more often in its object's pointer table: same symbols, same sections) and
asserts that the count stayed nearly flat and far below the number of
relocations. A loop over relocations, a per-relocation helper call or a
comprehension over relocation rows would add one or more events per
relocation and fail here, whatever it costs in time. The larger output is run
(natively: amd64) and must print the checksum the generator computed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import minild
from minild.link import Options, link

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import gen_compact  # noqa: E402
from program import build  # noqa: E402

MINILD_DIR = os.path.dirname(os.path.abspath(minild.__file__)) + os.sep
FUNCS, OBJECTS = 500, 5


def traced_link(objs: list[str], output: str) -> int:
    """traced_link links in-process and returns the 'call' and 'line' events
    that happened in minild's modules (in every thread the link starts)."""
    count = [0]
    mine: dict = {}

    def tracer(frame, event, arg):
        code = frame.f_code
        ok = mine.get(code)
        if ok is None:
            ok = mine[code] = code.co_filename.startswith(MINILD_DIR)
        if not ok:
            return None  # no line events inside other libraries' frames
        count[0] += 1
        return local

    def local(frame, event, arg):
        if event == "line":
            count[0] += 1
        return local

    threading.settrace(tracer)
    sys.settrace(tracer)
    try:
        link(Options(objects=objs, output=output))
    finally:
        sys.settrace(None)
        threading.settrace(None)
    return count[0]


def generate(tmp: Path, table_reps: int) -> tuple[list[str], dict]:
    m = gen_compact.write(build(FUNCS, OBJECTS, seed=7, table_reps=table_reps), str(tmp), 7)
    return [str(tmp / n) for n in m["inputs"]], m


@pytest.fixture(scope="module")
def counts(tmp_path_factory):
    out = {}
    for reps in (1, 91):  # 10 relocations per function, then 100
        d = tmp_path_factory.mktemp(f"reps{reps}")
        objs, m = generate(d, reps)
        exe = d / "a.out"
        link(Options(objects=objs, output=str(exe)))  # warm: imports, arch registry
        out[reps] = (traced_link(objs, str(exe)), m, exe)
    return out


def test_relocations_grow_tenfold(counts):
    (_, small, _), (_, big, _) = counts[1], counts[91]
    assert big["relocations"] >= 9.5 * small["relocations"] > 45_000


def test_python_work_does_not_grow_with_relocations(counts):
    (n_small, small, _), (n_big, big, _) = counts[1], counts[91]
    more = big["relocations"] - small["relocations"]
    assert n_big < 1.5 * n_small and n_big - n_small < more / 100, (
        f"Python events in minild grew from {n_small} ({small['relocations']} relocations) to "
        f"{n_big} ({big['relocations']} relocations): some Python-level work is done per "
        "relocation")
    # What is left is per function symbol and per section (about 10 events per
    # function here), not per relocation.
    assert n_big < big["relocations"] / 5, (n_big, big["relocations"])


def test_large_output_runs(counts):
    _, m, exe = counts[91]
    p = subprocess.run([str(exe)], capture_output=True, timeout=60)
    assert (p.stdout.decode(), p.returncode) == (m["stdout"], m["status"])
