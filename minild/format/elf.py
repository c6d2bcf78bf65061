"""elf: ELF executables (ET_EXEC), ELF32 and ELF64 in either byte order.

address asks headr_size how much room the ELF header and program headers take
before .text; asmb2 then writes, after the sections: .symtab, .strtab,
.shstrtab and the section headers (past the mapped size, so into OutBuf's heap),
and finally the ELF header and program headers at offset 0. The symbol table is
built as numpy structured arrays: one row per symbol, no Python object per row.
"""

from __future__ import annotations

import os
import numpy as np

from ..listing import listed_symbols
from ..vocab import Bind, Kind, SegmentPlan, align_up
from . import Format, rules
from .elfstruct import (ET_EXEC, PF_R, PF_W, PF_X, PT_GNU_STACK, PT_LOAD, SHF_ALLOC,
                        SHF_EXECINSTR, SHF_WRITE, SHN_ABS, SHT_NOBITS, SHT_PROGBITS,
                        SHT_STRTAB, SHT_SYMTAB, STT_FILE, Layout)
from .elfstruct import ident as _ident

PERM_FLAGS = {"rx": PF_R | PF_X, "r": PF_R, "rw": PF_R | PF_W}
KIND_SHFLAGS = {Kind.TEXT: SHF_ALLOC | SHF_EXECINSTR, Kind.RODATA: SHF_ALLOC,
                Kind.DATA: SHF_ALLOC | SHF_WRITE, Kind.BSS: SHF_ALLOC | SHF_WRITE, Kind.DWARF: 0}

# One PT_LOAD per loaded segment, in address order; DWARF after them, not loaded.
SEGMENTS = (
    SegmentPlan("text", "rx", ((Kind.TEXT, ".text"),)),
    SegmentPlan("rodata", "r", ((Kind.RODATA, ".rodata"),)),
    SegmentPlan("data", "rw", ((Kind.DATA, ".data"), (Kind.BSS, ".bss"))),
    SegmentPlan("dwarf", "", ((Kind.DWARF, None),)),
)


def _phnum(ctx) -> int:
    return sum(1 for s in ctx.segments if s.loaded) + 1  # + PT_GNU_STACK


def headr_size(ctx) -> int:
    lay = Layout(ctx.arch.elf.cls, ctx.arch.order)
    return lay.ehdr.size + _phnum(ctx) * lay.phdr.size


class StrTab:
    """StrTab builds an ELF string table; offsets for many names at once."""

    def __init__(self):
        self.parts = [b"\0"]
        self.size = 1

    def add(self, name: str) -> int:
        off = self.size
        b = name.encode() + b"\0"
        self.parts.append(b)
        self.size += len(b)
        return off

    def add_many(self, names: list[str]) -> np.ndarray:
        """add_many adds names (which hold no NUL: the loader checks) and returns
        their offsets, found from the NULs of one joined blob: no per-name work."""
        if not names:
            return np.zeros(0, np.int64)
        blob = ("\0".join(names) + "\0").encode()
        ends = np.flatnonzero(np.frombuffer(blob, np.uint8) == 0)
        offs = self.size + np.concatenate(([0], ends[:-1] + 1))
        self.parts.append(blob)
        self.size += len(blob)
        return offs

    def add_names(self, names, idx: np.ndarray) -> np.ndarray:
        """add_names adds names[idx] (a minild.names table) and returns their offsets."""
        blob, offs = names.strtab(idx)
        offs = offs + self.size
        self.parts.append(blob)
        self.size += len(blob)
        return offs

    def bytes(self) -> bytes:
        return b"".join(self.parts)


