"""mips64: MIPS n64 (64-bit MIPS psABI), ELF64, big-endian ("mips64") or
little-endian ("mips64le").

Relocations (RELA: explicit addends). Instruction fields are the low bits of a
32-bit word in the file's byte order:
  R_MIPS_NONE     none
  R_MIPS_64       S + A                         data doubleword
  R_MIPS_32       S + A                         data word; fits signed or
                                                unsigned 32 (GNU ld does not
                                                check; a truncated address is
                                                never what the code meant)
  R_MIPS_PC32     S + A - P                     data word, pc-relative
  R_MIPS_26       (S + A) >> 2                  j/jal: the low 28 bits; the top
                                                bits come from P + 4, so the
                                                target must lie in the delay
                                                slot's 256 MB region, 4-aligned
  R_MIPS_HIGHEST  (S + A + 0x800080008000) >> 48  bits 48..63 } lui/daddiu/dsll
  R_MIPS_HIGHER   (S + A + 0x80008000) >> 32      bits 32..47 } chains that
  R_MIPS_HI16     (S + A + 0x8000) >> 16          bits 16..31 } build a 64-bit
  R_MIPS_LO16     S + A                           bits 0..15  } address
      (each part is rounded so that the sign-extended parts below it add up)
  R_MIPS_PC16     (S + A - P) >> 2              branches: signed 18-bit byte
                                                offset, 4-byte aligned
  R_MIPS_JALR     none                          a hint on jalr; left as it is
A record's r_info holds up to three types (r_type, r_type2, r_type3) applied in
turn; plain static code (gcc -O2 -fno-pic -mno-abicalls) only ever uses the
first, and `minild import` refuses composites. GOT, GP-relative and TLS types
are unknown here and rejected at import.
"""

from __future__ import annotations


from ..reloc import Howto, absolute, either, none, pcrel, signed
from . import Arch, ElfArch
from .mips import HI16, REGION, field, region26

ELF_MACHINE = 8           # EM_MIPS
ELF_CLASS = 64
ORDER = ">"
# What GNU ld writes for Debian gcc's objects: mips64r2 (Debian's baseline),
# noreorder; n64 has no ABI bit. qemu-mips64 picks its CPU model from the ISA bits.
ELF_FLAGS = 0x80000001
PAGE_SIZE = 0x10000       # GNU ld's and lld's max page size for MIPS
TEXT_ADDR = 0x120000200   # GNU ld's base 0x120000000; the headers fit below 0x200
PAD = b"\x00\x00\x00\x0d"  # break: a stray jump into padding traps
RELA = True


HOWTOS = [
    Howto("R_MIPS_NONE", 0, 0, none),
    Howto("R_MIPS_32", 2, 4, absolute, either(32)),
    Howto("R_MIPS_26", 4, 4, region26, (0, REGION - 1), 4, field(26, 2)),
    Howto("R_MIPS_HI16", 5, 4, absolute, None, 1, HI16),
    Howto("R_MIPS_LO16", 6, 4, absolute, None, 1, field(16)),
    Howto("R_MIPS_PC16", 10, 4, pcrel, signed(18), 4, field(16, 2)),
    Howto("R_MIPS_64", 18, 8, absolute),
    Howto("R_MIPS_HIGHER", 28, 4, absolute, None, 1, field(16, 32, 0x80008000)),
    Howto("R_MIPS_HIGHEST", 29, 4, absolute, None, 1, field(16, 48, 0x800080008000)),
    Howto("R_MIPS_JALR", 37, 0, none),
    Howto("R_MIPS_PC32", 248, 4, pcrel, either(32)),
]


ARCHES = (
    Arch(name="mips64", ptr_size=ELF_CLASS // 8, order=ORDER, pad=PAD, howtos=HOWTOS,
         elf=ElfArch(machine=ELF_MACHINE, cls=ELF_CLASS, flags=ELF_FLAGS, rela=RELA,
                     text_addr=TEXT_ADDR, round=PAGE_SIZE, triple="mips64-linux-gnuabi64")),
    Arch(name="mips64le", ptr_size=ELF_CLASS // 8, order="<", pad=b"\x0d\x00\x00\x00", howtos=HOWTOS,
         elf=ElfArch(machine=ELF_MACHINE, cls=ELF_CLASS, flags=ELF_FLAGS, rela=RELA,
                     text_addr=TEXT_ADDR, round=PAGE_SIZE, triple="mips64el-linux-gnuabi64")),
)
