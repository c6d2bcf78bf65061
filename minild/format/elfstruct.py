"""elfstruct: ELF's numbers and record layouts, once, for every ELF reader and writer.

The executable writer (elf.py), the relocatable-object writer (elfrel.py) and
`minild import`'s reader (minild.importer) all take ELF's constants, the header
structs, the symbol, relocation and section-header dtypes, and the r_info codec
from here: one layer, in both classes and byte orders.

r_info: ELF64 packs sym << 32 | type, ELF32 sym << 8 | type; except MIPS
ELF64 (n64), whose r_info is r_sym (a u32 in file byte order) then the bytes
r_ssym, r_type3, r_type2, r_type: on big-endian that reads as the usual
sym << 32 | type, on little-endian it does not (the type lands in the top byte).
"""

from __future__ import annotations

import struct

import numpy as np

# e_type, e_machine
ET_REL, ET_EXEC = 1, 2
EM_MIPS = 8
# program headers
PT_LOAD, PT_GNU_STACK = 1, 0x6474E551
PF_X, PF_W, PF_R = 1, 2, 4
# section types and flags
SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_RELA, SHT_NOBITS, SHT_REL = 1, 2, 3, 4, 8, 9
SHT_GROUP = 17
SHT_INIT_ARRAY, SHT_FINI_ARRAY, SHT_PREINIT_ARRAY, SHT_SYMTAB_SHNDX = 14, 15, 16, 18
SHT_LOPROC = 0x70000000
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR, SHF_INFO_LINK = 0x1, 0x2, 0x4, 0x40
SHF_GROUP, SHF_TLS, SHF_COMPRESSED = 0x200, 0x400, 0x800
ELFCOMPRESS_ZLIB = 1
# special section indexes
SHN_UNDEF, SHN_LORESERVE, SHN_ABS, SHN_COMMON, SHN_XINDEX = 0, 0xFF00, 0xFFF1, 0xFFF2, 0xFFFF
# symbol types and bindings
STT_NOTYPE, STT_OBJECT, STT_FUNC, STT_SECTION, STT_FILE, STT_COMMON, STT_TLS = 0, 1, 2, 3, 4, 5, 6
STT_GNU_IFUNC = 10
STB_LOCAL, STB_GLOBAL, STB_WEAK = 0, 1, 2

SHDR_FIELDS = ("sh_name", "sh_type", "sh_flags", "sh_addr", "sh_offset", "sh_size", "sh_link",
               "sh_info", "sh_addralign", "sh_entsize")
EHDR_FIELDS = ("e_type", "e_machine", "e_version", "e_entry", "e_phoff", "e_shoff", "e_flags",
               "e_ehsize", "e_phentsize", "e_phnum", "e_shentsize", "e_shnum", "e_shstrndx")


class Layout:
    """Layout holds the structs and dtypes of one ELF class and byte order."""

    def __init__(self, elf_class: int, order: str):
        self.cls, self.order = elf_class, order
        o, w = order, ("u8" if elf_class == 64 else "u4")
        W = "Q" if elf_class == 64 else "I"
        self.ehdr = struct.Struct(f"{o}16sHHI{W}{W}{W}IHHHHHH")
        if elf_class == 64:
            self.phdr = struct.Struct(f"{o}IIQQQQQQ")
            self.shdr = struct.Struct(f"{o}IIQQQQIIQQ")
            self.sym = np.dtype([("name", o + "u4"), ("info", "u1"), ("other", "u1"),
                                 ("shndx", o + "u2"), ("value", o + "u8"), ("size", o + "u8")])
        else:
            self.phdr = struct.Struct(f"{o}IIIIIIII")
            self.shdr = struct.Struct(f"{o}IIIIIIIIII")
            self.sym = np.dtype([("name", o + "u4"), ("value", o + "u4"), ("size", o + "u4"),
                                 ("info", "u1"), ("other", "u1"), ("shndx", o + "u2")])
        self.shdr_dtype = np.dtype([(n, o + "u4" if n in ("sh_name", "sh_type", "sh_link",
                                                          "sh_info") else o + w)
                                    for n in SHDR_FIELDS])

    def rel(self, rela: bool) -> np.dtype:
        """rel is one relocation record: Elf_Rel, or Elf_Rela with rela."""
        o, w = self.order, ("u8" if self.cls == 64 else "u4")
        fields = [("offset", o + w), ("info", o + w)]
        if rela:
            fields.append(("addend", o + ("i8" if self.cls == 64 else "i4")))
        return np.dtype(fields)

    def pack_phdr(self, type_, flags, off, vaddr, filesz, memsz, align) -> bytes:
        if self.cls == 64:
            return self.phdr.pack(type_, flags, off, vaddr, vaddr, filesz, memsz, align)
        return self.phdr.pack(type_, off, vaddr, vaddr, filesz, memsz, flags, align)

    def pack_shdr(self, name, type_, flags, addr, off, size, link, info, align, entsize) -> bytes:
        return self.shdr.pack(name, type_, flags, addr, off, size, link, info, align, entsize)


def ident(elf_class: int, order: str) -> bytes:
    """ident is e_ident: magic, class, byte order, version (OS ABI: System V)."""
    return (b"\x7fELF" + bytes([1 if elf_class == 32 else 2, 1 if order == "<" else 2, 1])
            ).ljust(16, b"\0")


def _n64(elf_class: int, machine: int) -> bool:
    return elf_class == 64 and machine == EM_MIPS


def r_info(sym: np.ndarray, types: np.ndarray, elf_class: int, order: str,
           machine: int) -> np.ndarray:
    """r_info packs symbol and type columns into r_info (the module docstring)."""
    sym, types = sym.astype(np.uint64), types.astype(np.uint64)
    if elf_class == 32:
        return (sym << np.uint64(8)) | types
    if _n64(elf_class, machine) and order == "<":
        return sym | (types << np.uint64(56))
    return (sym << np.uint64(32)) | types


def split_info(info: np.ndarray, elf_class: int, order: str,
               machine: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """split_info unpacks r_info into symbol and type columns (int64), and a
    mask of MIPS n64 records whose r_type2 or r_type3 is not NONE (a composite
    relocation, with no single type)."""
    if elf_class == 32:
        sym, typ = (info >> 8).astype(np.int64), (info & 0xFF).astype(np.int64)
        return sym, typ, np.zeros(len(info), bool)
    if _n64(elf_class, machine):
        raw = info.astype(order + "u8").view(np.uint8).reshape(-1, 8)
        sym = raw[:, :4].copy().view(order + "u4").ravel().astype(np.int64)
        t3, t2, t1 = raw[:, 5], raw[:, 6], raw[:, 7]
        return sym, t1.astype(np.int64), (t2 != 0) | (t3 != 0)
    sym, typ = (info >> 32).astype(np.int64), (info & 0xFFFFFFFF).astype(np.int64)
    return sym, typ, np.zeros(len(info), bool)
