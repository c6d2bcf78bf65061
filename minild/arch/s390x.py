"""s390x: IBM Z 64-bit (s390x ELF ABI supplement), ELF64 big-endian.

Relocations (RELA; instructions are 2, 4 or 6 bytes, halfword-aligned; a
relocated field sits inside the instruction, the addend makes up for it: larl's
target is msg+2 because P is the field, 2 bytes past the opcode):
  R_390_64/32/16/8   S + A       data (32/16/8 fit signed or unsigned)
  R_390_12           S + A       unsigned 12-bit displacement (la, l, st)
  R_390_20           S + A       signed 20-bit long displacement (lay, lg):
                                 DL (12 bits) then DH (8 bits)
  R_390_PC64/32/16   S + A - P   pc-relative data words (signed)
  R_390_PC32DBL      (S + A - P) >> 1  larl, lrl, brasl, brcl (jg): halfwords,
                                 signed 32 (+-4 GiB); the target must be even
  R_390_PC16DBL      (S + A - P) >> 1  brc (j), brct, brasl's short forms:
                                 signed 16 halfwords (+-64 KiB); even target
  R_390_PLT32DBL/PLT16DBL/PLT32/PLT64  calls `foo@PLT`: a static link has no
                                 PLT, so L = S and they are their PC twins
GOT-, GOTOFF- and TLS-relative types need tables a static minild link does not
build: they are unknown types here and rejected at load time.
"""

import numpy as np

from ..reloc import Howto, absolute, either, none, pcrel, signed, unsigned
from . import Arch, ElfArch

ELF_MACHINE = 22          # EM_S390
ELF_CLASS = 64
ORDER = ">"
ELF_FLAGS = 0
PAGE_SIZE = 0x1000        # GNU ld's ELF_MAXPAGESIZE for s390x
TEXT_ADDR = 0x1001000     # headers on the page at 0x1000000, GNU ld's base
PAD = b"\x00\x00"         # opcode 0x00 is invalid: a stray branch traps (SIGILL)
RELA = True

_U = np.uint64


def _dbl(old, v):
    # Relative to halfwords: the field holds the byte distance halved.
    return (v >> 1).astype(np.uint64)


def _disp12(old, v):
    # The halfword is B(4 bits) D(12 bits): keep the base register.
    return (old & _U(0xF000)) | (v.astype(np.uint64) & _U(0xFFF))


def _disp20(old, v):
    # The word is B(4) DL(12) DH(8) opcode(8): the low 12 bits, then the high 8.
    u = v.astype(np.uint64)
    return (old & _U(0xF00000FF)) | ((u & _U(0xFFF)) << _U(16)) | ((u & _U(0xFF000)) >> _U(4))


HOWTOS = [
    Howto("R_390_NONE", 0, 0, none),
    Howto("R_390_8", 1, 1, absolute, either(8)),
    Howto("R_390_12", 2, 2, absolute, unsigned(12), 1, _disp12),
    Howto("R_390_16", 3, 2, absolute, either(16)),
    Howto("R_390_32", 4, 4, absolute, either(32)),
    Howto("R_390_PC32", 5, 4, pcrel, signed(32)),
    Howto("R_390_PLT32", 8, 4, pcrel, signed(32)),
    Howto("R_390_PC16", 16, 2, pcrel, signed(16)),
    Howto("R_390_PC16DBL", 17, 2, pcrel, signed(17), 2, _dbl),
    Howto("R_390_PLT16DBL", 18, 2, pcrel, signed(17), 2, _dbl),
    Howto("R_390_PC32DBL", 19, 4, pcrel, signed(33), 2, _dbl),
    Howto("R_390_PLT32DBL", 20, 4, pcrel, signed(33), 2, _dbl),
    Howto("R_390_64", 22, 8, absolute),
    Howto("R_390_PC64", 23, 8, pcrel),
    Howto("R_390_PLT64", 25, 8, pcrel),
    Howto("R_390_20", 57, 4, absolute, signed(20), 1, _disp20),
]


ARCHES = (
    Arch(name="s390x", ptr_size=ELF_CLASS // 8, order=ORDER, pad=PAD, howtos=HOWTOS,
         elf=ElfArch(machine=ELF_MACHINE, cls=ELF_CLASS, flags=ELF_FLAGS, rela=RELA,
                     text_addr=TEXT_ADDR, round=PAGE_SIZE, triple="s390x-linux-gnu")),
)
