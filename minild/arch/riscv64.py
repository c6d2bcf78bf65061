"""riscv64: RISC-V RV64 (RISC-V ELF psABI, LP64D), ELF64 little-endian.

Relocations (RELA; instructions are little-endian 32-bit words, or 16-bit
halfwords for the C extension, aligned to 2 bytes):
  R_RISCV_64/32        S + A       data words (32: fits signed or unsigned 32)
  R_RISCV_ADDn/SUBn    V +/- (S+A) n = 8, 16, 32, 64: label differences GNU as
                                   cannot resolve (jump tables under medany,
                                   code whose size relaxation could change)
  R_RISCV_32_PCREL     S + A - P   32-bit pc-relative data word
  R_RISCV_SETn         S + A       n = 8, 16, 32: replace the field (DWARF
                                   call frames, with SUB6/SET6 in the low 6
                                   bits of DW_CFA_advance_loc's byte)
  R_RISCV_BRANCH       S + A - P   B-type (beq, ...): signed 13 bits, even
  R_RISCV_JAL          S + A - P   J-type (jal, j): signed 21 bits (+-1 MiB), even
  R_RISCV_RVC_BRANCH   S + A - P   CB-type (c.beqz/c.bnez): signed 9 bits, even
  R_RISCV_RVC_JUMP     S + A - P   CJ-type (c.j): signed 12 bits, even
  R_RISCV_CALL(_PLT)   S + A - P   an auipc+jalr pair (8 bytes); a static link
                                   has no PLT, so CALL_PLT is CALL
  R_RISCV_PCREL_HI20   S + A - P   auipc: the upper 20 bits, rounded so that the
                                   sign-extended low 12 bits add back
  R_RISCV_PCREL_LO12_I/S           the low 12 bits of the *paired* HI20's value:
                                   the symbol is the label of that auipc, not
                                   the target (reloc.pcrel_lo)
  R_RISCV_HI20         S + A       lui: the absolute address's upper 20 bits
  R_RISCV_LO12_I/S     S + A       I-type (addi, ld) / S-type (sd) low 12 bits
  R_RISCV_RELAX, R_RISCV_ALIGN     hints for linker relaxation: accepted and
                                   left alone (minild does not relax; the
                                   padding nops GNU as placed stay and execute)
HI20-style values must satisfy (value + 0x800) fitting signed 32 bits, i.e. the
target lies within +-2 GiB (absolute: in the low or high 2 GiB). GOT, TLS and
gp-relative types need tables or a gp a static minild link does not set up:
they are unknown types here and rejected at load time.
"""

import numpy as np

from ..reloc import Howto, absolute, either, none, pcrel, pcrel_hi, pcrel_lo, signed
from . import Arch, ElfArch

ELF_MACHINE = 243         # EM_RISCV
ELF_CLASS = 64
ORDER = "<"
ELF_FLAGS = 0x5           # EF_RISCV_RVC | EF_RISCV_FLOAT_ABI_DOUBLE, as gcc's rv64gc objects
PAGE_SIZE = 0x1000        # GNU ld's ELF_MAXPAGESIZE for RISC-V
TEXT_ADDR = 0x11000       # headers on the page at 0x10000, GNU ld's base
PAD = b"\x00\x00"         # the all-zero halfword is defined illegal: a stray jump traps
RELA = True

_U = np.uint64


def _u(v):
    return v.astype(np.uint64)


def _hi20(v):
    # Round so that hi20 << 12 plus the sign-extended lo12 gives back v.
    return (_u(v) + _U(0x800)) & _U(0xFFFFF000)


def _itype(old, v):
    return (old & _U(0x000FFFFF)) | ((_u(v) & _U(0xFFF)) << _U(20))


def _stype(old, v):
    u = _u(v)
    return (old & _U(0x01FFF07F)) | ((u & _U(0xFE0)) << _U(20)) | ((u & _U(0x1F)) << _U(7))


def _utype(old, v):
    return (old & _U(0xFFF)) | _hi20(v)


def _btype(old, v):
    u = _u(v)
    bit = lambda s, n: (u >> _U(s)) & _U((1 << n) - 1)  # noqa: E731
    return ((old & _U(0x01FFF07F)) | (bit(12, 1) << _U(31)) | (bit(5, 6) << _U(25))
            | (bit(1, 4) << _U(8)) | (bit(11, 1) << _U(7)))


def _jtype(old, v):
    u = _u(v)
    bit = lambda s, n: (u >> _U(s)) & _U((1 << n) - 1)  # noqa: E731
    return ((old & _U(0xFFF)) | (bit(20, 1) << _U(31)) | (bit(1, 10) << _U(21))
            | (bit(11, 1) << _U(20)) | (bit(12, 8) << _U(12)))


def _cbtype(old, v):
    # offset[8|4:3] in bits 12:10, offset[7:6|2:1|5] in bits 6:2
    u = _u(v)
    bit = lambda s, n: (u >> _U(s)) & _U((1 << n) - 1)  # noqa: E731
    return ((old & _U(0xE383)) | (bit(8, 1) << _U(12)) | (bit(3, 2) << _U(10))
            | (bit(6, 2) << _U(5)) | (bit(1, 2) << _U(3)) | (bit(5, 1) << _U(2)))