def symbols(ctx, lay: Layout, strtab: StrTab, head: np.ndarray | None = None,
            undefined: bool = False, index: bool = False
            ) -> tuple[np.ndarray, int, np.ndarray | None]:
    """symbols builds .symtab's rows: the null symbol, `head` (section symbols of
    a relocatable object), then file and local symbols, then globals. It returns
    the rows, the index of the first global and, with `index`, per symbol entry
    its row (-1 if absent; an unresolved reference gets the row of its name;
    else None: an executable needs no such map, a full-size array). With
    `undefined`, references nobody defines are kept as undefined globals (for an
    object another linker finishes); otherwise only undefined weak ones are."""
    bind, typ, sec = ctx.sym_bind, ctx.sym_type, ctx.sym_sec
    # Indexed by a symbol's section id, IMPORT (-3), ABS (-2) or UNDEF (-1): its shndx.
    sec_shndx = np.concatenate((
        np.array([o.shndx for o in ctx.outsections] + [0], np.int64)[ctx.sec_out],
        [0, SHN_ABS, 0]))
    names = ctx.names
    loc, glob = listed_symbols(ctx)
    # Undefined weak symbols stay in the table, once per name, as GNU ld keeps them.
    unres = np.flatnonzero((bind != Bind.LOCAL) & (ctx.sym_res < 0)
                           & ((bind == Bind.WEAK) | undefined))
    unres_names = names.tolist(unres)
    first: dict[str, int] = {}
    for name, i in zip(unres_names, unres.tolist()):
        first.setdefault(name, i)
    if first:
        glob = np.concatenate((glob, np.array(sorted(first.values()), np.int64)))

    # One STT_FILE symbol before each object's locals, as GNU ld writes them.
    lobj = ctx.sym_obj[loc]
    starts = np.flatnonzero(np.diff(lobj, prepend=-1)) if len(loc) else np.zeros(0, np.int64)
    if head is None:
        head = np.zeros(0, lay.sym)
    nlocal = 1 + len(head) + len(loc) + len(starts)
    # The rows in their final place and byte order: no joined copy to cast.
    rows = np.zeros(nlocal + len(glob), lay.sym)
    rows[1:1 + len(head)] = head
    lr, gr = rows[1 + len(head):nlocal], rows[nlocal:]
    fpos = starts + np.arange(len(starts))
    spos = np.flatnonzero(~np.isin(np.arange(len(lr)), fpos))
    lr["name"][fpos] = strtab.add_many([os.path.basename(ctx.objects[o].path)
                                        for o in lobj[starts].tolist()])
    lr["info"][fpos] = STT_FILE
    lr["shndx"][fpos] = SHN_ABS
    for part, pos, idx in ((lr, spos, loc), (gr, slice(None), glob)):
        part["name"][pos] = strtab.add_names(names, idx)
        part["info"][pos] = (bind[idx].astype(np.uint8) << 4) | typ[idx]
        part["shndx"][pos] = sec_shndx[sec[idx]]
        part["value"][pos] = ctx.sym_addr[idx]      # 0 for undefined ones (symaddrs)
        part["size"][pos] = ctx.sym_size[idx]
    if not index:
        return rows, nlocal, None
    symidx = np.full(len(bind), -1, np.int64)
    symidx[glob] = nlocal + np.arange(len(glob))
    symidx[loc] = 1 + len(head) + spos
    for name, i in zip(unres_names, unres.tolist()):
        symidx[i] = symidx[first[name]]
    return rows, nlocal, symidx


def ident(a) -> bytes:
    """ident is the arch's e_ident."""
    return _ident(a.elf.cls, a.order)


def section_headers(ctx, lay: Layout, shstr: StrTab) -> list[bytes]:
    """section_headers returns the null section header and one per output section."""
    shdrs = [lay.pack_shdr(0, 0, 0, 0, 0, 0, 0, 0, 0, 0)]
    for o in ctx.outsections:
        shdrs.append(lay.pack_shdr(shstr.add(o.name), SHT_NOBITS if o.nobits else SHT_PROGBITS,
                                   KIND_SHFLAGS[o.kind], o.addr, o.fileoff, o.size, 0, 0,
                                   o.align, 0))
    return shdrs


