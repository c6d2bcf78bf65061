"""columns: loadlib's join of the objects' columns into the link's.

After the read, each Object holds its own numpy columns (sections, symbols,
relocations) with ids local to it; columns concatenates them into the Link's,
rebasing section and symbol ids to global ones, so that every later phase
works on whole columns and never on a Python object per symbol or relocation.
"""

from __future__ import annotations

from itertools import chain

import msgspec
import numpy as np

from . import shm
from .loader import Object
from .names import Names


class Relocs(msgspec.Struct):
    """Relocs: every relocation of the link as columns (global ids)."""

    sec: np.ndarray
    off: np.ndarray
    type: np.ndarray
    sym: np.ndarray
    add: np.ndarray


def columns(ctx, objs: list[Object], spent: list | None = None) -> None:
    """columns concatenates the objects' columns into the link's: global
    section and symbol ids (an object's ids plus its base). Each object's
    column is dropped as soon as it is copied (where it is not a view of a
    file or of shared memory, its memory can serve the next allocation):
    fresh pages cost a fault each, and a large link's columns span many
    thousands of pages (measured: docs/performance.md, 'Figures behind the
    code'). Where the columns were views of shared memory, spent holds those
    stretches (loader.read_objects), and they are released at the end: a
    shared mapping stays in the process's RSS for as long as it is mapped,
    and the section bytes beside them keep it mapped until asmb."""
    nsec = np.array([len(o.sec_name) for o in objs], np.int64)
    nsym = np.array([len(o.sym_name) for o in objs], np.int64)
    nrel = np.array([len(o.rel_off) for o in objs], np.int64)
    secbase = np.cumsum(nsec) - nsec
    symbase = np.cumsum(nsym) - nsym
    empty = np.zeros(0, np.int8)
    off_type = np.int32 if max((int(o.sec_size.max(initial=0)) for o in objs), default=0) \
        < 1 << 31 else np.int64
    add_type = np.int32 if all(o.rel_add.dtype.itemsize <= 4 for o in objs) else np.int64
    # The link's columns are carved from one allocation: large enough for
    # numpy to ask the kernel for huge pages, so that it is a few faults of
    # 2 MiB rather than one per 4 KiB page (most of this phase's time).
    S, Y, R = int(nsec.sum()), int(nsym.sum()), int(nrel.sum())
    plan = [(1, S), (8, S), (8, S), (8, Y), (8, Y), (8, Y), (1, Y), (1, Y),
            (4, R), (4, R), (np.dtype(off_type).itemsize, R), (2, R),
            (np.dtype(add_type).itemsize, R)]
    arena = np.empty(sum(-(-w * n // 8) * 8 for w, n in plan), np.uint8)
    at = 0

    def cat(f: str, dtype) -> np.ndarray:
        nonlocal at
        dtype = np.dtype(dtype)
        n = sum(len(getattr(o, f)) for o in objs)
        col = np.ndarray((n,), dtype, arena, at)
        at += -(-dtype.itemsize * n // 8) * 8
        np.concatenate([getattr(o, f) for o in objs], out=col, casting="same_kind")
        for o in objs:
            setattr(o, f, empty)
        return col

    ctx.sec_obj = np.repeat(np.arange(len(objs), dtype=np.int32), nsec)
    # chain, not a comprehension: 100k+ sections with -ffunction-sections
    ctx.sec_name = list(chain.from_iterable(o.sec_name for o in objs))
    ctx.sec_kind, ctx.sec_align = cat("sec_kind", np.uint8), cat("sec_align", np.int64)
    ctx.sec_size = cat("sec_size", np.int64)
    ctx.sec_data = list(chain.from_iterable(o.sec_data for o in objs))
    for o in objs:   # the link's list is the one reference (write_output drops it)
        o.sec_data = []

    ctx.sym_obj = np.repeat(np.arange(len(objs), dtype=np.int32), nsym)
    ctx.names = Names.concat([o.sym_name for o in objs])
    none = Names.from_list([])
    for o in objs:
        o.sym_name = none
    sec = ctx.sym_sec = cat("sym_sec", np.int64)
    rebase(sec, nsym, secbase, defined_only=True)  # UNDEF and ABS stay
    # An object's columns may be its file's narrow views (loader: a bulk
    # read); joining them widens them to the link's types.
    ctx.sym_value, ctx.sym_size = cat("sym_value", np.int64), cat("sym_size", np.int64)
    ctx.sym_bind, ctx.sym_type = cat("sym_bind", np.uint8), cat("sym_type", np.uint8)

    # int32 ids and int16 types: half the memory of int64 for millions of rows.
    # Offsets and addends are int32 too where every object allows it: offsets
    # are inside their sections, addends int32 where the files' columns are
    # 4 bytes or less (loader.NARROW).
    rsec, rsym = cat("rel_sec", np.int32), cat("rel_sym", np.int32)
    rebase(rsec, nrel, secbase)
    rebase(rsym, nrel, symbase)
    ctx.imports = {int(b) + k: (m, n) for o, b in zip(objs, symbase.tolist())
                   for k, m, n in o.imports}
    ctx.relocs = Relocs(sec=rsec, off=cat("rel_off", off_type), type=cat("rel_type", np.int16),
                        sym=rsym, add=cat("rel_add", add_type))
    _wasm(ctx, objs, symbase, nrel)
    # Every column and name table of every object is the link's copy now
    # (cat and Names.concat replaced them); nothing reads those stretches.
    for shared, lo, hi in spent or ():
        shm.release(shared, lo, hi)
    if spent:
        spent.clear()   # (a reference to a mapping would keep it mapped)


def rebase(col: np.ndarray, counts: np.ndarray, base: np.ndarray, defined_only=False) -> None:
    """rebase adds each object's base to its stretch of col, in place (a
    repeat of the bases would be one more full-size array: fresh memory)."""
    pos = 0
    for n, b in zip(counts.tolist(), base.tolist()):
        if n and b:
            v = col[pos:pos + n]
            if defined_only:
                np.add(v, b, out=v, where=v >= 0)
            else:
                v += b
        pos += n


def _wasm(ctx, objs, symbase: np.ndarray, nrel: np.ndarray) -> None:
    """_wasm joins the objects' wasm parts: one list of function types (each
    distinct signature once, in first-seen order), each symbol's signature and
    export name by global id; and it turns each type-index relocation's addend
    from its object's type index into the link's."""
    ctx.types, ctx.signatures, ctx.exports, ctx.wasm_globals = [], {}, {}, {}
    if not any(o.types or o.signatures or o.exports or o.globals for o in objs):
        return
    index: dict = {}
    remaps = []
    for o, base in zip(objs, symbase.tolist()):
        remap = np.array([index.setdefault(t, len(index)) for t in o.types], np.int64)
        remaps.append(remap)
        ctx.signatures.update({base + k: int(remap[t]) for k, t in o.signatures.items()})
        ctx.exports.update({base + k: name for k, name in o.exports.items()})
        ctx.wasm_globals.update({base + k: g for k, g in o.globals.items()})
    ctx.types = list(index)
    t = ctx.arch.index.get("R_WASM_TYPE_INDEX_LEB")
    if t is None:
        return
    r = ctx.relocs
    lo = 0
    for remap, n in zip(remaps, nrel.tolist()):
        sel = np.flatnonzero(r.type[lo:lo + n] == t) + lo
        if len(sel):
            bad = (r.add[sel] < 0) | (r.add[sel] >= len(remap))
            if bad.any():
                from .errors import fail
                raise fail(f"{ctx.reloc_site(int(sel[bad][0]))}: relocation R_WASM_TYPE_INDEX_LEB: "
                           f"type {int(r.add[sel][bad][0])} is not one of the object's "
                           f"{len(remap)} types")
            r.add[sel] = remap[r.add[sel]]
        lo += n
