"""stability: how much each phase of one link moves from run to run, and why.

    python benchmarks/stability.py /tmp/minild-bench/medium-uneven --runs 20 [-j1]

Runs `minild link --bench` on one directory's objects (*.obj, as run.py
leaves them) --runs times and prints, per phase, the spread (min, median,
max) of wall time, of the process's CPU time and of its minor page faults,
with the machine's steal time (the hypervisor running someone else) over the
same run. A phase whose wall time moves while its CPU time and faults stay
put waited for the CPU: the machine, not minild. A phase whose CPU time moves
with its faults pays for fresh pages (the heap). A phase whose wall moves
with the fork (-j2 against -j1) waits for its children. The figures go in
docs/performance.md ("Time per phase").
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from run import minild_cmd, parse_bench  # noqa: E402


def steal_ticks() -> int:
    """steal_ticks: the machine's steal time so far (USER_HZ ticks, all CPUs)."""
    with open("/proc/stat") as f:
        cpu = f.readline().split()
    return int(cpu[8]) if len(cpu) > 8 else 0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("objects", type=Path, help="a directory of minild objects (*.obj)")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("-j", "--jobs", type=int, help="minild's -j (default: its own)")
    ap.add_argument("-o", "--output", default="/dev/shm/minild-stability.out")
    a = ap.parse_args(argv)
    objs = sorted(glob.glob(str(a.objects / "*.obj")))
    if not objs:
        sys.exit(f"stability.py: no *.obj in {a.objects}")
    cmd = [*minild_cmd(), "link", *objs, "-o", a.output, "--bench",
           *([f"-j{a.jobs}"] if a.jobs else [])]
    per: dict[str, list[dict]] = {}
    steal = []
    subprocess.run(cmd, capture_output=True, check=True)   # warm the page cache
    for _ in range(a.runs):
        s0 = steal_ticks()
        p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ,
                                                                     "COLUMNS": "120"})
        steal.append(steal_ticks() - s0)
        if p.returncode:
            sys.exit(f"stability.py: minild failed:\n{p.stderr[-2000:]}")
        for r in parse_bench(p.stderr):
            per.setdefault(r["phase"], []).append(r)
    print(f"{len(objs)} objects, {a.runs} runs, -j{a.jobs or 'default'}; steal per run "
          f"(ticks of 10 ms, all CPUs): min {min(steal)}, median {statistics.median(steal)}, "
          f"max {max(steal)}")
    print(f"{'phase':12} {'wall min/med/max ms':>22} {'cpu min/med/max ms':>22} "
          f"{'faults min/med/max':>22}  wall-cpu corr")
    for ph, rs in per.items():
        w = [r["wall_ms"] for r in rs]
        c = [r["cpu_ms"] for r in rs]
        f = [r["faults"] for r in rs]
        gap = [x - y for x, y in zip(w, c)]
        corr = statistics.correlation(gap, steal) if len(set(gap)) > 1 and len(set(steal)) > 1 \
            else float("nan")
        print(f"{'  ' * rs[0]['depth'] + ph:12} "
              f"{min(w):6.1f} {statistics.median(w):6.1f} {max(w):7.1f}  "
              f"{min(c):6.1f} {statistics.median(c):6.1f} {max(c):7.1f}  "
              f"{min(f):6.0f} {statistics.median(f):6.0f} {max(f):7.0f}  "
              f"{corr:+.2f}")


if __name__ == "__main__":
    main()
