"""mips: MIPS o32 (System V MIPS psABI), ELF32, big-endian ("mips") or little-endian
("mipsle").

Relocations (REL: the addend is stored in the place; `minild import` makes it
explicit through implicit_addends below). Instruction fields are the low bits of
a 32-bit word in the file's byte order:
  R_MIPS_NONE  none
  R_MIPS_32    S + A                    data word
  R_MIPS_PC32  S + A - P                data word, pc-relative
  R_MIPS_26    (S + A) >> 2             j/jal: the low 28 bits of the target;
                                        the top 4 come from P + 4, so the target
                                        must lie in the 256 MB region of the
                                        delay slot, and be 4-byte aligned
  R_MIPS_HI16  (AHL + S + 0x8000) >> 16 lui: the high half, rounded so that the
                                        sign-extended LO16 added to it is exact
  R_MIPS_LO16  AHL + S                  addiu/lw/sw: the low 16 bits
  R_MIPS_PC16  (S + A - P) >> 2         b/beq/bal: a signed 18-bit, 4-aligned
                                        byte offset (from the delay slot: as
                                        stores A = -4 for `b sym`)
  R_MIPS_JALR  none                     a hint on jalr for PIC calls; a static
                                        link leaves the jalr as it is
The HI16/LO16 pairing rule: a HI16's place holds only the high half AHI of the
addend. Its full addend AHL = (AHI << 16) + (short)ALO, where ALO is the field
of the next LO16 against the same symbol in the same section (GNU as orders
relocations that way; several HI16s may share one LO16).
GOT, GP-relative (needs $gp set up by a C runtime) and TLS types are unknown
here and rejected at import: compile with -mno-abicalls -G0.
"""

from __future__ import annotations

import numpy as np

from ..reloc import Howto, absolute, either, none, pcrel, signed
from . import Arch, ElfArch

ELF_MACHINE = 8           # EM_MIPS
ELF_CLASS = 32
ORDER = ">"
# What GNU ld writes for Debian gcc's objects: o32, mips32r2 (Debian's baseline),
# noreorder. qemu-mips picks its CPU model from the ISA bits (24Kf here).
ELF_FLAGS = 0x70001001
PAGE_SIZE = 0x10000       # GNU ld's and lld's max page size for MIPS
TEXT_ADDR = 0x400100      # GNU ld's base 0x400000; the headers fit below 0x100
PAD = b"\x00\x00\x00\x0d"  # break: a stray jump into padding traps
RELA = False


# --- instruction fields ------------------------------------------------------

def field(bits: int, shift: int = 0, rounding: int = 0):
    """field returns an insert that puts (value + rounding) >> shift into the
    low `bits` bits of the place, keeping the opcode and registers around it.
    The whole encoding lives here, not in calc, so that --externallink can
    store a REL addend (S + A) in the place the way as does."""
    mask = np.uint64((1 << bits) - 1)

    def insert(old: np.ndarray, v: np.ndarray) -> np.ndarray:
        return (old & ~mask) | (((v + rounding) >> shift).astype(np.uint64) & mask)
    return insert


# lui's half: rounded up by 0x8000 so that the sign-extended LO16 added to it
# gives back the exact address.
HI16 = field(16, 16, 0x8000)


REGION = 1 << 28


def region26(S, A, P):
    """S + A less the start of the 256 MB region of the delay slot (P + 4):
    in [0, 256 MB) exactly when j/jal can reach the target (range errors
    print this offset)."""
    return S + A - ((P + 4) & -REGION)


HOWTOS = [
    Howto("R_MIPS_NONE", 0, 0, none),
    Howto("R_MIPS_32", 2, 4, absolute, either(32)),
    Howto("R_MIPS_26", 4, 4, region26, (0, REGION - 1), 4, field(26, 2)),
    Howto("R_MIPS_HI16", 5, 4, absolute, None, 1, HI16),
    Howto("R_MIPS_LO16", 6, 4, absolute, None, 1, field(16)),
    Howto("R_MIPS_PC16", 10, 4, pcrel, signed(18), 4, field(16, 2)),
    Howto("R_MIPS_JALR", 37, 0, none),
    Howto("R_MIPS_PC32", 248, 4, pcrel, either(32)),
]


