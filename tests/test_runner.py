"""The benchmark runner works on a fresh machine: a sweep over two shapes, and a user's own objects.

benchmarks/run.py is how minild's speed is measured against GNU ld, gold,
lld and mold (docs/performance.md). These tests run it for real at the tiny
size, with one round and one pair: every linker links, every output is run
and must print the generator's checksum (or, for --objects --run, behave as
ld.bfd's), minild's -j1/-j2/--no-mmap outputs must be identical, and the
result file must hold a row per program with paired ratios. They time
nothing: the figures of a tiny run on a shared CI machine mean nothing; they
check that the runner still measures what it says.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN = [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--runs", "1", "--pairs", "1",
       "--installed-here"]


def run(*args, cwd=None) -> subprocess.CompletedProcess:
    p = subprocess.run([*RUN, *map(str, args)], capture_output=True, text=True, cwd=cwd)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return p


def test_sweep_two_shapes(tmp_path):
    out = tmp_path / "sweep.json"
    p = run("--sweep", "--shapes", "base,fsections", "--sizes", "tiny", "--root", tmp_path,
            "--outputs", tmp_path / "out", "--json", out)
    rows = json.loads(out.read_text())["rows"]
    assert [(r["shape"], r["size"]) for r in rows] == [("base", "tiny"), ("fsections", "tiny")]
    for r in rows:
        assert r["relocations"] > 2000 and r["symbols"] > 200
        assert r["minild / ld.lld"] > 0 and r["minild / ld.bfd"] > 0 and r["peak_vs_lld"] > 0
        assert {"read", "resolve", "asmb", "total"} <= set(r["phases"])
    # fsections: a section per function and per constant, far more than base's
    assert rows[1]["sections"] > 4 * rows[0]["sections"]
    assert "| shape | size | relocs |" in p.stdout   # the Markdown table for the docs


def test_objects_directory(tmp_path):
    """--objects DIR --entry SYM --run: a directory of .o files (here the tiny
    program, assembled) imported once and linked by every linker; every
    output behaves as ld.bfd's."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import gen
    from program import build

    from conftest import binutil
    src = tmp_path / "src"
    m = gen.write(build(200, 4, seed=9), str(src), 9)
    objs = tmp_path / "objs"
    objs.mkdir()
    for s in m["sources"]:
        subprocess.run([binutil("amd64", "as"), "-o", objs / (s[:-2] + ".o"), src / s],
                       check=True)
    out = tmp_path / "user.json"
    run("--objects", objs, "--entry", "_start", "--run", "--work", tmp_path / "work",
        "--outputs", tmp_path / "out", "--json", out)
    res = json.loads(out.read_text())
    assert res["ran"] == {"stdout_bytes": len(m["stdout"]), "status": m["status"]}
    assert res["inputs"]["objects"] == len(m["sources"]) and res["variants_identical"]
    assert set(res["linkers"]) == {"ld.bfd", "ld.gold", "ld.lld", "mold", "minild"}
    assert set(res["paired"]) == {"minild / ld.lld", "minild / ld.bfd"}
