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

A Shape (SHAPES, by name) says how the same model is spelled as a compiler would:
how long the names are, how many callees live in other objects (undefined
references per object), one section per function, local symbols, rodata
strings, DWARF, few big or many small objects. The checksum model only changes
where a shape adds work the program must do (a string's byte is added to K).
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


@dataclass(frozen=True)
class Shape:
    """Shape: how the program is spelled. Defaults are the original generator."""
    names: str = "short"          # short: f123; uneven: 5-30 bytes; mangled: C++, 40-200 bytes
    cross: float = 1.0            # fraction of callees in other objects (undefined references)
    calls: int = 3                # direct calls per function
    function_sections: bool = False  # -ffunction-sections -fdata-sections
    locals: int = 0               # local symbols per function (a static helper, then labels)
    strings: bool = False         # a string per function in .rodata.str1.1, its byte read
    dwarf: bool = False           # assembled with `as -g` (.debug_info, .debug_line, ...)
    objects: float = 1.0          # times the size's object count (0.1 = few big, 10 = many small)
    doc: str = ""


# The shapes the runner sweeps (issue 18): each is something real compilers emit.
SHAPES = {
    "base": Shape(doc="the original generator: f<i> names, every callee in another object"),
    "uneven": Shape(names="uneven", calls=5,
                    doc="names 5-30 bytes, unevenly; ~3,500 undefined references per medium object"),
    "mangled": Shape(names="mangled", doc="C++-mangled names, 40-200 bytes"),
    "fewundef": Shape(cross=0.02, doc="98% of calls stay in their object: a few undefined per object"),
    "manyundef": Shape(calls=8, doc="10 callees per function in other objects: ~5,000 undefined per object"),
    "fsections": Shape(function_sections=True,
                       doc="-ffunction-sections -fdata-sections: a section per function and constant"),
    "locals": Shape(locals=4, doc="a static helper and 3 local labels per function"),
    "strings": Shape(strings=True, doc="a mergeable rodata string per function, its byte read"),
    "dwarf": Shape(dwarf=True, doc="`as -g`: .debug_info/.debug_line/.debug_aranges with relocations"),
    "fewbig": Shape(objects=0.1, doc="a tenth of the objects, ten times bigger"),
    "manysmall": Shape(objects=10, doc="ten times the objects, a tenth of the size"),
}


def _names(shape: Shape, funcs: int, rng) -> list[str]:
    """_names are the functions' names for the shape, unique and deterministic."""
    if shape.names == "short":
        return [f"f{i}" for i in range(funcs)]
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz_0123456789", np.uint8)
    if shape.names == "uneven":
        lens = rng.integers(5, 31, funcs)
    elif shape.names == "mangled":
        lens = rng.integers(40, 201, funcs)
    else:
        raise ValueError(f"unknown name shape {shape.names!r}")
    pool = letters[rng.integers(0, 26, int(lens.sum()))].tobytes().decode()
    out, at = [], 0
    for i, n in enumerate(lens.tolist()):
        tag = f"{i:x}"
        if shape.names == "uneven":
            # a letter (not b, f or t: the program's own b<k>, t<k>), the index in
            # hex and '_' (unique), then filler to the drawn length
            body = "acdeghijklmnopqrsuvwxyz"[i % 23] + tag + "_"
            out.append(body + pool[at + 1:at + 1 + max(0, n - len(body))])
        else:
            # _ZN <ns> <class> <method>E <params>: lengths as a C++ compiler writes them
            ns, cls = pool[at:at + 6], pool[at + 6:at + 14]
            meth = "m" + tag
            params = "RKNS_6vectorIiSaIiEEEPKcm"
            head = f"_ZN{len(ns)}{ns}{len(cls)}{cls}"
            fill = max(1, n - len(head) - len(meth) - len(params) - 6)
            meth += pool[at + 14:at + 14 + fill]
            out.append(f"{head}{len(meth)}{meth}E{params}")
        at += n
    return out


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
    shape: Shape = Shape()
    names: list | None = None   # each function's name (shape.names)
    sbyte: np.ndarray | None = None  # uint64 [funcs]: the string byte added to K (strings)
    strings: list | None = None      # each function's string (strings)

    @property
    def Keff(self) -> np.ndarray:
        """Keff is what f<i> returns at depth 0 and adds into bss: K, plus its
        string's byte where the shape has strings."""
        return self.K if self.sbyte is None else self.K + self.sbyte

    def name(self, i: int) -> str:
        return self.names[i] if self.names is not None else f"f{i}"

    @property
    def per(self) -> int:
        return self.funcs // self.objects

    def obj_of(self, i):
        return i // self.per

    def relocations(self) -> int:
        # (an estimate for shapes; the runner counts the .o files' RELA entries)
        return (self.funcs * (6 + self.calls + self.table_reps + (self.sbyte is not None))
                + 4 * self.objects + 2)


def build(funcs: int, objects: int, seed: int = 1, calls: int = 3,
          table_reps: int = 1, shape: Shape | None = None) -> Program:
    """build makes the program model; the same arguments give the same program.
    With a shape, its call count and object factor replace calls and objects."""
    if shape is not None:
        calls = shape.calls
        objects = max(2, int(round(objects * shape.objects)))
        while funcs % objects:      # keep every object the same size
            objects -= 1
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
    own_slot = np.arange(funcs, dtype=np.int64) % BSS_SLOTS
    other_slot = rng.integers(0, BSS_SLOTS, funcs, dtype=np.int64)
    if shape is None or shape == Shape():
        return Program(funcs, objects, calls, table_reps, K, callees, own_slot, other_obj,
                       other_slot)
    # A shape draws from its own generator, so the base program stays as it was.
    srng = np.random.default_rng([seed, 18])
    if shape.cross < 1.0:
        # Callees stay in their caller's object unless drawn to cross (not itself).
        stay = srng.random(callees.shape) >= shape.cross
        local = obj[:, None] * per + (np.arange(funcs)[:, None] % per + 1
                                      + srng.integers(0, per - 1, callees.shape)) % per
        callees = np.where(stay, local, callees)
    names = _names(shape, funcs, srng)
    sbyte = strings = None
    if shape.strings:
        # Strings repeat (a message per few functions), as real programs' do, so
        # a linker that merges SHF_MERGE strings has work to do.
        words = ["error: ", "cannot open ", "%s: %d bytes\n", "warning: ", "usage: ",
                 "out of memory", "invalid argument ", "file ", "line ", "expected "]
        pick = srng.integers(0, len(words), (funcs, 3))
        strings = ["".join(words[w] for w in row) + ("" if i % 4 else str(i))
                   for i, row in enumerate(pick.tolist())]
        sbyte = np.array([ord(t[-1]) for t in strings], dtype=np.uint64)
    return Program(funcs, objects, calls, table_reps, K, callees, own_slot, other_obj,
                   other_slot, shape, names, sbyte, strings)


def expected(p: Program) -> int:
    """expected is the checksum the linked program must print (and exit with & 0xff)."""
    # Depth-1 results: r = K; r = r*31 + K[callee] (uint64 wraps like the CPU).
    K = p.Keff
    r = K.copy()
    for c in range(p.callees.shape[1]):
        r = r * np.uint64(31) + K[p.callees[:, c]]
    # Each run of f<i> adds K[i] to two bss slots. Every table entry runs once at
    # depth 1, and each of those runs its callees once at depth 0.
    runs = np.uint64(p.table_reps) * (
        1 + np.bincount(p.callees.ravel(), minlength=p.funcs).astype(np.uint64))
    add = runs * K
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


def shape_name(shape: Shape) -> str:
    return next((k for k, v in SHAPES.items() if v == shape), "custom")


def write_manifest(p: Program, outdir: str, seed: int, files_key: str, files: list[str],
                   relocations: int) -> dict:
    """write_manifest records what a generator wrote and what the program must
    print (outdir/manifest.json); returns it."""
    stdout, status = checksum_line(p)
    m = {"shape": shape_name(p.shape), "dwarf": p.shape.dwarf,
         "funcs": p.funcs, "objects": p.objects + 1, "calls": p.calls,
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
    ap.add_argument("--shape", choices=SHAPES,
                    help="how the program is spelled (sets --calls; scales --objects)")
    ap.add_argument("-o", "--outdir", required=True)
    a = ap.parse_args(argv)
    funcs, objects = SIZES[a.size] if a.size else (a.funcs, a.objects)
    shape = SHAPES[a.shape] if a.shape else None
    m = write(build(funcs, objects, a.seed, a.calls, a.table_reps, shape), a.outdir, a.seed)
    print(f"{a.outdir}: {m['objects']} {what}, {m['funcs']} functions, "
          f"{m['relocations']} relocations, expected {m['stdout'].strip()}")
