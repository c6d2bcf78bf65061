"""ab: minild against minild, two installs alternating on the same objects.

    python benchmarks/ab.py OLD_MINILD NEW_MINILD --size medium --pairs 41

OLD_MINILD and NEW_MINILD are `minild` executables (e.g. each checkout's
benchmarks/out/venv/bin/minild, which run.py installs); the objects are those
run.py generated (/tmp/minild-bench/SIZE/*.obj, or --work). Each pair runs one
link of each, the order swapped every pair; the outputs must be identical.
Prints the median per-pair ratio new/old and each side's median wall time: the
check that a change lost no speed, with the machine's state paired away.
"""

from __future__ import annotations

import argparse
import filecmp
import glob
import statistics
import subprocess
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--size", default="medium")
    ap.add_argument("--pairs", type=int, default=21)
    ap.add_argument("--work", type=Path)
    a = ap.parse_args()
    work = a.work or Path("/tmp/minild-bench") / a.size
    objs = sorted(glob.glob(str(work / "*.obj")))
    if not objs:
        raise SystemExit(f"ab: no objects in {work}: run benchmarks/run.py --size {a.size} first")
    out = Path(tempfile.mkdtemp(prefix="minild-ab-"))

    def link(exe: str, name: str) -> float:
        t = time.perf_counter()
        subprocess.run([exe, "link", *objs, "-o", str(out / name)], check=True)
        return time.perf_counter() - t

    link(a.old, "old"), link(a.new, "new")            # warm-up
    if not filecmp.cmp(out / "old", out / "new", shallow=False):
        raise SystemExit("ab: the two outputs differ")
    ratios, old, new = [], [], []
    for i in range(a.pairs):
        if i % 2:
            n, o = link(a.new, "new"), link(a.old, "old")
        else:
            o, n = link(a.old, "old"), link(a.new, "new")
        ratios.append(n / o), old.append(o), new.append(n)
    print(f"{a.size}: new/old {statistics.median(ratios):.3f} (min {min(ratios):.3f}, max "
          f"{max(ratios):.3f}, n={a.pairs}); new {statistics.median(new) * 1e3:.0f} ms, old "
          f"{statistics.median(old) * 1e3:.0f} ms; outputs identical")


if __name__ == "__main__":
    main()
