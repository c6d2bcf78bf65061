"""arch: the registry of target architectures, one module per arch.

Each arch module builds its Arch records as literals (as Go's amd64.Init()
fills an ld.Arch) and lists them in ARCHES; a module may serve several names
(byte orders). An Arch is the common part (name, pointer size, byte order,
code padding, the Howtos of its relocations) plus one optional part per output
format, holding that format's numbers for the arch: an arch without a part
cannot be linked to that format (the error lists the arches that can). The
pipeline asks these records; it never branches on an arch name.

Every hook is declared below, with a None default, and documented here only:

  linker_symbols: {name: fn(ctx) -> address}
      symbols the linker defines when referenced and not defined (.TOC.);
      added to the format's own.
  check(ctx)
      after resolution: refuse what the arch cannot link. Raises LinkError;
      changes nothing. (No arch uses it today.)
  implicit_addends(howto_idx, offsets, data, symbols, arch) -> int64 array
      for `minild import` of REL objects: the addends stored in one section's
      places (relocations in file order), where a place is an instruction
      field rather than a plain data word. symbols holds each relocation's
      symbol (equal for the same symbol: MIPS HI16/LO16 pairing), arch this
      Arch (modules serving both byte orders).
  gensections(ctx)
      after the format's gensections, before dodata: sections the arch adds
      (arm's interworking veneers), through ctx.add_sections/add_symbols/
      add_relocs, retargeting relocations at them.
  thunks: {branch Howto name: minild.thunks.Thunk}
      (data) the range-extension thunk for each branch type that gets one
      when its target is out of reach (minild/thunks.py).
  refuse_symbols(st_other, st_type) -> [(mask, message)]
      for `minild import`: ELF symbols the arch cannot link, judged from what
      minild objects do not carry (ppc64: a .localentry offset in st_other).

ELF's r_info codec (mips64's n64 layout included) is format.elfstruct's.
Relocation arithmetic that needs link-wide bases (ppc64's TOC, riscv's
PCREL_LO12 pairing) is a named expression in minild.reloc, not a hook.
"""

from __future__ import annotations

import importlib
from typing import Callable

import msgspec
import numpy as np

from ..reloc import Howto

# arch name (as written in objects and on the command line) -> module name.
_MODULES = {
    "amd64": "amd64",
    "x86": "x86",
    "arm": "arm",
    "arm64": "arm64",
    "mips": "mips",
    "mipsle": "mips",
    "mips64": "mips64",
    "mips64le": "mips64",
    "ppc64": "ppc64",
    "ppc64le": "ppc64",
    "riscv64": "riscv64",
    "s390x": "s390x",
    "wasm": "wasm",
}


class ElfArch(msgspec.Struct, frozen=True):
    """ElfArch is ELF's part of an arch (Go: ld.Arch's ELF fields, ELFArch)."""

    machine: int            # e_machine
    cls: int                # ELFCLASS: 32 or 64
    flags: int              # e_flags of executables and relocatable objects
    rela: bool              # relocatable objects carry explicit addends
    text_addr: int          # default -T: the address of the first byte of .text
    round: int              # default -R: the max page size, PT_LOAD's p_align
    triple: str             # GNU target triple: the prefix of its cross binutils and gcc


class Plan9Arch(msgspec.Struct, frozen=True):
    """Plan9Arch is the plan 9 a.out part of an arch (Go: ld.Arch.Plan9Magic,
    Plan9_64Bit, and the Hplan9 case of the arch's archinit)."""

    magic: int              # the a.out magic, HDR_MAGIC (0x8000) included for 64-bit
    text_addr: int          # default -T: UTZERO + the header's size (Go's INITTEXT)
    round: int              # default -R: the kernel's UTROUND (Go's INITRND)

    @property
    def hdr64(self) -> bool:
        """hdr64: HDR_MAGIC's header expansion, an 8-byte entry after the 32 bytes."""
        return bool(self.magic & 0x8000)


