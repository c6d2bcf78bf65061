"""arm64: AArch64 (ARM's AAELF64 psABI, LP64), ELF64 little-endian.

Relocations (RELA). Data places are little-endian words; instruction places are
32-bit instructions whose immediate field gets the value's bits (X[hi:lo]):
  R_AARCH64_ABS64             S + A         64-bit word, no check
  R_AARCH64_ABS32/ABS16       S + A         fit signed or unsigned 32/16
  R_AARCH64_PREL64            S + A - P     64-bit word, no check
  R_AARCH64_PREL32/PREL16     S + A - P     fit signed or unsigned 32/16
  R_AARCH64_CALL26, JUMP26    S + A - P     BL, B: imm26 = X[27:2], +-128 MB, 4-aligned
  R_AARCH64_CONDBR19          S + A - P     B.cond, CBZ, CBNZ: imm19 = X[20:2], +-1 MB
  R_AARCH64_LD_PREL_LO19      S + A - P     LDR (literal): imm19 = X[20:2], +-1 MB
  R_AARCH64_TSTBR14           S + A - P     TBZ, TBNZ: imm14 = X[15:2], +-32 KB
  R_AARCH64_ADR_PREL_LO21     S + A - P     ADR: immhi:immlo = X[20:0], +-1 MB
  R_AARCH64_ADR_PREL_PG_HI21  Page(S + A) - Page(P)   ADRP: X[32:12], +-4 GB
  R_AARCH64_ADR_PREL_PG_HI21_NC   the same, unchecked
  R_AARCH64_ADD_ABS_LO12_NC   S + A         ADD (immediate): imm12 = X[11:0]
  R_AARCH64_LDST{8,16,32,64,128}_ABS_LO12_NC   S + A   LDR/STR (unsigned offset):
                              imm12 = X[11:n], n = log2 of the access size; the
                              address must be a multiple of the access size
                              (the instruction cannot encode the low bits)
  R_AARCH64_MOVW_UABS_G0..G3  S + A         MOVZ/MOVK: imm16 = X[16g+15:16g];
                              G0, G1, G2 check X < 2^16, 2^32, 2^48 (unsigned);
                              the _NC forms and G3 are unchecked
  IMAGE_REL_ARM64_ADDR32NB    S + A - ImageBase   PE only (COFF's name; ELF has
                              none): an image-relative address
ADRP + ADD/LDST :lo12: pairs are how GNU as and gcc address static data (the
small code model); MOVW_UABS is the large code model. GOT, TLS and PLT types
need tables a static minild link does not build: unknown types here.
"""

import numpy as np

from ..reloc import NO_ELF, Howto, absolute, either, none, pcrel, rva, signed, unsigned
from ..thunks import Thunk
from . import Arch, ElfArch, MachoArch, PeArch

ELF_MACHINE = 183         # EM_AARCH64
ELF_CLASS = 64
ORDER = "<"
ELF_FLAGS = 0
PAGE_SIZE = 0x10000       # GNU ld's and Go's max page size: runs on 4K and 64K kernels
TEXT_ADDR = 0x401000      # headers at 0x400000 (GNU ld's base), text one 4K page on
PAD = b"\x00\x00\x00\x00"  # udf #0: a stray jump into padding traps
RELA = True


def page(S, A, P):
    """Page(S + A) - Page(P): the 4 KB-page distance an ADRP adds to its own page."""
    return ((S + A) & ~0xFFF) - (P & ~0xFFF)


def _u(v):
    return v.astype(np.uint64)


def _field(lo: int, width: int, shift: int = 0):
    """_field returns an insert that puts value bits [shift+width-1:shift] into
    instruction bits [lo+width-1:lo], keeping the instruction's other bits."""
    mask = np.uint64(((1 << width) - 1) << lo)

    def insert(old, value):
        return (old & ~mask) | ((_u(value >> shift) << np.uint64(lo)) & mask)
    return insert


def _adr(shift: int):
    """_adr inserts a 21-bit value (X >> shift) into ADR/ADRP's immlo (bits 30:29,
    the value's low 2 bits) and immhi (bits 23:5, the rest)."""
    mask = np.uint64((3 << 29) | (0x7FFFF << 5))

    def insert(old, value):
        imm = _u(value >> shift)
        lo = (imm & np.uint64(3)) << np.uint64(29)
        hi = ((imm >> np.uint64(2)) & np.uint64(0x7FFFF)) << np.uint64(5)
        return (old & ~mask) | lo | hi
    return insert


imm26 = _field(0, 26, 2)      # B, BL
imm19 = _field(5, 19, 2)      # B.cond, CBZ/CBNZ, LDR (literal)
imm14 = _field(5, 14, 2)      # TBZ/TBNZ
imm16 = [_field(5, 16, 16 * g) for g in range(4)]  # MOVZ/MOVK, group g


def lo12(shift: int):
    """lo12 inserts X[11:shift] into an ADD or LDR/STR imm12 (bits 21:10)."""
    mask = np.uint64(0xFFF << 10)
    low = np.uint64(0xFFF)

    def insert(old, value):
        return (old & ~mask) | (((_u(value) & low) >> np.uint64(shift)) << np.uint64(10))
    return insert


