"""ab: minild against minild, two installs alternating on the same objects.

    python benchmarks/ab.py OLD_MINILD NEW_MINILD --size medium --pairs 41

OLD_MINILD and NEW_MINILD are `minild` executables (e.g. each checkout's
benchmarks/out/venv/bin/minild, which run.py installs); the objects are those
run.py generated (/tmp/minild-bench/SIZE/*.obj, or --work). Each pair runs one
link of each, the order swapped every pair; the outputs must be identical.
Prints the median per-pair ratio new/old and each side's median wall time, and
the same for peak RSS (GNU time's %M): the check that a change lost no speed
and no memory, with the machine's state paired away.
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

    def link(exe: str, name: str) -> tuple[float, int]:
        """link runs one link under GNU time: wall seconds, peak RSS in KiB
        (time's %M, as run.py measures it; the fork and exec of time(1) is
        the same for both sides)."""
        t = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-f", "%M", exe, "link", *objs, "-o",
                            str(out / name)], check=True, capture_output=True, text=True)
        return time.perf_counter() - t, int(p.stderr.strip().splitlines()[-1])

    link(a.old, "old"), link(a.new, "new")            # warm-up
    ratios, peaks, old, new, old_peak, new_peak = [], [], [], [], [], []
    for i in range(a.pairs):
        if i % 2:
            (n, nm), (o, om) = link(a.new, "new"), link(a.old, "old")
        else:
            (o, om), (n, nm) = link(a.old, "old"), link(a.new, "new")
        if not filecmp.cmp(out / "old", out / "new", shallow=False):
            raise SystemExit("ab: the two outputs differ")
        ratios.append(n / o), old.append(o), new.append(n)
        peaks.append(nm / om), old_peak.append(om), new_peak.append(nm)
    print(f"{work.name}: new/old {statistics.median(ratios):.3f} (min {min(ratios):.3f}, max "
          f"{max(ratios):.3f}, n={a.pairs}); new {statistics.median(new) * 1e3:.0f} ms, old "
          f"{statistics.median(old) * 1e3:.0f} ms; peak new/old {statistics.median(peaks):.3f}, "
          f"new {statistics.median(new_peak) / 1024:.0f} MiB, old "
          f"{statistics.median(old_peak) / 1024:.0f} MiB; outputs identical")


if __name__ == "__main__":
    main()
