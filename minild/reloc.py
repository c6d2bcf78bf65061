"""reloc: arch-neutral relocation arithmetic, applied to whole columns at once.

Arch modules describe each relocation type as a Howto: how wide the place is,
how the value is computed from S (symbol address), A (addend) and P (place
address), the range the value must fit, the alignment it must have, and how it
is inserted into the bytes already there. `apply_block` (called by asmb, once per
output block) groups a block's relocations by type and does every step for a
group with numpy: no Python work per relocation, which is what keeps a link of
millions of relocations inside the time budget (design.md, perf-anchors.md).

P is always the place and S always the symbol's address. Expressions that need
more than S, A and P read link-wide values from an Env, which `prepare` computes
once after layout: the TOC base (ppc64), the values of the PCREL_HI20s that
PCREL_LO12s complete (riscv64), the global entries that direct calls skip
(ppc64). Such expressions are marked `linkwide` and take the Env as a fourth
argument; nothing rewrites the relocation columns.
"""

from __future__ import annotations

from typing import Callable

import msgspec
import numpy as np

from .errors import Diagnostics

# calc(S, A, P) -> value: all int64 arrays of one length.
Calc = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
# insert(old, value) -> new: old is the place's current contents as uint64,
# value the int64 result of calc; returns the new contents (uint64).
Insert = Callable[[np.ndarray, np.ndarray], np.ndarray]


def absolute(S, A, P):
    """S + A: absolute address (R_X86_64_64, R_386_32, ...)."""
    return S + A


def pcrel(S, A, P):
    """S + A - P: pc-relative displacement (R_X86_64_PC32, ...)."""
    return S + A - P


def none(S, A, P):
    """A relocation that changes no bytes (R_RISCV_RELAX, R_*_NONE)."""
    return np.zeros_like(S)


def linkwide(calc):
    """linkwide marks an expression that reads the link's Env: calc(S, A, P, env)."""
    calc.linkwide = True
    return calc


class Env(msgspec.Struct):
    """Env holds the link-wide values of the linkwide expressions (see prepare)."""

    toc: int = 0                       # the TOC base, r2's value (ppc64's .TOC.)
    # the PCREL_HI20-like relocations (pcrel_hi): places in increasing order,
    # and each one's S + A - P, which its PCREL_LO12s complete
    hi_place: np.ndarray = msgspec.field(default_factory=lambda: np.zeros(0, np.int64))
    hi_value: np.ndarray = msgspec.field(default_factory=lambda: np.zeros(0, np.int64))
    # addresses of functions whose global entry a direct call skips (call_local)
    entries: np.ndarray = msgspec.field(default_factory=lambda: np.zeros(0, np.int64))
    local_entry: int = 0               # how far past the global entry the local one is
    image_base: int | None = None      # PE's ImageBase (rva); None: the output has none
    # the functions in the table (table_index), by index: slot k + 1 holds table[k]
    table: np.ndarray = msgspec.field(default_factory=lambda: np.zeros(0, np.int64))


@linkwide
def toc(S, A, P, env):
    """S + A - TOC: TOC-relative data access (R_PPC64_TOC16*)."""
    return S + A - env.toc


@linkwide
def tocbase(S, A, P, env):
    """TOC + A: the TOC base itself (R_PPC64_TOC)."""
    return np.full_like(S, env.toc) + A


def pcrel_hi(S, A, P):
    """S + A - P, for the high part of a pc-relative pair whose low parts
    name this relocation's place (R_RISCV_PCREL_HI20); prepare records it."""
    return S + A - P


@linkwide
def pcrel_lo(S, A, P, env):
    """The S + A - P of the pcrel_hi relocation at address S (R_RISCV_PCREL_LO12_*:
    its symbol is the label of the auipc it completes; its own A is ignored, as
    lld and GNU ld ignore it). prepare has checked that every one has its pair."""
    if len(env.hi_place) == 0:
        return np.zeros_like(S)
    at = np.minimum(np.searchsorted(env.hi_place, S), len(env.hi_place) - 1)
    return env.hi_value[at]


@linkwide
def rva(S, A, P, env):
    """S + A - ImageBase: an image-relative address (COFF's ADDR32NB), which
    only an output with an image base (PE) has; prepare refuses it elsewhere."""
    return S + A - (env.image_base or 0)


