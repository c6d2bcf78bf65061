"""program: the synthetic benchmark program as data, shared by gen.py and gen_compact.py.

Not part of minild: the benchmarks build their inputs from this. A Program is
a deterministic model (numpy columns, from a seed) of a static x86-64 program
of F functions spread over N objects plus one main object:

  f<i>   (object i // per) loads its constant K[i] from .rodata (PC32), adds it
         into a slot of its own object's bss array and of another object's bss
         array (PC32 both), and, when called with depth 1, calls `calls` functions
         in other objects directly (PLT32), one through a pc-relative lea
         (PC32) and one through a pointer stored next to K[i] in .rodata
         (R_X86_64_64). It returns K[i] at depth 0, and at depth 1 the mix
         r = K[i]; r = r*31 + callee() for each callee in order.
  t<k>   object k's .data table of absolute pointers (R_X86_64_64) to each of its
         functions, `table_reps` times over (1 by default).
  b<k>   object k's .bss array of 64 quadwords.
  main   _start runs every table (calls each entry with depth 1, acc = acc*33 + r),
         then folds every bss array into acc (acc = acc*33 + slot), writes acc as
         16 hex digits and a newline with write(2) and exits with acc & 0xff.

Because the model is data, `expected()` computes the checksum the program must
print without running it: every output of every linker is checked against it.
Relocations per function: 7 + calls (+ table_reps - 1); per object 4; 2 more.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass

import numpy as np

BSS_SLOTS = 64
MASK = (1 << 64) - 1

# size name -> (functions, function objects); the anchors' shapes
# (/work/shared/perf-anchors.md): 1k/11, 50k/101 and 200k/401 objects.
SIZES = {
    "tiny": (200, 4),
    "small": (1_000, 10),
    "medium": (50_000, 100),
    "large": (200_000, 400),
}


@dataclass
class Program:
    funcs: int
    objects: int            # function objects; main is one more
    calls: int              # direct (PLT32) calls per function
    table_reps: int         # times each function appears in its object's table
    K: np.ndarray           # uint64 [funcs]: each function's constant
    callees: np.ndarray     # int64 [funcs, calls + 2]: direct calls, then lea, then pointer
    own_slot: np.ndarray    # int64 [funcs]: slot in the own object's bss
    other_obj: np.ndarray   # int64 [funcs]: the other object whose bss is added to
    other_slot: np.ndarray  # int64 [funcs]

    @property
    def per(self) -> int:
        return self.funcs // self.objects

    def obj_of(self, i):
        return i // self.per

    def relocations(self) -> int:
        return self.funcs * (6 + self.calls + self.table_reps) + 4 * self.objects + 2


def build(funcs: int, objects: int, seed: int = 1, calls: int = 3,
          table_reps: int = 1) -> Program:
    """build makes the program model; the same arguments give the same program."""
    if objects < 2 or funcs % objects:
        raise ValueError(f"need >= 2 objects dividing the function count ({funcs}/{objects})")
    rng = np.random.default_rng(seed)
    per = funcs // objects
    obj = np.arange(funcs) // per
    K = rng.integers(1, 1 << 31, funcs, dtype=np.int64).astype(np.uint64)
    # Callees live in other objects: draw from funcs - per, then skip over the own object.
    j = rng.integers(0, funcs - per, (funcs, calls + 2), dtype=np.int64)
    callees = j + (j >= (obj * per)[:, None]) * per
    o = rng.integers(0, objects - 1, funcs, dtype=np.int64)
    other_obj = o + (o >= obj)
    return Program(funcs, objects, calls, table_reps, K, callees,
                   np.arange(funcs, dtype=np.int64) % BSS_SLOTS, other_obj,
                   rng.integers(0, BSS_SLOTS, funcs, dtype=np.int64))


def expected(p: Program) -> int:
    """expected is the checksum the linked program must print (and exit with & 0xff)."""
    # Depth-1 results: r = K; r = r*31 + K[callee] (uint64 wraps like the CPU).
    r = p.K.copy()
    for c in range(p.callees.shape[1]):
        r = r * np.uint64(31) + p.K[p.callees[:, c]]
    # Each run of f<i> adds K[i] to two bss slots. Every table entry runs once at
    # depth 1, and each of those runs its callees once at depth 0.
    runs = np.uint64(p.table_reps) * (
        1 + np.bincount(p.callees.ravel(), minlength=p.funcs).astype(np.uint64))
    add = runs * p.K
    bss = np.zeros((p.objects, BSS_SLOTS), np.uint64)
    np.add.at(bss, (p.obj_of(np.arange(p.funcs)), p.own_slot), add)
    np.add.at(bss, (p.other_obj, p.other_slot), add)
    acc = 0
    per = p.per
    for k in range(p.objects):
        rk = r[k * per:(k + 1) * per].tolist()
        for _ in range(p.table_reps):
            for v in rk:
                acc = (acc * 33 + v) & MASK
    for v in bss.ravel().tolist():
        acc = (acc * 33 + v) & MASK
    return acc


def checksum_line(p: Program) -> tuple[bytes, int]:
    """checksum_line is what the program writes to stdout, and its exit status."""
    v = expected(p)
    return f"{v:016x}\n".encode(), v & 0xFF


def write_manifest(p: Program, outdir: str, seed: int, files_key: str, files: list[str],
                   relocations: int) -> dict:
    """write_manifest records what a generator wrote and what the program must
    print (outdir/manifest.json); returns it."""
    stdout, status = checksum_line(p)
    m = {"funcs": p.funcs, "objects": p.objects + 1, "calls": p.calls,
         "table_reps": p.table_reps, "seed": seed, "relocations": relocations,
         files_key: files, "stdout": stdout.decode(), "status": status}
    with open(os.path.join(outdir, "manifest.json"), "w") as f:
        json.dump(m, f, indent=1)
    return m


def generator_main(write, doc: str, what: str, argv=None, max_calls: str = "") -> None:
    """generator_main is the command line shared by gen.py and gen_compact.py:
    build the program for the flags and write it with write(p, outdir, seed)."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--size", choices=SIZES, help="a named size (sets --funcs, --objects)")
    ap.add_argument("--funcs", type=int, default=1000)
    ap.add_argument("--objects", type=int, default=10, help="function objects (+1 main)")
    ap.add_argument("--calls", type=int, default=3, help=f"direct calls per function{max_calls}")
    ap.add_argument("--table-reps", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-o", "--outdir", required=True)
    a = ap.parse_args(argv)
    funcs, objects = SIZES[a.size] if a.size else (a.funcs, a.objects)
    m = write(build(funcs, objects, a.seed, a.calls, a.table_reps), a.outdir, a.seed)
    print(f"{a.outdir}: {m['objects']} {what}, {m['funcs']} functions, "
          f"{m['relocations']} relocations, expected {m['stdout'].strip()}")
