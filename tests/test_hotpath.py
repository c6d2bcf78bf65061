"""The hot-path guard: linking does no Python-level work per relocation.

Not a timed test (timings on a shared 2-core machine are noise): it counts the
Python events (function calls and executed lines, the tracer's 'call' and
'line') in minild's own modules while linking a generated program, then links
the same program with ten times the relocations (each function listed 91
times in its object's pointer table instead of once: same symbols, same
sections) and
asserts that the count stayed nearly flat and far below the number of
relocations. A loop over relocations, a per-relocation helper call or a
comprehension over relocation rows would add one or more events per
relocation and fail here, whatever it costs in time. The larger output is run
(natively: amd64) and must print the checksum the generator computed. A last
test keeps the benchmark's two generators (assembly and compact) in step.
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
        # -j1: every object and block is done in this process, where it is counted
        # (forked workers' events would not be).
        link(Options(objects=objs, output=output, jobs=1))
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


def test_python_work_does_not_grow_with_symbols(tmp_path):
    """Ten times the functions (symbols, names to resolve, relocations): names
    are hashed and looked up as columns (minild.names), so the count of
    Python events stays flat here too."""
    n = {}
    for funcs in (FUNCS, 10 * FUNCS):
        d = tmp_path / f"f{funcs}"
        d.mkdir()
        m = gen_compact.write(build(funcs, OBJECTS, seed=7, table_reps=1), str(d), 7)
        objs = [str(d / x) for x in m["inputs"]]
        link(Options(objects=objs, output=str(d / "a.out")))  # warm
        n[funcs] = traced_link(objs, str(d / "a.out"))
    assert n[10 * FUNCS] < 1.1 * n[FUNCS], n


def test_large_output_runs(counts):
    _, m, exe = counts[91]
    p = subprocess.run([str(exe)], capture_output=True, timeout=60)
    assert (p.stdout.decode(), p.returncode) == (m["stdout"], m["status"])


def test_generators_agree(tmp_path):
    """The benchmark's two generators describe one program: gen.py's assembly,
    assembled by GNU as and linked by GNU ld, prints the model's checksum, and
    gen_compact's objects carry the code as emitted (up to alignment padding)."""
    import gen
    from conftest import binutil
    from elftools.elf.elffile import ELFFile

    p = build(40, 4, seed=3, table_reps=2)
    m = gen.write(p, str(tmp_path), 3)
    objs = []
    for s in m["sources"]:
        o = tmp_path / (s[:-2] + ".o")
        subprocess.run([binutil("amd64", "as"), "-o", str(o), str(tmp_path / s)], check=True)
        objs.append(str(o))
    exe = tmp_path / "ld.out"
    subprocess.run([binutil("amd64", "ld"), "-static", "-nostdlib", "-e", "_start", "-o",
                    str(exe), *objs], check=True)
    r = subprocess.run([str(exe)], capture_output=True, timeout=30)
    assert (r.stdout.decode(), r.returncode) == (m["stdout"], m["status"])

    code, fsize = gen_compact.template(p.calls)
    compact = dict(gen_compact.objects(p))
    for k in range(p.objects):
        with open(tmp_path / f"o{k}.o", "rb") as f:
            text = ELFFile(f).get_section_by_name(".text").data()
        mine = compact[f"o{k}.obj"].sec_data[0]
        for i in range(p.per):
            a = i * len(code)
            assert text[a:a + fsize] == mine[a:a + fsize], (k, i)
    with open(tmp_path / "main.o", "rb") as f:
        assert ELFFile(f).get_section_by_name(".text").data() == compact["main.obj"].sec_data[0]
