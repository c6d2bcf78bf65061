"""x86: i386 (System V i386 psABI), ELF32 little-endian.

Relocations (REL in relocatable objects: the addend sits in the place; minild
objects always carry it explicitly, so the place's old contents are ignored):
  R_386_32      S + A       32-bit absolute (wraps; fits signed or unsigned)
  R_386_PC32    S + A - P   pc-relative calls, jumps and data
  R_386_PLT32   L + A - P   a call through the PLT; static link: L = S
  R_386_16/8    S + A       fit signed or unsigned 16/8
  R_386_PC16/8  S + A - P   signed 16/8
  IMAGE_REL_I386_DIR32NB  S + A - ImageBase   PE only (COFF's name; ELF has none): an
                            image-relative address (import tables)
GOT-, GOTOFF- and TLS-relative types need tables a static minild link does not
build: they are unknown types here and rejected at load time.
"""

from ..reloc import NO_ELF, Howto, absolute, either, none, pcrel, rva, signed, unsigned
from . import Arch, ElfArch, PeArch, Plan9Arch

ELF_MACHINE = 3           # EM_386
ELF_CLASS = 32
ORDER = "<"
ELF_FLAGS = 0
PAGE_SIZE = 0x1000
TEXT_ADDR = 0x8049000     # GNU ld's layout: headers at 0x8048000
PAD = b"\xcc"             # int3
RELA = False

# PE (lld-link's defaults for a 32-bit executable: ImageBase 0x400000).
PE = PeArch(machine=0x14C, image_base=0x400000,
            thunk=b"\xff\x25\x00\x00\x00\x00\xcc\xcc",       # jmp *__imp_NAME
            thunk_relocs=((2, "R_386_32", 0),),
            rebased=("R_386_32",), fixed=("R_386_16", "R_386_8"))

# plan 9 (Go's cmd/link/internal/x86/obj.go, archinit's Hplan9 case: HEADR = 32,
# INITTEXT = 4096 + HEADR, INITRND = 4096; Plan9Magic 4*11*11+7, I_MAGIC).
PLAN9 = Plan9Arch(magic=0x1EB, text_addr=0x1020, round=0x1000)

HOWTOS = [
    Howto("R_386_NONE", 0, 0, none),
    Howto("R_386_32", 1, 4, absolute, either(32)),
    Howto("R_386_PC32", 2, 4, pcrel, either(32)),
    Howto("R_386_PLT32", 4, 4, pcrel, either(32)),
    Howto("R_386_16", 20, 2, absolute, either(16)),
    Howto("R_386_PC16", 21, 2, pcrel, signed(16)),
    Howto("R_386_8", 22, 1, absolute, either(8)),
    Howto("R_386_PC8", 23, 1, pcrel, signed(8)),
    Howto("IMAGE_REL_I386_DIR32NB", NO_ELF, 4, rva, unsigned(32)),
]


ARCHES = (
    Arch(name="x86", ptr_size=ELF_CLASS // 8, order=ORDER, pad=PAD, howtos=HOWTOS,
         elf=ElfArch(machine=ELF_MACHINE, cls=ELF_CLASS, flags=ELF_FLAGS, rela=RELA,
                     text_addr=TEXT_ADDR, round=PAGE_SIZE, triple="i686-linux-gnu"),
         plan9=PLAN9, pe=PE),
)