def addend(S, A, P):
    """A: a value the relocation carries itself (wasm's type index)."""
    return A + np.zeros_like(S)


@linkwide
def table_index(S, A, P, env):
    """The slot of function S in the table of functions whose address is taken
    (wasm's R_WASM_TABLE_INDEX_*): slot 0 is the null pointer, then the
    functions in index order; prepare collects them."""
    return np.searchsorted(env.table, S).astype(np.int64) + 1


@linkwide
def call_local(S, A, P, env):
    """S + A - P, plus the local-entry offset where S + A is a function's global
    entry (ppc64 ELFv2: a direct call keeps r2 and skips the entry's TOC set-up)."""
    v = S + A - P
    if len(env.entries):
        v = v + np.where(np.isin(S + A, env.entries), env.local_entry, 0)
    return v


def signed(bits: int) -> tuple[int, int]:
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def unsigned(bits: int) -> tuple[int, int]:
    return 0, (1 << bits) - 1


def either(bits: int) -> tuple[int, int]:
    """The range of a field that may hold a signed or an unsigned value
    (GNU's complain_overflow_bitfield), e.g. R_X86_64_16."""
    return -(1 << (bits - 1)), (1 << bits) - 1


class Howto(msgspec.Struct, frozen=True):
    """Howto says how one relocation type is applied (the name is BFD's)."""

    name: str           # psABI name, e.g. "R_X86_64_PC32" (COFF's for PE-only types)
    code: int           # ELF r_type number; NO_ELF for a type ELF has no number for
    size: int           # bytes of the place: 0 (no bytes), 1, 2, 4 or 8
    calc: Calc = absolute
    range: tuple[int, int] | None = None  # inclusive bounds of calc's value
    align: int = 1      # calc's value must be a multiple of this
    insert: Insert | None = None  # None: the value replaces the place (truncated)
    # The value's bit 0 is a target's Thumb bit (arm interworking: a BL to a
    # Thumb function becomes BLX): align is checked only where it is clear.
    tbit: bool = False
    # write_addends' insert where it must differ from insert's (arm's THM_CALL:
    # keep the BL or BLX the place holds; the final linker chooses); None: insert.
    addend_insert: Insert | None = None


NO_ELF = -1   # Howto.code of a type that exists only in another format (COFF's ADDR32NB)

_DTYPES = {1: "u1", 2: "u2", 4: "u4", 8: "u8"}


def field_dtype(size: int, order: str) -> np.dtype:
    return np.dtype(order + _DTYPES[size])


def fields(buf: np.ndarray, size: int, order: str) -> np.ndarray:
    """fields views buf (uint8) as a size-byte field at every byte offset:
    fields(...)[off] is the place at off, whatever its alignment."""
    return np.ndarray((max(len(buf) - size + 1, 0),), field_dtype(size, order), buf, 0, (1,))


def gather(buf: np.ndarray, off: np.ndarray, size: int, order: str) -> np.ndarray:
    """gather reads the size-byte fields at offsets off of buf as uint64."""
    if size not in _DTYPES:       # an odd width (wasm's 5-byte LEB places): byte rows
        return _odd(buf[off[:, None] + np.arange(size)], order)
    return fields(buf, size, order)[off].astype(np.uint64)


def _odd(rows: np.ndarray, order: str) -> np.ndarray:
    """_odd combines rows of bytes (one place a row) into uint64 values."""
    rows = rows.astype(np.uint64)
    if order == ">":
        rows = rows[:, ::-1]
    return (rows << (np.arange(rows.shape[1], dtype=np.uint64) * np.uint64(8))).sum(
        axis=1, dtype=np.uint64)