# PE (lld-link's defaults for a 64-bit executable: ImageBase 0x140000000).
PE = PeArch(machine=0xAA64, image_base=0x140000000,
            # adrp x16, __imp_NAME; ldr x16, [x16, :lo12:__imp_NAME]; br x16
            thunk=bytes.fromhex("10 00 00 90 10 02 40 f9 00 02 1f d6"),
            thunk_relocs=((0, "R_AARCH64_ADR_PREL_PG_HI21", 0),
                          (4, "R_AARCH64_LDST64_ABS_LO12_NC", 0)),
            rebased=("R_AARCH64_ABS64",),
            fixed=("R_AARCH64_ABS32", "R_AARCH64_ABS16", "R_AARCH64_MOVW_UABS_G0",
                   "R_AARCH64_MOVW_UABS_G0_NC", "R_AARCH64_MOVW_UABS_G1",
                   "R_AARCH64_MOVW_UABS_G1_NC", "R_AARCH64_MOVW_UABS_G2",
                   "R_AARCH64_MOVW_UABS_G2_NC", "R_AARCH64_MOVW_UABS_G3"))

# Mach-O (ld64: 16 KiB pages on arm64; a stub is adrp/ldr/br through __got).
MACHO = MachoArch(cputype=0x0100000C, cpusubtype=0, page=0x4000,
                  stub=PE.thunk,   # adrp x16, NAME@GOT@PAGE; ldr x16, [x16, @PAGEOFF]; br x16
                  stub_relocs=((0, "R_AARCH64_ADR_PREL_PG_HI21", 0),
                               (4, "R_AARCH64_LDST64_ABS_LO12_NC", 0)),
                  rebased=("R_AARCH64_ABS64",), fixed=PE.fixed, sign=True)

HOWTOS = [
    Howto("R_AARCH64_NONE", 0, 0, none),
    Howto("R_AARCH64_ABS64", 257, 8, absolute),
    Howto("R_AARCH64_ABS32", 258, 4, absolute, either(32)),
    Howto("R_AARCH64_ABS16", 259, 2, absolute, either(16)),
    Howto("R_AARCH64_PREL64", 260, 8, pcrel),
    Howto("R_AARCH64_PREL32", 261, 4, pcrel, either(32)),
    Howto("R_AARCH64_PREL16", 262, 2, pcrel, either(16)),
    Howto("R_AARCH64_MOVW_UABS_G0", 263, 4, absolute, unsigned(16), 1, imm16[0]),
    Howto("R_AARCH64_MOVW_UABS_G0_NC", 264, 4, absolute, None, 1, imm16[0]),
    Howto("R_AARCH64_MOVW_UABS_G1", 265, 4, absolute, unsigned(32), 1, imm16[1]),
    Howto("R_AARCH64_MOVW_UABS_G1_NC", 266, 4, absolute, None, 1, imm16[1]),
    Howto("R_AARCH64_MOVW_UABS_G2", 267, 4, absolute, unsigned(48), 1, imm16[2]),
    Howto("R_AARCH64_MOVW_UABS_G2_NC", 268, 4, absolute, None, 1, imm16[2]),
    Howto("R_AARCH64_MOVW_UABS_G3", 269, 4, absolute, None, 1, imm16[3]),
    Howto("R_AARCH64_LD_PREL_LO19", 273, 4, pcrel, signed(21), 4, imm19),
    Howto("R_AARCH64_ADR_PREL_LO21", 274, 4, pcrel, signed(21), 1, _adr(0)),
    Howto("R_AARCH64_ADR_PREL_PG_HI21", 275, 4, page, signed(33), 1, _adr(12)),
    Howto("R_AARCH64_ADR_PREL_PG_HI21_NC", 276, 4, page, None, 1, _adr(12)),
    Howto("R_AARCH64_ADD_ABS_LO12_NC", 277, 4, absolute, None, 1, lo12(0)),
    Howto("R_AARCH64_LDST8_ABS_LO12_NC", 278, 4, absolute, None, 1, lo12(0)),
    Howto("R_AARCH64_TSTBR14", 279, 4, pcrel, signed(16), 4, imm14),
    Howto("R_AARCH64_CONDBR19", 280, 4, pcrel, signed(21), 4, imm19),
    Howto("R_AARCH64_JUMP26", 282, 4, pcrel, signed(28), 4, imm26),
    Howto("R_AARCH64_CALL26", 283, 4, pcrel, signed(28), 4, imm26),
    Howto("R_AARCH64_LDST16_ABS_LO12_NC", 284, 4, absolute, None, 2, lo12(1)),
    Howto("R_AARCH64_LDST32_ABS_LO12_NC", 285, 4, absolute, None, 4, lo12(2)),
    Howto("R_AARCH64_LDST64_ABS_LO12_NC", 286, 4, absolute, None, 8, lo12(3)),
    Howto("R_AARCH64_LDST128_ABS_LO12_NC", 299, 4, absolute, None, 16, lo12(4)),
    Howto("IMAGE_REL_ARM64_ADDR32NB", NO_ELF, 4, rva, unsigned(32)),
]


# Range-extension thunk (minild/thunks.py), lld's AArch64ABSLongThunk:
# ldr x16, #8; br x16; .xword S + A.
THUNKS = {n: Thunk(bytes.fromhex("50000058" "00021fd6") + b"\0" * 8, ((8, "R_AARCH64_ABS64"),), 0,
                   "__AArch64AbsLongThunk_", 8, 0, (("$x", 0), ("$d", 8)))
          for n in ("R_AARCH64_CALL26", "R_AARCH64_JUMP26")}

ARCHES = (
    Arch(name="arm64", ptr_size=ELF_CLASS // 8, order=ORDER, pad=PAD, howtos=HOWTOS,
         elf=ElfArch(machine=ELF_MACHINE, cls=ELF_CLASS, flags=ELF_FLAGS, rela=RELA,
                     text_addr=TEXT_ADDR, round=PAGE_SIZE, triple="aarch64-linux-gnu"),
         pe=PE, macho=MACHO, thunks=THUNKS),
)
