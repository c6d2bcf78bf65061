"""arch: the registry of target architectures, one module per arch.

Each module holds data and small pure functions: ELF constants, defaults for the
text address and rounding, the code padding, and a Howto per relocation type
(see minild.reloc). The pipeline asks the Arch object built here; it never
branches on an arch name.

A module defines ELF_MACHINE, ELF_CLASS, ORDER ("<" or ">"), ELF_FLAGS,
PAGE_SIZE, TEXT_ADDR, PAD, RELA and HOWTOS (module docstring: a summary of the
ABI's relocations). One module may serve several arch names (byte orders):
then `variant(name) -> dict` overrides any of those constants, or hooks, per name.
Optional hooks, each called only if the module (or variant) defines it:

  linker_symbols() -> {name: fn(ctx) -> address}
      symbols the linker defines when referenced and not defined (.TOC., ...)
  adjust_relocs(ctx, relocs)
      after layout, before asmb: may rewrite the columns relocs.S/A/P (e.g. a
      PCREL_LO12 that names the label of its PCREL_HI20). Vectorized only.
  implicit_addends(howto_idx, offsets, data[, symbols][, arch]) -> int64 array
      for `minild import` of REL objects: the addends stored in one section's
      places (relocations in file order), where a place is an instruction
      field rather than a plain data word. Every place is inside data. The
      keyword parameters are passed only if the hook names them: symbols (per
      relocation; equal for the same symbol) for pairing rules such as MIPS
      HI16/LO16, arch (this Arch) for modules serving both byte orders.
  r_info(sym, types) -> uint64 array
      for --externallink: the r_info of relocation records, where the ELF
      default (sym << 32 | type, or << 8 for ELF32) is not the layout
      (mips64le: the n64 three-type r_info read as a little-endian word).
  refuse_symbols(st_other, st_type) -> [(mask, message)]
      for `minild import`: ELF symbols the arch cannot link, judged from what
      minild objects do not carry (ppc64: a .localentry offset in st_other).
"""

from __future__ import annotations

import importlib
from types import ModuleType

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
}

# arch name -> GNU target triple: the prefix of its cross binutils and gcc, used
# to find the external linker for --externallink.
_TRIPLES = {
    "amd64": "x86_64-linux-gnu", "x86": "i686-linux-gnu", "arm": "arm-linux-gnueabihf",
    "arm64": "aarch64-linux-gnu", "mips": "mips-linux-gnu", "mipsle": "mipsel-linux-gnu",
    "mips64": "mips64-linux-gnuabi64", "mips64le": "mips64el-linux-gnuabi64",
    "ppc64": "powerpc64-linux-gnu", "ppc64le": "powerpc64le-linux-gnu",
    "riscv64": "riscv64-linux-gnu", "s390x": "s390x-linux-gnu",
}


class Arch(msgspec.Struct):
    """Arch is one target as the pipeline sees it."""

    name: str
    module: ModuleType
    elf_machine: int
    elf_class: int          # 32 or 64
    order: str              # numpy/struct byte order: "<" or ">"
    elf_flags: int
    page_size: int          # default -R
    text_addr: int          # default -T (address of the first byte of .text)
    pad: bytes              # fills gaps in text
    rela: bool              # relocatable objects carry explicit addends
    howtos: list[Howto]
    triple: str = ""        # GNU target triple
    index: dict[str, int] = msgspec.field(default_factory=dict)  # psABI name -> howtos index
    widths: np.ndarray | None = None   # place size per howto (set from howtos)
    overrides: dict = msgspec.field(default_factory=dict)        # variant(name): per-name hooks

    def __post_init__(self):
        self.index = {h.name: i for i, h in enumerate(self.howtos)}
        self.widths = np.array([h.size for h in self.howtos], np.int64)

    @property
    def ptr_size(self) -> int:
        return self.elf_class // 8

    def hook(self, name: str):
        """hook returns the optional function `name`: the variant's, else the
        module's, else None."""
        f = self.overrides.get(name)
        return f if f is not None else getattr(self.module, name, None)


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
    v = mod.variant(name) if hasattr(mod, "variant") else {}
    get = lambda k: v.get(k, getattr(mod, k, None))  # noqa: E731
    a = Arch(name=name, module=mod, elf_machine=get("ELF_MACHINE"),
             elf_class=get("ELF_CLASS"), order=get("ORDER"), elf_flags=get("ELF_FLAGS"),
             page_size=get("PAGE_SIZE"), text_addr=get("TEXT_ADDR"), pad=get("PAD"),
             rela=get("RELA"), howtos=get("HOWTOS"), triple=_TRIPLES[name], overrides=v)
    _cache[name] = a
    return a
