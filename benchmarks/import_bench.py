"""import_bench: how fast `minild import` turns many large GNU as objects into
compact minild objects (the figures in docs/import.md).

    python benchmarks/import_bench.py [--objects 300] [--functions 1000]

Each object has 1,000 functions with 6 relocations each (calls across objects
and within, rip-relative data, absolute 32-bit addresses, a pointer table), a
mergeable string section, and code that runs every relocation (the test links
and runs it); the import runs once, in one process, after one warm-up, and the
wall and CPU time of that process are reported.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_import import assemble_bench  # noqa: E402  (the same generator the tests use)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", type=int, default=300)
    ap.add_argument("--functions", type=int, default=1000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        objs = assemble_bench(d / "o", args.objects, args.functions)
        size = sum(o.stat().st_size for o in objs)
        cmd = [sys.executable, "-m", "minild.cli", "import", *map(str, objs), "-o",
               str(d / "out"), "--compact"]
        subprocess.run(cmd, check=True)       # warm-up (page cache, .pyc)
        t0, r0 = time.perf_counter(), os.times()
        subprocess.run(cmd, check=True)
        wall, r1 = time.perf_counter() - t0, os.times()
        cpu = (r1.children_user - r0.children_user) + (r1.children_system - r0.children_system)
        # The last object has no _start (object 0 has a call to every object's code).
        nrel = int(subprocess.run(
            ["sh", "-c", f"readelf -r {objs[-1]} | grep -c R_X86_64"], capture_output=True,
            text=True).stdout) * len(objs)
        print(f"import: {len(objs)} objects, {size / 2**20:.1f} MiB of .o, ~{nrel} relocations: "
              f"{wall:.2f} s wall, {cpu:.2f} s cpu ({nrel / cpu / 1e6:.1f}M relocations/cpu-s)")


if __name__ == "__main__":
    main()