def scatter(buf: np.ndarray, off: np.ndarray, size: int, order: str, vals: np.ndarray) -> None:
    """scatter writes vals (truncated to size bytes, in byte order) at offsets off,
    one after another: where places overlap, the later one wins."""
    if size not in _DTYPES:       # an odd width: byte rows, in order
        v = vals.astype(np.uint64)[:, None] >> (np.arange(size, dtype=np.uint64) * np.uint64(8))
        rows = (v & np.uint64(0xFF)).astype(np.uint8)
        buf[off[:, None] + np.arange(size)] = rows if order == "<" else rows[:, ::-1]
        return
    raw = vals.astype(np.uint64).astype(field_dtype(size, order))
    if size > 1 and len(off) > 1 and not (np.diff(off) >= size).all():
        # Places out of order or overlapping: one row of bytes per relocation,
        # in order, so that the later of two overlapping places wins.
        buf[off[:, None] + np.arange(size)] = raw.view(np.uint8).reshape(-1, size)
        return
    # Places in order and apart (as relocations come): every field in one
    # write, through the view with a field at every byte offset (faster than
    # both the 2-D index above and a byte plane at a time; measured:
    # docs/performance.md, 'Figures behind the code').
    fields(buf, size, order)[off] = raw


class Problem(msgspec.Struct):
    """Problem: relocations of one type whose values failed a check."""

    howto: Howto
    kind: str            # "range" or "align"
    index: np.ndarray    # positions in the block's relocation arrays
    values: np.ndarray


def apply_block(buf: np.ndarray, off: np.ndarray, types: np.ndarray,
                S: np.ndarray, A: np.ndarray, P: np.ndarray,
                howtos: list[Howto], order: str, env: Env | None = None) -> list[Problem]:
    """apply_block applies relocations to the bytes of one block.

    buf is the block (uint8), off each relocation's offset in it, types an index
    into howtos. Relocations that fail a check are left unapplied and returned.
    Types are applied in index order, so the result never depends on how the
    output was cut into blocks.
    """
    problems: list[Problem] = []
    if len(types) == 0:
        return problems
    present = np.flatnonzero(np.bincount(types, minlength=len(howtos)))
    single = len(present) == 1
    for t in present:
        h = howtos[t]
        sel = slice(None) if single else np.flatnonzero(types == t)
        if getattr(h.calc, "linkwide", False):
            v = h.calc(S[sel], A[sel], P[sel], env)
        else:
            v = h.calc(S[sel], A[sel], P[sel])
        ok = None
        if h.range is not None:
            lo, hi = h.range
            bad = (v < lo) | (v > hi)
            if bad.any():
                problems.append(Problem(h, "range", _positions(sel, bad, len(types)), v[bad]))
                ok = ~bad
        if h.align > 1:
            bad = (v & (h.align - 1)) != 0
            if h.tbit:
                bad &= (v & 1) == 0
            if ok is not None:
                bad &= ok
            if bad.any():
                problems.append(Problem(h, "align", _positions(sel, bad, len(types)), v[bad]))
                ok = ~bad if ok is None else ok & ~bad
        if h.size == 0:
            continue
        o = off[sel]
        if ok is not None:
            o, v = o[ok], v[ok]
        if h.insert is None:
            scatter(buf, o, h.size, order, v)
        else:
            scatter(buf, o, h.size, order, h.insert(gather(buf, o, h.size, order), v))
    return problems


def _positions(sel, bad: np.ndarray, n: int) -> np.ndarray:
    if isinstance(sel, slice):
        return np.flatnonzero(bad)
    return sel[bad]


def write_addends(buf: np.ndarray, off: np.ndarray, types: np.ndarray, addends: np.ndarray,
                  howtos: list[Howto], order: str) -> list[Problem]:
    """write_addends stores addends in their places, as REL objects keep them:
    a data word gets the addend, an instruction field gets it through the
    Howto's insert (the same encoding the field has once relocated). Addends
    the field cannot hold are returned as range problems."""
    problems: list[Problem] = []
    for t in np.flatnonzero(np.bincount(types, minlength=len(howtos))) if len(types) else []:
        h = howtos[t]
        if h.size == 0:
            continue
        sel = np.flatnonzero(types == t)
        v = addends[sel]
        if h.insert is None and h.size < 8:
            lo, hi = -(1 << (8 * h.size - 1)), (1 << (8 * h.size)) - 1
            bad = (v < lo) | (v > hi)
            if bad.any():
                problems.append(Problem(Howto(h.name, h.code, h.size, h.calc, (lo, hi)), "range",
                                        sel[bad], v[bad]))
                sel, v = sel[~bad], v[~bad]
        o = off[sel]
        insert = h.addend_insert or h.insert
        if insert is None:
            scatter(buf, o, h.size, order, v)
        else:
            scatter(buf, o, h.size, order, insert(gather(buf, o, h.size, order), v))
    return problems


