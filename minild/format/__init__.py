"""format: the registry of output formats, keyed by header type (-H).

Each format module builds one Format record (Go's HeadType cases in address,
layout and asmb2, gathered in one place) and the pipeline asks it; it never
branches on a format name. A Format owns:

  segments      the segment plan: which section kinds go into which segment,
                under which output section names (kinds in no segment are left
                out of the output: plan 9 has no place for DWARF)
  part          which of Arch's per-format parts it needs ("elf", "plan9"); an
                arch without one cannot be linked to this format
  defaults      fn(arch) -> (-T, -R): the text address and rounding, from the
                arch's part
  headr_size    fn(ctx) -> bytes reserved before the first section
  address       fn(ctx, headr): the address and file-offset rule (format.rules)
  linker_symbols {name: fn(ctx) -> address}: symbols the linker defines when
                an object refers to them and none defines them
  gensections   fn(ctx) or None: adds sections the format generates itself
                (import tables, stubs, GOT slots, wasm's tables), after
                resolution and before dodata
  assign        fn(ctx) or None: addresses that are not byte offsets (Go's
                AssignAddress: wasm's function indices), set at the end of layout,
                before symbols get their addresses
  layout        fn(ctx, end) -> file size, or None: more file past `end`, the
                end of the segments (elfrel's relocation records)
  apply_relocs  fn(ctx, buf, off, types, S, A, P, ids) -> problems, or None:
                what asmb does instead of relocating (elfrel writes addends)
  asmb2         fn(ctx, out): headers, symbol and string tables
  use_mmap      False where mapping the output makes no sense (wasm)
  allow_undefined  references may stay undefined (another linker resolves them)
  imports       the format links imports (gensections turns them into what the
                format needs); a used import is an error for any other
  notes         fn(ctx) -> [str] or None: what the format left out, said once with -v
  entry         the entry symbol when -e does not name one
"""

from __future__ import annotations

import importlib
from typing import Callable

import msgspec

from ..vocab import SegmentPlan

# -H name -> module name.
_MODULES = {"elf": "elf", "macho": "macho", "pe": "pe", "plan9": "plan9", "wasm": "wasm"}
# Formats chosen by other flags than -H (--externallink writes "elfrel").
_INTERNAL = {"elfrel": "elfrel"}


class Format(msgspec.Struct, frozen=True):
    """Format is one output format (see the module docstring for each field)."""

    name: str
    part: str
    segments: tuple[SegmentPlan, ...]
    defaults: Callable
    headr_size: Callable
    address: Callable
    asmb2: Callable
    linker_symbols: dict[str, Callable] = msgspec.field(default_factory=dict)
    gensections: Callable | None = None
    assign: Callable | None = None
    layout: Callable | None = None
    apply_relocs: Callable | None = None
    use_mmap: bool = True
    allow_undefined: bool = False
    imports: bool = False
    notes: Callable | None = None
    entry: str = "_start"


def names() -> list[str]:
    return list(_MODULES)


def lookup(name: str) -> Format:
    """lookup returns the Format for a header type; KeyError if unknown."""
    mod = _MODULES.get(name) or _INTERNAL[name]
    return importlib.import_module(f"{__name__}.{mod}").FORMAT


def default_for(arch) -> str:
    """default_for: the format an arch links to without -H: ELF, or for an
    arch ELF does not serve (wasm), the first format it has a part for."""
    if arch.elf is not None:
        return "elf"
    return next(n for n in _MODULES if arch.part(lookup(n).part) is not None)


def arches_for(fmt: Format) -> list[str]:
    """arches_for lists the arches that have the format's part."""
    from .. import arch as archreg
    return [n for n in archreg.available() if archreg.lookup(n).part(fmt.part) is not None]