def _cjtype(old, v):
    # offset[11|4|9:8|10|6|7|3:1|5] in bits 12:2
    u = _u(v)
    bit = lambda s, n: (u >> _U(s)) & _U((1 << n) - 1)  # noqa: E731
    return ((old & _U(0xE003)) | (bit(11, 1) << _U(12)) | (bit(4, 1) << _U(11))
            | (bit(8, 2) << _U(9)) | (bit(10, 1) << _U(8)) | (bit(6, 1) << _U(7))
            | (bit(7, 1) << _U(6)) | (bit(1, 3) << _U(3)) | (bit(5, 1) << _U(2)))


def _call(old, v):
    # auipc in the low word, jalr in the high word of the little-endian u64.
    lo, hi = old & _U(0xFFFFFFFF), old >> _U(32)
    return _utype(lo, v) | (_itype(hi, v) << _U(32))


def _set6(old, v):
    return (old & _U(0xC0)) | (_u(v) & _U(0x3F))


def _sub6(old, v):
    return (old & _U(0xC0)) | ((old - _u(v)) & _U(0x3F))


def _add(old, v):
    return old + _u(v)


def _sub(old, v):
    return old - _u(v)


# (value + 0x800) must fit signed 32 for lui/auipc to reach it.
_HI = (-(1 << 31) - 0x800, (1 << 31) - 0x801)

HOWTOS = [
    Howto("R_RISCV_NONE", 0, 0, none),
    Howto("R_RISCV_32", 1, 4, absolute, either(32)),
    Howto("R_RISCV_64", 2, 8, absolute),
    Howto("R_RISCV_BRANCH", 16, 4, pcrel, signed(13), 2, _btype),
    Howto("R_RISCV_JAL", 17, 4, pcrel, signed(21), 2, _jtype),
    Howto("R_RISCV_CALL", 18, 8, pcrel, _HI, 1, _call),
    Howto("R_RISCV_CALL_PLT", 19, 8, pcrel, _HI, 1, _call),
    Howto("R_RISCV_PCREL_HI20", 23, 4, pcrel_hi, _HI, 1, _utype),
    Howto("R_RISCV_PCREL_LO12_I", 24, 4, pcrel_lo, None, 1, _itype),
    Howto("R_RISCV_PCREL_LO12_S", 25, 4, pcrel_lo, None, 1, _stype),
    Howto("R_RISCV_HI20", 26, 4, absolute, _HI, 1, _utype),
    Howto("R_RISCV_LO12_I", 27, 4, absolute, None, 1, _itype),
    Howto("R_RISCV_LO12_S", 28, 4, absolute, None, 1, _stype),
    # SETn before ADDn/SUBn: apply_block applies types in list order, and a
    # SET and a SUB at one place mean "end - start" only in that order.
    Howto("R_RISCV_SET6", 53, 1, absolute, None, 1, _set6),
    Howto("R_RISCV_SET8", 54, 1, absolute),
    Howto("R_RISCV_SET16", 55, 2, absolute),
    Howto("R_RISCV_SET32", 56, 4, absolute),
    Howto("R_RISCV_ADD8", 33, 1, absolute, None, 1, _add),
    Howto("R_RISCV_ADD16", 34, 2, absolute, None, 1, _add),
    Howto("R_RISCV_ADD32", 35, 4, absolute, None, 1, _add),
    Howto("R_RISCV_ADD64", 36, 8, absolute, None, 1, _add),
    Howto("R_RISCV_SUB8", 37, 1, absolute, None, 1, _sub),
    Howto("R_RISCV_SUB16", 38, 2, absolute, None, 1, _sub),
    Howto("R_RISCV_SUB32", 39, 4, absolute, None, 1, _sub),
    Howto("R_RISCV_SUB64", 40, 8, absolute, None, 1, _sub),
    Howto("R_RISCV_SUB6", 52, 1, absolute, None, 1, _sub6),
    Howto("R_RISCV_ALIGN", 43, 0, none),
    Howto("R_RISCV_RVC_BRANCH", 44, 2, pcrel, signed(9), 2, _cbtype),
    Howto("R_RISCV_RVC_JUMP", 45, 2, pcrel, signed(12), 2, _cjtype),
    Howto("R_RISCV_RELAX", 51, 0, none),
    Howto("R_RISCV_32_PCREL", 57, 4, pcrel, signed(32)),
]


ARCHES = (
    Arch(name="riscv64", ptr_size=ELF_CLASS // 8, order=ORDER, pad=PAD, howtos=HOWTOS,
         elf=ElfArch(machine=ELF_MACHINE, cls=ELF_CLASS, flags=ELF_FLAGS, rela=RELA,
                     text_addr=TEXT_ADDR, round=PAGE_SIZE, triple="riscv64-linux-gnu")),
)
