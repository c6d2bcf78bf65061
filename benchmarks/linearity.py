"""linearity: does minild's cost grow linearly with the input, on every shape?

    python benchmarks/linearity.py [--shapes a,b] [--sizes small,medium,large] [--runs 3]

For each program shape and size that `run.py --sweep` built (its objects in
/tmp/minild-bench/SIZE[-SHAPE]; run the sweep first), links in this process
with -j1 (no forks: one process's CPU is the whole cost) --runs times, the
sizes taking turns, and keeps each phase's least CPU time (the least disturbed run: on a shared
machine the noise only ever adds). Prints, per shape, link()'s CPU per input
relocation and per symbol at each size, and the ratio of the per-relocation
cost between consecutive sizes: 1.0 is linear, above 1 super-linear. Then the
same ratio per phase, largest pair of sizes, so a phase that grows faster than
its input shows by name. Writes benchmarks/out/linearity.json.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from program import SHAPES  # noqa: E402

PHASES = ("read", "columns", "resolve", "dodata", "layout", "asmb", "asmb2")


def work_dir(size: str, shape: str) -> Path:
    return Path("/tmp/minild-bench") / (size + ("" if shape == "base" else f"-{shape}"))


def measure_once(objs: list[str], best: dict[str, float]) -> None:
    """measure_once links objs -j1 and lowers best's CPU seconds per phase
    and in all to this run's where they are less."""
    from minild.link import Options, link
    t0 = time.process_time()
    ctx = link(Options(objects=objs, output="/dev/shm/minild-linearity.out", jobs=1))
    total = time.process_time() - t0
    rows = {r.phase: r.cpu for r in ctx.bench.ordered()}
    rows["total"] = total
    for k, v in rows.items():
        best[k] = min(best.get(k, v), v)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--sizes", default="small,medium,large")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", type=Path, default=HERE / "out" / "linearity.json")
    a = ap.parse_args(argv)
    sizes = a.sizes.split(",")
    rows = []
    for shape in a.shapes.split(","):
        inputs = []
        for size in sizes:
            d = work_dir(size, shape)
            m = d / "manifest.json"
            if not m.exists():
                sys.exit(f"linearity.py: no objects in {d}; run benchmarks/run.py --sweep first")
            inputs.append((size, json.loads(m.read_text()), sorted(glob.glob(str(d / "*.obj")))))
        # Round-robin over the sizes: the machine's speed drifts over minutes
        # (docs/performance.md, "Noise"), and a drift between one size's runs
        # and the next's would read as growth.
        best: dict[str, dict[str, float]] = {size: {} for size in sizes}
        for _ in range(a.runs):
            for size, _, objs in inputs:
                measure_once(objs, best[size])
        for size, man, _ in inputs:
            rows.append({"shape": shape, "size": size, "relocations": man["relocations"],
                         "symbols": man["symbols"], "cpu": best[size]})
            print(f"{shape} {size}: {best[size]['total'] * 1e3:.0f} ms cpu", file=sys.stderr)
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(rows, indent=1))
    report(rows, sizes)


def report(rows: list[dict], sizes: list[str]) -> None:
    by = {(r["shape"], r["size"]): r for r in rows}
    shapes = list(dict.fromkeys(r["shape"] for r in rows))
    head = ["shape"] + [f"{s} ns/reloc" for s in sizes] + [f"{s} ns/sym" for s in sizes] + \
        [f"{b} ÷ {a}" for a, b in zip(sizes, sizes[1:])]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for sh in shapes:
        r = [by[(sh, s)] for s in sizes]
        per_rel = [x["cpu"]["total"] / x["relocations"] * 1e9 for x in r]
        per_sym = [x["cpu"]["total"] / x["symbols"] * 1e9 for x in r]
        grow = [f"{b / a:.2f}" for a, b in zip(per_rel, per_rel[1:])]
        print("| " + " | ".join([sh, *(f"{v:,.0f}" for v in per_rel),
                                 *(f"{v:,.0f}" for v in per_sym), *grow]) + " |")
    a, b = sizes[-2], sizes[-1]
    print()
    head = ["shape", f"{b} ÷ {a} input"] + [f"{p}" for p in PHASES] + ["total"]
    print(f"Per phase, CPU ({b}) ÷ CPU ({a}) over the input's growth (1.0: linear):")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for sh in shapes:
        x, y = by[(sh, a)], by[(sh, b)]
        g = y["relocations"] / x["relocations"]
        cells = [f"{y['cpu'].get(p, 0) / x['cpu'][p] / g:.2f}" if x["cpu"].get(p) else "-"
                 for p in (*PHASES, "total")]
        print("| " + " | ".join([sh, f"{g:.1f}×", *cells]) + " |")


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    main()
