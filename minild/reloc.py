"""reloc: arch-neutral relocation arithmetic, applied to whole columns at once.

Arch modules describe each relocation type as a Howto: how wide the place is,
how the value is computed from S (symbol address), A (addend) and P (place
address), the range the value must fit, the alignment it must have, and how it
is inserted into the bytes already there. `apply_block` (called by asmb, once per
output block) groups a block's relocations by type and does every step for a
group with numpy: no Python work per relocation, which is what keeps a link of
millions of relocations inside the time budget (design.md, perf-anchors.md).
"""

from __future__ import annotations

from typing import Callable

import msgspec
import numpy as np

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

    name: str           # psABI name, e.g. "R_X86_64_PC32"
    code: int           # ELF r_type number
    size: int           # bytes of the place: 0 (no bytes), 1, 2, 4 or 8
    calc: Calc = absolute
    range: tuple[int, int] | None = None  # inclusive bounds of calc's value
    align: int = 1      # calc's value must be a multiple of this
    insert: Insert | None = None  # None: the value replaces the place (truncated)


_DTYPES = {1: "u1", 2: "u2", 4: "u4", 8: "u8"}


def field_dtype(size: int, order: str) -> np.dtype:
    return np.dtype(order + _DTYPES[size])


def fields(buf: np.ndarray, size: int, order: str) -> np.ndarray:
    """fields views buf (uint8) as a size-byte field at every byte offset:
    fields(...)[off] is the place at off, whatever its alignment."""
    return np.ndarray((max(len(buf) - size + 1, 0),), field_dtype(size, order), buf, 0, (1,))


def gather(buf: np.ndarray, off: np.ndarray, size: int, order: str) -> np.ndarray:
    """gather reads the size-byte fields at offsets off of buf as uint64."""
    return fields(buf, size, order)[off].astype(np.uint64)


def scatter(buf: np.ndarray, off: np.ndarray, size: int, order: str, vals: np.ndarray) -> None:
    """scatter writes vals (truncated to size bytes, in byte order) at offsets off,
    one after another: where places overlap, the later one wins."""
    raw = vals.astype(np.uint64).astype(field_dtype(size, order))
    if size > 1 and len(off) > 1 and not (np.diff(off) >= size).all():
        # Places out of order or overlapping: one row of bytes per relocation,
        # in order, so that the later of two overlapping places wins.
        buf[off[:, None] + np.arange(size)] = raw.view(np.uint8).reshape(-1, size)
        return
    # Places in order and apart (as relocations come): every field in one
    # write, through the view with a field at every byte offset (a quarter of
    # the time of the 2-D index above, half that of a byte plane at a time).
    fields(buf, size, order)[off] = raw


class Problem(msgspec.Struct):
    """Problem: relocations of one type whose values failed a check."""

    howto: Howto
    kind: str            # "range" or "align"
    index: np.ndarray    # positions in the block's relocation arrays
    values: np.ndarray


def apply_block(buf: np.ndarray, off: np.ndarray, types: np.ndarray,
                S: np.ndarray, A: np.ndarray, P: np.ndarray,
                howtos: list[Howto], order: str) -> list[Problem]:
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
        if h.insert is None:
            scatter(buf, o, h.size, order, v)
        else:
            scatter(buf, o, h.size, order, h.insert(gather(buf, o, h.size, order), v))
    return problems