def prepare(ctx) -> Env:
    """prepare computes the Env of a link's linkwide expressions, after layout:
    only what the arch's Howtos use, from the few relocations that need it."""
    a, r = ctx.arch, ctx.relocs
    env = Env()
    calcs = [h.calc for h in a.howtos]
    used = lambda fns: [i for i, c in enumerate(calcs) if c in fns]  # noqa: E731
    if used((toc, tocbase)) and a.toc_base is not None:
        env.toc = a.toc_base(ctx)
    hi, lo = used((pcrel_hi,)), used((pcrel_lo,))
    if lo:
        k = np.flatnonzero(np.isin(r.type, hi))
        P = ctx.sec_addr[r.sec[k]] + r.off[k]
        order = np.argsort(P, kind="stable")
        k, P = k[order], P[order]
        env.hi_place = P
        env.hi_value = ctx.defaddr[r.sym[k]] + r.add[k] - P
        _check_pairs(ctx, np.flatnonzero(np.isin(r.type, lo)), env)
    if a.local_entry is not None and used((call_local,)):
        env.entries, env.local_entry = _global_entries(ctx, a.local_entry)
    env.image_base = ctx.image_base
    taken = used((table_index,))
    if taken:
        k = np.flatnonzero(np.isin(r.type, taken))
        env.table = np.unique(ctx.defaddr[r.sym[k]])
    image_relative = used((rva,))
    if image_relative and ctx.image_base is None:
        k = np.flatnonzero(np.isin(r.type, image_relative))
        if len(k):
            d = Diagnostics()
            for j in k[:20].tolist():
                d.error(f"{ctx.reloc_site(j)}: relocation {a.howtos[int(r.type[j])].name} is "
                        f"relative to the image base, which only PE output has (-H pe); "
                        f"references {ctx.reloc_target(j)}")
            d.check()
    return env


def _check_pairs(ctx, lo: np.ndarray, env: Env) -> None:
    """_check_pairs reports every pcrel_lo relocation whose label is not the
    place of a pcrel_hi one, in lld's words."""
    r = ctx.relocs
    want = ctx.defaddr[r.sym[lo]]
    at = np.minimum(np.searchsorted(env.hi_place, want), max(len(env.hi_place) - 1, 0))
    found = (env.hi_place[at] == want) if len(env.hi_place) else np.zeros(len(lo), bool)
    # A label in a section: its defining symbol must be placed in some section.
    defn = ctx.sym_res[r.sym[lo]]
    found &= (defn >= 0) & (ctx.sym_sec[np.maximum(defn, 0)] >= 0)
    if found.all():
        return
    d = Diagnostics()
    for j in np.flatnonzero(~found).tolist():
        k = int(lo[j])
        name = ctx.arch.howtos[int(r.type[k])].name
        hi_name = next(h.name for h in ctx.arch.howtos if h.calc is pcrel_hi)
        dk = int(defn[j])
        sec = int(ctx.sym_sec[dk]) if dk >= 0 else -1
        label = (ctx.section_site(sec, int(ctx.sym_value[dk])) if sec >= 0
                 else "an absolute symbol")
        d.error(f"{ctx.reloc_site(k)}: relocation {name} points to {label} without an "
                f"associated {hi_name} relocation; references {ctx.reloc_target(k)}",
                *ctx.defined_in(k))
    d.check()


def _global_entries(ctx, rule) -> tuple[np.ndarray, int]:
    """_global_entries finds the functions with a global entry that direct calls
    skip: rule is (high, low, offset), the Howto names of the two relocations
    against the TOC symbol that set r2 in the entry's first two words, and the
    distance to the local entry."""
    high, low, offset, symbol = rule
    r, a = ctx.relocs, ctx.arch
    t = ctx.global_sym(symbol)
    if t is None:
        return np.zeros(0, np.int64), offset
    k = np.flatnonzero(np.isin(r.type, [a.index[high], a.index[low]]))
    k = k[ctx.sym_res[r.sym[k]] == t]
    word = (ctx.sec_addr[r.sec[k]] + r.off[k]) & ~3
    is_high = r.type[k] == a.index[high]
    return np.intersect1d(word[is_high], word[~is_high] - 4), offset