class PeArch(msgspec.Struct, frozen=True):
    """PeArch is the PE/COFF part of an arch (Go: the Hwindows cases; lld's COFF
    target): the COFF machine, lld's default image base, the import thunk, and
    which relocations the base relocation table must cover."""

    machine: int            # IMAGE_FILE_MACHINE_*
    image_base: int         # default -T: lld-link's for an executable
    # An import thunk, `jmp *__imp_NAME` (GNU ld's and lld's from import
    # libraries): its code and its relocations (offset, Howto name, addend)
    # against __imp_NAME.
    thunk: bytes
    thunk_relocs: tuple[tuple[int, str, int], ...]
    # Howto names: absolute pointer-size relocations, each a base relocation
    # (DIR64 / HIGHLOW) in .reloc; and absolute ones that cannot be rebased
    # (refused unless --no-dynamicbase).
    rebased: tuple[str, ...]
    fixed: tuple[str, ...]


class MachoArch(msgspec.Struct, frozen=True):
    """MachoArch is the Mach-O part of an arch (ld64's and lld's MachO targets,
    Go's Hdarwin): CPU type, page size, the import stub, and which
    relocations need a rebase when dyld slides the image."""

    cputype: int
    cpusubtype: int
    page: int                # segment alignment in memory and in the file
    # An import stub, `jmp *got[NAME]`: code and relocations (offset, Howto
    # name, addend) against NAME's __got slot.
    stub: bytes
    stub_relocs: tuple[tuple[int, str, int], ...]
    rebased: tuple[str, ...]  # absolute pointer-size relocations: one rebase each
    fixed: tuple[str, ...]    # absolute ones a PIE cannot express: refused
    sign: bool               # an ad-hoc code signature by default (arm64: the kernel requires it)


class WasmArch(msgspec.Struct, frozen=True):
    """WasmArch is the wasm format's part of an arch: only wasm32 has it; the
    format's numbers (global base, stack size) are flags, not the arch's."""


class Arch(msgspec.Struct):
    """Arch is one target as the pipeline sees it (Go: ld.Arch)."""

    name: str
    ptr_size: int               # bytes of an address
    order: str                  # numpy/struct byte order: "<" or ">"
    pad: bytes                  # fills gaps in text (a trap where one exists)
    howtos: list[Howto]         # the relocation types objects may name
    # One part per output format; None: the format cannot be linked for this arch.
    elf: ElfArch | None = None
    plan9: Plan9Arch | None = None
    pe: PeArch | None = None
    macho: MachoArch | None = None
    wasm: WasmArch | None = None
    # Hooks (documented in this module's docstring).
    linker_symbols: dict[str, Callable] | None = None
    check: Callable | None = None
    implicit_addends: Callable | None = None
    refuse_symbols: Callable | None = None
    gensections: Callable | None = None
    thunks: dict | None = None
    # Link-wide values of minild.reloc's expressions (data, not hooks on columns):
    # fn(ctx) -> the TOC base that reloc.toc and reloc.tocbase read;
    toc_base: Callable | None = None
    # (high, low, offset, symbol): a function whose first two words carry a
    # `high` and a `low` relocation against `symbol` has a global entry that
    # reloc.call_local skips by `offset` (ppc64 ELFv2's addis/addi r2 pair).
    local_entry: tuple[str, str, int, str] | None = None
    # Derived from howtos.
    index: dict[str, int] = msgspec.field(default_factory=dict)   # psABI name -> howto
    widths: np.ndarray | None = None                              # place size per howto

    def __post_init__(self):
        self.index = {h.name: i for i, h in enumerate(self.howtos)}
        self.widths = np.array([h.size for h in self.howtos], np.int64)

    def part(self, fmt: str):
        """part returns the arch's part for a format's part name (Format.part),
        or None: the arch cannot be linked to that format."""
        return {"elf": self.elf, "plan9": self.plan9, "pe": self.pe, "macho": self.macho,
                "wasm": self.wasm}[fmt]


def names() -> list[str]:
    return list(_MODULES)


def available() -> list[str]:
    """available lists the arch names whose module is present."""
    out = []
    for n in _MODULES:
        try:
            lookup(n)
        except (KeyError, ModuleNotFoundError):
            continue
        out.append(n)
    return out


_cache: dict[str, Arch] = {}


def lookup(name: str) -> Arch:
    """lookup returns the Arch for a name; KeyError if unknown, ModuleNotFoundError
    if the arch is named but its module does not exist yet."""
    if name in _cache:
        return _cache[name]
    mod = importlib.import_module(f"{__name__}.{_MODULES[name]}")
    for a in mod.ARCHES:
        _cache[a.name] = a
    return _cache[name]
