"""gen_compact: write the benchmark program (program.py) straight as minild compact objects.

No assembler: the machine code of a function is a fixed template (the bytes GNU
as 2.40 emits for gen.py's f<i>; RELA keeps the places zero, the addends in the
records), so a whole object is a numpy tile of the template plus relocation
columns. 200k functions / 2M relocations / 401 objects take seconds, which is
what quick profiling of minild alone needs. The output runs and prints the same
checksum as gen.py's program (manifest.json has it). Usage:

    python benchmarks/gen_compact.py --size large -o /tmp/bench/large-compact
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from program import BSS_SLOTS, Program, generator_main, write_manifest  # noqa: E402

from minild import arch as archreg  # noqa: E402
from minild.encode import encode_compact  # noqa: E402
from minild.loader import GLOBAL, KIND_ID, LOCAL, Object  # noqa: E402
from minild.names import Names  # noqa: E402

FUNC_ALIGN = 16
# f<i>, cut where the code depends on `calls` (GNU as 2.40 output of gen.function):
HEAD = bytes.fromhex(
    "5341544189fc"          # push %rbx; push %r12; mov %edi,%r12d
    "488b1d00000000"        # mov .Lk(%rip),%rbx          PC32 at 0x09 -> .rodata + 16i - 4
    "48011d00000000"        # add %rbx,b<own>+s(%rip)     PC32 at 0x10 -> b<k> + 8s - 4
    "48011d00000000"        # add %rbx,b<o>+s(%rip)       PC32 at 0x17 -> b<o> + 8s - 4
    "4585e4"                # test %r12d,%r12d
    "74")                   # je .Lr (rel8 follows)
MIX = bytes.fromhex("486bdb1f4801c3")                 # imul $31,%rbx,%rbx; add %rax,%rbx
CALL = bytes.fromhex("31ffe800000000") + MIX          # xor %edi,%edi; call f<j>  PLT32 at +3
LEA = bytes.fromhex("488d0d0000000031ffffd1") + MIX   # lea f<j>(%rip),%rcx; call *%rcx  PC32 +3
PTR = bytes.fromhex("488b0d0000000031ffffd1") + MIX   # mov .Lp(%rip),%rcx; call *%rcx  PC32 +3
TAIL = bytes.fromhex("4889d8415c5bc3")                # mov %rbx,%rax; pop %r12; pop %rbx; ret
# main: _start's prologue, a run block per object, a fold block per object, then the rest.
START = bytes.fromhex("4531ff")                       # xor %r15d,%r15d
RUN = bytes.fromhex("488d3d00000000be00000000e800000000")  # lea t<k>; mov $n,%esi; call run_table
FOLD = bytes.fromhex("488d3d00000000e800000000")          # lea b<k>; call sum_bss
REST = bytes.fromhex(
    "488d3500000000488d3d000000004c89f8b91000000089c283e20f8a141688540fff48c1e804ffc975ecc6"
    "47100a4889febf01000000ba11000000b8010000000f054489ff81e7ff000000b83c0000000f05"
    # run_table (at REST + 0x52)
    "5341544889fb4189f4bf01000000ff134d6bff214901c74883c30841ffcc75e9415c5bc3"
    # sum_bss (at REST + 0x76)
    "b9400000004d6bff214c033f4883c708ffc975f1c3")
REST_RUN_TABLE, REST_SUM_BSS = 0x52, 0x76
HEXDIGITS = b"0123456789abcdef"
SECTION = 3  # symbol type


def template(calls: int) -> tuple[bytes, int]:
    """template is f<i>'s bytes (zeroed places) and its size before alignment padding."""
    skip = len(CALL) * calls + len(LEA) + len(PTR)
    if skip > 127:
        raise ValueError(f"--calls {calls}: the je over the calls no longer fits rel8")
    code = HEAD + bytes([skip]) + CALL * calls + LEA + PTR + TAIL
    size = len(code)
    return code + b"\xcc" * (-size % FUNC_ALIGN), size


class Symbols:
    """Symbols collects one object's symbol columns."""

    def __init__(self):
        self.name: list[str] = []
        self.cols: dict[str, list] = {"sec": [], "value": [], "size": [], "bind": [], "type": []}

    def add(self, names, sec, value=0, size=0, bind=GLOBAL, type_=0) -> int:
        first = len(self.name)
        n = len(names)
        self.name.extend(names)
        for k, v in (("sec", sec), ("value", value), ("size", size), ("bind", bind),
                     ("type", type_)):
            self.cols[k].append(np.broadcast_to(np.asarray(v, np.int64), (n,)))
        return first

    def arrays(self):
        c = {k: np.concatenate(v) for k, v in self.cols.items()}
        return (c["sec"].astype(np.int32), c["value"], c["size"], c["bind"].astype(np.uint8),
                c["type"].astype(np.uint8))