# --- implicit addends (minild import of REL objects) ------------------------

def sext(v: np.ndarray, bits: int) -> np.ndarray:
    """sext sign-extends the low `bits` bits of v (int64)."""
    v = v & ((1 << bits) - 1)
    return v - ((v >> (bits - 1)) << bits)


def implicit_addends(howto_idx, offsets, data, symbols, arch):
    """implicit_addends reads the addends stored in one section's places.

    howto_idx, offsets and symbols are the section's relocations in file order
    (symbols: equal ids for the same symbol, for the HI16/LO16 pairing rule),
    data the section's bytes (the importer has checked every place is inside).
    """
    htype = np.asarray(howto_idx, np.int64)
    off = np.asarray(offsets, np.int64)
    buf = np.frombuffer(data, np.uint8)
    add = np.zeros(len(off), np.int64)
    index = arch.index

    def places(name):
        sel = np.flatnonzero(htype == index[name])
        size = arch.howtos[index[name]].size
        idx = off[sel][:, None] + np.arange(size)
        dt = np.dtype(arch.order + f"u{size}")
        return sel, buf[idx].view(dt).ravel().astype(np.int64)

    for name, bits, shift in (("R_MIPS_32", 32, 0), ("R_MIPS_PC32", 32, 0), ("R_MIPS_26", 28, 2),
                              ("R_MIPS_LO16", 16, 0), ("R_MIPS_PC16", 18, 2)):
        sel, w = places(name)
        add[sel] = sext(w << shift, bits)

    hi, w = places("R_MIPS_HI16")
    if len(hi):
        lo = pair_lo16(htype == index["R_MIPS_HI16"], htype == index["R_MIPS_LO16"],
                       np.asarray(symbols, np.int64))
        # A HI16 with no LO16 after it keeps AHI alone (lld does the same).
        alo = np.where(lo >= 0, add[np.maximum(lo, 0)], 0)
        add[hi] = (sext(w, 16) << 16) + alo
    return add


def pair_lo16(is_hi: np.ndarray, is_lo: np.ndarray, sym: np.ndarray) -> np.ndarray:
    """pair_lo16 returns, for each HI16 (in order), the position of the next
    LO16 with the same symbol, or -1: one stable sort by symbol, then a
    backwards running minimum of LO16 positions within each symbol's run."""
    n = len(sym)
    order = np.lexsort((np.arange(n), sym))           # by symbol, then file order
    big = n
    cand = np.where(is_lo[order], np.arange(n), big)  # sorted positions of LO16s
    nxt = np.minimum.accumulate(cand[::-1])[::-1]     # next LO16 at or after
    s_sorted = sym[order]
    ok = nxt < big
    ok[ok] = s_sorted[nxt[ok]] == s_sorted[ok]        # still the same symbol
    res_sorted = np.where(ok, order[np.minimum(nxt, n - 1)], -1)
    res = np.empty(n, np.int64)
    res[order] = res_sorted
    return res[is_hi]


ARCHES = (
    Arch(name="mips", ptr_size=ELF_CLASS // 8, order=ORDER, pad=PAD, howtos=HOWTOS,
         elf=ElfArch(machine=ELF_MACHINE, cls=ELF_CLASS, flags=ELF_FLAGS, rela=RELA,
                     text_addr=TEXT_ADDR, round=PAGE_SIZE, triple="mips-linux-gnu"),
         implicit_addends=implicit_addends),
    Arch(name="mipsle", ptr_size=ELF_CLASS // 8, order="<", pad=b"\x0d\x00\x00\x00", howtos=HOWTOS,
         elf=ElfArch(machine=ELF_MACHINE, cls=ELF_CLASS, flags=ELF_FLAGS, rela=RELA,
                     text_addr=TEXT_ADDR, round=PAGE_SIZE, triple="mipsel-linux-gnu"),
         implicit_addends=implicit_addends),
)
