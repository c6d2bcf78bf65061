"""amd64: x86-64 (System V psABI), ELF64 little-endian.

Relocations (RELA; all fields little-endian, unaligned):
  R_X86_64_64     S + A       64-bit absolute, no check
  R_X86_64_PC64   S + A - P   64-bit pc-relative
  R_X86_64_32     S + A       zero-extended by the CPU: must fit unsigned 32
  R_X86_64_32S    S + A       sign-extended by the CPU: must fit signed 32
  R_X86_64_PC32   S + A - P   rip-relative data and branches: signed 32
  R_X86_64_PLT32  L + A - P   a call through the PLT; a static link has no PLT,
                              so L = S and it is PC32 (as lld and GNU ld do)
  R_X86_64_16/8   S + A       fit signed or unsigned 16/8 (GNU's bitfield check)
  R_X86_64_PC16/8 S + A - P   signed 16/8
  IMAGE_REL_AMD64_ADDR32NB  S + A - ImageBase   PE only (COFF's name; ELF has none): an
                              image-relative address (.pdata, .xdata, import tables)
GOT- and TLS-relative types need a GOT or a TLS block, which a static minild
link does not build: they are unknown types here and rejected at load time.
"""

from ..reloc import NO_ELF, Howto, absolute, either, none, pcrel, rva, signed, unsigned
from . import Arch, ElfArch, MachoArch, PeArch, Plan9Arch

ELF_MACHINE = 62          # EM_X86_64
ELF_CLASS = 64
ORDER = "<"
ELF_FLAGS = 0
PAGE_SIZE = 0x1000
TEXT_ADDR = 0x401000      # GNU ld's and Go's layout: headers at 0x400000
PAD = b"\xcc"             # int3: a stray jump into padding traps
RELA = True

# PE (lld-link's defaults for an executable: ImageBase 0x140000000 for 64-bit).
PE = PeArch(machine=0x8664, image_base=0x140000000,
            thunk=b"\xff\x25\x00\x00\x00\x00\xcc\xcc",       # jmp *__imp_NAME(%rip)
            thunk_relocs=((2, "R_X86_64_PC32", -4),),
            rebased=("R_X86_64_64",),
            fixed=("R_X86_64_32", "R_X86_64_32S", "R_X86_64_16", "R_X86_64_8"))

# Mach-O (ld64: 4 KiB pages on x86_64; a stub is a 6-byte jmp through __got).
MACHO = MachoArch(cputype=0x01000007, cpusubtype=3, page=0x1000,
                  stub=b"\xff\x25\x00\x00\x00\x00",             # jmp *NAME@GOT(%rip)
                  stub_relocs=((2, "R_X86_64_PC32", -4),),
                  rebased=("R_X86_64_64",),
                  fixed=("R_X86_64_32", "R_X86_64_32S", "R_X86_64_16", "R_X86_64_8"),
                  sign=False)

# plan 9 (Go's cmd/link/internal/amd64/obj.go, archinit's Hplan9 case: HEADR =
# 32 + 8, INITTEXT = 0x200000 + HEADR, INITRND = 0x200000; Plan9Magic 4*26*26+7
# with Plan9_64Bit, i.e. S_MAGIC = HDR_MAGIC | 0xa97 in plan 9's a.out.h).
PLAN9 = Plan9Arch(magic=0x8A97, text_addr=0x200028, round=0x200000)

HOWTOS = [
    Howto("R_X86_64_NONE", 0, 0, none),
    Howto("R_X86_64_64", 1, 8, absolute),
    Howto("R_X86_64_PC32", 2, 4, pcrel, signed(32)),
    Howto("R_X86_64_PLT32", 4, 4, pcrel, signed(32)),
    Howto("R_X86_64_32", 10, 4, absolute, unsigned(32)),
    Howto("R_X86_64_32S", 11, 4, absolute, signed(32)),
    Howto("R_X86_64_16", 12, 2, absolute, either(16)),
    Howto("R_X86_64_PC16", 13, 2, pcrel, signed(16)),
    Howto("R_X86_64_8", 14, 1, absolute, either(8)),
    Howto("R_X86_64_PC8", 15, 1, pcrel, signed(8)),
    Howto("R_X86_64_PC64", 24, 8, pcrel),
    Howto("IMAGE_REL_AMD64_ADDR32NB", NO_ELF, 4, rva, unsigned(32)),
]


ARCHES = (
    Arch(name="amd64", ptr_size=ELF_CLASS // 8, order=ORDER, pad=PAD, howtos=HOWTOS,
         elf=ElfArch(machine=ELF_MACHINE, cls=ELF_CLASS, flags=ELF_FLAGS, rela=RELA,
                     text_addr=TEXT_ADDR, round=PAGE_SIZE, triple="x86_64-linux-gnu"),
         plan9=PLAN9, pe=PE, macho=MACHO),
)
