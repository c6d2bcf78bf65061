"""vocab: the words every layer of the linker shares, and nothing else.

Section kinds, symbol bindings and types, the special section ids of a symbol
(UNDEF, ABS), the output's Segment and OutSection, and align_up. The loader,
the layout phases, the arch and format modules all speak these; arch/ and
format/ import them from here, never from loader, layout or link (design.md:
layers import downward only). No numpy: the schema and the read-ahead, which
run before numpy is imported, use the names too.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    import numpy as np


class Kind(enum.IntEnum):
    """Kind is an input or output section's kind; its value is what the
    section-kind columns hold (a uint8), its lower-case name what objects say."""

    TEXT = 0
    RODATA = 1
    DATA = 2
    BSS = 3
    DWARF = 4

    @property
    def word(self) -> str:
        return self.name.lower()


class Bind(enum.IntEnum):
    """Bind is a symbol's binding (the symbol-binding column's values)."""

    LOCAL = 0
    GLOBAL = 1
    WEAK = 2


class SymType(enum.IntEnum):
    """SymType is a symbol's type (the symbol-type column's values)."""

    NOTYPE = 0
    OBJECT = 1
    FUNC = 2
    SECTION = 3


KINDS = tuple(k.word for k in Kind)                       # as objects spell them
BINDINGS = tuple(b.name.lower() for b in Bind)
TYPES = tuple(t.name.lower() for t in SymType)
KIND_ID = {k.word: k for k in Kind}

UNDEF = -1   # a symbol's section id: undefined
ABS = -2     # a symbol's section id: an absolute value
IMPORT = -3  # a symbol's section id: imported from outside the program (a DLL, a
             # dylib, a wasm module); the format that links it gives it its place


def align_up(v: int, a: int) -> int:
    """align_up rounds v up to a multiple of a (a power of two)."""
    return (v + a - 1) & -a


class OutSection(msgspec.Struct):
    """OutSection is one section of the output: input sections of one kind."""

    name: str
    kind: int                   # a Kind
    inputs: "np.ndarray"        # global input section ids, in output order
    align: int = 1
    size: int = 0               # bytes in memory
    addr: int = 0
    fileoff: int = 0
    shndx: int = 0              # set by the output format

    @property
    def nobits(self) -> bool:
        return self.kind == Kind.BSS

    @property
    def filesize(self) -> int:
        return 0 if self.nobits else self.size


class Segment(msgspec.Struct):
    """Segment is a run of output sections sharing permissions (a PT_LOAD in
    ELF, a segment of a plan 9 a.out, a PE section, a Mach-O segment)."""

    name: str
    perm: str                   # "rx", "r", "rw"; "" for one that is not loaded (dwarf)
    sections: list[OutSection] = msgspec.field(default_factory=list)
    vaddr: int = 0              # of the segment's first byte (for text: of file offset 0)
    length: int = 0             # bytes in memory
    fileoff: int = 0
    filelen: int = 0

    @property
    def loaded(self) -> bool:
        return self.perm != ""


class SegmentPlan(msgspec.Struct, frozen=True):
    """SegmentPlan is one segment of a format's plan: its name, permissions,
    and the section kinds that go into it, each with its output section's
    name (None: input sections keep their own names, as DWARF's do) and,
    optionally, the one input section name it takes (a section the format
    generates, such as Mach-O's __stubs); such a section goes to no other
    entry."""

    name: str
    perm: str
    kinds: tuple[tuple, ...]   # (Kind, output name | None[, input name])