class Relocs:
    def __init__(self):
        self.parts: list[tuple] = []

    def add(self, sec, off, typ, sym, add):
        off = np.asarray(off, np.int64)
        b = lambda v: np.broadcast_to(np.asarray(v, np.int64), off.shape)  # noqa: E731
        self.parts.append((b(sec), off, b(typ), b(sym), b(add)))

    def arrays(self):
        cols = [np.concatenate([p[k] for p in self.parts]) for k in range(5)]
        return (cols[0].astype(np.int32), cols[1], cols[2].astype(np.int16),
                cols[3].astype(np.int32), cols[4])


def first_seen(ids: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """first_seen returns the distinct ids in order of first appearance (row-major)
    and, for every id below n, its position in that list."""
    flat = ids.ravel()
    _, first = np.unique(flat, return_index=True)
    order = flat[np.sort(first)]
    pos = np.full(n, -1, np.int64)
    pos[order] = np.arange(len(order))
    return order, pos


def function_object(p: Program, k: int, a: archreg.Arch) -> Object:
    """function_object is o<k>: the functions of object k, their rodata, table and bss."""
    TEXT, RODATA, DATA, BSS = range(4)
    R64, PC32, PLT32 = (a.index[n] for n in ("R_X86_64_64", "R_X86_64_PC32", "R_X86_64_PLT32"))
    code, fsize = template(p.calls)
    lo, hi, n = k * p.per, (k + 1) * p.per, p.per
    ids = np.arange(lo, hi)
    li = np.arange(n, dtype=np.int64)
    foff = li * len(code)
    callees = p.callees[lo:hi]

    rodata = np.zeros((n, 2), np.uint64)
    rodata[:, 0] = p.K[lo:hi]
    sy = Symbols()
    sy.add([".text", ".rodata", ".data", ".bss"], np.arange(4), bind=LOCAL, type_=SECTION)
    fdef = sy.add([f"f{i}" for i in ids.tolist()], TEXT, foff, fsize, type_=2)
    tdef = sy.add([f"t{k}"], DATA, 0, 8 * n * p.table_reps, type_=1)
    bdef = sy.add([f"b{k}"], BSS, 0, 8 * BSS_SLOTS, type_=1)
    # Undefined: every function of another object named here, every other bss
    # array, in the order of first reference as GNU as lists them. (Sorted names
    # would make the linker's name lookups unrealistically cache-friendly.)
    ext, fpos = first_seen(callees, p.funcs)
    fext = sy.add([f"f{j}" for j in ext.tolist()], -1)
    oext, opos = first_seen(p.other_obj[lo:hi], p.objects)
    bext = sy.add([f"b{o}" for o in oext.tolist()], -1)

    r = Relocs()
    c = len(HEAD) + 1
    r.add(TEXT, foff + 0x09, PC32, 1, li * 16 - 4)
    r.add(TEXT, foff + 0x10, PC32, bdef, p.own_slot[lo:hi] * 8 - 4)
    r.add(TEXT, foff + 0x17, PC32, bext + opos[p.other_obj[lo:hi]], p.other_slot[lo:hi] * 8 - 4)
    csym = fext + fpos[callees]
    for j in range(p.calls):
        r.add(TEXT, foff + c + 3, PLT32, csym[:, j], -4)
        c += len(CALL)
    r.add(TEXT, foff + c + 3, PC32, csym[:, p.calls], -4)
    c += len(LEA)
    r.add(TEXT, foff + c + 3, PC32, 1, li * 16 + 8 - 4)
    r.add(RODATA, li * 16 + 8, R64, csym[:, p.calls + 1], 0)
    r.add(DATA, np.arange(n * p.table_reps) * 8, R64, np.tile(fdef + li, p.table_reps), 0)
    assert tdef == fdef + n

    text = np.tile(np.frombuffer(code, np.uint8), n).tobytes()
    ssec, sval, ssize, sbind, stype = sy.arrays()
    rsec, roff, rtyp, rsym, radd = r.arrays()
    return Object(path=f"o{k}.obj", arch=a.name,
                  sec_name=[".text", ".rodata", ".data", ".bss"],
                  sec_kind=np.array([KIND_ID[x] for x in ("text", "rodata", "data", "bss")],
                                    np.uint8),
                  sec_align=np.array([FUNC_ALIGN, 8, 8, 8], np.int64),
                  sec_size=np.array([len(text), 16 * n, 8 * n * p.table_reps, 8 * BSS_SLOTS],
                                    np.int64),
                  sec_data=[text, rodata.tobytes(), bytes(8 * n * p.table_reps), None],
                  sym_name=Names.from_list(sy.name), sym_sec=ssec, sym_value=sval, sym_size=ssize,
                  sym_bind=sbind, sym_type=stype, rel_sec=rsec, rel_off=roff, rel_type=rtyp,
                  rel_sym=rsym, rel_add=radd)


def main_object(p: Program, a: archreg.Arch) -> Object:
    """main_object is main: _start, run_table, sum_bss, the hex digits and output buffer."""
    PC32, PLT32 = a.index["R_X86_64_PC32"], a.index["R_X86_64_PLT32"]
    N = p.objects
    run = np.tile(np.frombuffer(RUN, np.uint8), (N, 1))
    run[:, 8:12] = np.frombuffer(np.uint32(p.per * p.table_reps).tobytes(), np.uint8)
    fold = np.tile(np.frombuffer(FOLD, np.uint8), N)
    text = START + run.tobytes() + fold.tobytes() + REST
    rest = len(START) + N * (len(RUN) + len(FOLD))

    sy = Symbols()
    sy.add([".text", ".rodata", ".bss"], np.arange(3), bind=LOCAL, type_=SECTION)
    start = sy.add(["_start", "run_table", "sum_bss"], 0,
                   [0, rest + REST_RUN_TABLE, rest + REST_SUM_BSS])
    tsym = sy.add([f"t{k}" for k in range(N)], -1)
    bsym = sy.add([f"b{k}" for k in range(N)], -1)
    kk = np.arange(N, dtype=np.int64)
    r = Relocs()
    r.add(0, len(START) + kk * len(RUN) + 3, PC32, tsym + kk, -4)
    r.add(0, len(START) + kk * len(RUN) + 13, PLT32, start + 1, -4)
    fold0 = len(START) + N * len(RUN)
    r.add(0, fold0 + kk * len(FOLD) + 3, PC32, bsym + kk, -4)
    r.add(0, fold0 + kk * len(FOLD) + 8, PLT32, start + 2, -4)
    r.add(0, [rest + 3], PC32, 1, -4)      # hexdigits at .rodata+0
    r.add(0, [rest + 10], PC32, 2, -4)     # outbuf at .bss+0
    ssec, sval, ssize, sbind, stype = sy.arrays()
    rsec, roff, rtyp, rsym, radd = r.arrays()
    return Object(path="main.obj", arch=a.name, sec_name=[".text", ".rodata", ".bss"],
                  sec_kind=np.array([KIND_ID["text"], KIND_ID["rodata"], KIND_ID["bss"]],
                                    np.uint8),
                  sec_align=np.array([1, 1, 1], np.int64),
                  sec_size=np.array([len(text), len(HEXDIGITS), 24], np.int64),
                  sec_data=[text, HEXDIGITS, None], sym_name=Names.from_list(sy.name), sym_sec=ssec,
                  sym_value=sval, sym_size=ssize, sym_bind=sbind, sym_type=stype,
                  rel_sec=rsec, rel_off=roff, rel_type=rtyp, rel_sym=rsym, rel_add=radd)


def objects(p: Program):
    """objects yields (file name, Object) for every object of the program, main last."""
    a = archreg.lookup("amd64")
    for k in range(p.objects):
        yield f"o{k}.obj", function_object(p, k, a)
    yield "main.obj", main_object(p, a)


def write(p: Program, outdir: str, seed: int) -> dict:
    """write writes the compact objects and manifest.json; returns the manifest."""
    os.makedirs(outdir, exist_ok=True)
    a = archreg.lookup("amd64")
    names, nrel = [], 0
    for name, obj in objects(p):
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(encode_compact(obj, a))
        names.append(name)
        nrel += len(obj.rel_off)
    assert nrel == p.relocations(), (nrel, p.relocations())
    return write_manifest(p, outdir, seed, "inputs", names, nrel)


def main(argv=None) -> None:
    generator_main(write, __doc__, "objects", argv, max_calls=" (<= 6)")


if __name__ == "__main__":
    main()