def write_tables(out, lay: Layout, off: int, shdrs: list[bytes], shstr: StrTab,
                 symtab: tuple | None) -> int:
    """write_tables writes, from off on: .symtab and .strtab when symtab is
    (rows, strtab, first_global), then .shstrtab and the section headers
    (adding their own headers to shdrs). It returns the section headers' offset."""
    if symtab is not None:
        rows, strtab, first_global = symtab
        off = align_up(off, 8)
        # asmb2 runs when the link is at its peak: the tables are mapped before
        # they are written (through the heap spill they would be held twice
        # more), and go out as they are, the rows as bytes and the string
        # table part by part (a joined copy of either is one more table).
        out.reserve(off + rows.nbytes + strtab.size)
        out.seek(off)
        out.write(rows.view(np.uint8))
        for part in strtab.parts:
            out.write(part)
        strtab_index = len(shdrs) + 1
        shdrs.append(lay.pack_shdr(shstr.add(".symtab"), SHT_SYMTAB, 0, 0, off, rows.nbytes,
                                   strtab_index, first_global, 8 if lay.cls == 64 else 4,
                                   lay.sym.itemsize))
        off += rows.nbytes
        shdrs.append(lay.pack_shdr(shstr.add(".strtab"), SHT_STRTAB, 0, 0, off, strtab.size,
                                   0, 0, 1, 0))
        off += strtab.size
    shname = shstr.add(".shstrtab")
    shdata = shstr.bytes()
    shdrs.append(lay.pack_shdr(shname, SHT_STRTAB, 0, 0, off, len(shdata), 0, 0, 1, 0))
    out.seek(off)
    out.write(shdata)
    off = align_up(off + len(shdata), 8)
    out.seek(off)
    out.write(b"".join(shdrs))
    return off


def asmb2(ctx, out) -> None:
    """asmb2 writes the symbol table, section headers and the ELF headers."""
    a = ctx.arch
    lay = Layout(a.elf.cls, a.order)
    for i, o in enumerate(ctx.outsections, start=1):
        o.shndx = i
    shstr = StrTab()
    shdrs = section_headers(ctx, lay, shstr)
    symtab = None
    if not ctx.opts.strip:
        strtab = StrTab()
        rows, first_global, _ = symbols(ctx, lay, strtab)
        symtab = (rows, strtab, first_global)
    shoff = write_tables(out, lay, ctx.filesize, shdrs, shstr, symtab)

    phdrs = []
    for seg in ctx.segments:
        if seg.loaded:
            phdrs.append(lay.pack_phdr(PT_LOAD, PERM_FLAGS[seg.perm], seg.fileoff, seg.vaddr,
                                       seg.filelen, seg.length, ctx.round))
    phdrs.append(lay.pack_phdr(PT_GNU_STACK, PF_R | PF_W, 0, 0, 0, 0, 16))
    ehdr = lay.ehdr.pack(ident(a), ET_EXEC, a.elf.machine, 1, ctx.entry_addr,
                         lay.ehdr.size, shoff, a.elf.flags if ctx.elf_flags is None
                         else ctx.elf_flags, lay.ehdr.size, lay.phdr.size,
                         len(phdrs), lay.shdr.size, len(shdrs), len(shdrs) - 1)
    out.seek(0)
    out.write(ehdr + b"".join(phdrs))


def defaults(arch) -> tuple[int, int]:
    return arch.elf.text_addr, arch.elf.round


# Symbols GNU ld's default linker scripts define (PROVIDE), for a static executable.
LINKER_SYMBOLS = {
    "__executable_start": rules.image_start,
    "_etext": rules.etext, "etext": rules.etext,
    "_edata": rules.edata, "edata": rules.edata, "__bss_start": rules.edata,
    "_end": rules.end, "end": rules.end,
}

FORMAT = Format(name="elf", part="elf", segments=SEGMENTS, defaults=defaults,
                headr_size=headr_size, address=rules.congruent, asmb2=asmb2,
                linker_symbols=LINKER_SYMBOLS)
