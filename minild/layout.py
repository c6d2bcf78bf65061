"""layout: dodata, address and layout, the phases between loading and writing.

dodata bins input sections into output sections by kind; address gives every
segment, output section and input section its virtual address; layout gives them
file offsets (VA == file offset mod R, as the kernel's mmap of PT_LOAD needs) and
returns the size of the file up to the end of the last segment. Tables the
output format writes after that (symbols, section headers) go past that size,
into OutBuf's heap spill, as in Go's linker.
"""

from __future__ import annotations

import msgspec
import numpy as np

from .errors import fail
from .loader import KIND_ID, KINDS, LOCAL, SECTION_TYPE


def align_up(v: int, a: int) -> int:
    return (v + a - 1) & -a


class OutSection(msgspec.Struct):
    """OutSection is one section of the output: input sections of one kind."""

    name: str
    kind: int
    inputs: np.ndarray          # global input section ids, in output order
    align: int = 1
    size: int = 0               # bytes in memory
    addr: int = 0
    fileoff: int = 0
    shndx: int = 0              # set by the output format

    @property
    def nobits(self) -> bool:
        return self.kind == KIND_ID["bss"]

    @property
    def filesize(self) -> int:
        return 0 if self.nobits else self.size


class Segment(msgspec.Struct):
    """Segment is a run of output sections sharing permissions (a PT_LOAD in ELF)."""

    name: str
    perm: str                   # "rx", "r", "rw"; "" for dwarf (not loaded)
    sections: list[OutSection] = msgspec.field(default_factory=list)
    vaddr: int = 0              # of the segment's first byte (for text: of file offset 0)
    length: int = 0             # bytes in memory
    fileoff: int = 0
    filelen: int = 0

    @property
    def loaded(self) -> bool:
        return self.perm != ""


# Segments in address order, and which kinds go into each.
SEGMENTS = (("text", "rx", ("text",)), ("rodata", "r", ("rodata",)),
            ("data", "rw", ("data", "bss")), ("dwarf", "", ("dwarf",)))
OUTNAME = {"text": ".text", "rodata": ".rodata", "data": ".data", "bss": ".bss"}


def dodata(ctx) -> None:
    """dodata bins input sections into output sections and places each input
    section at its aligned offset inside its output section."""
    kinds = ctx.sec_kind
    ctx.sec_off = np.zeros(len(kinds), np.int64)      # offset in its output section
    ctx.sec_out = np.full(len(kinds), -1, np.int32)   # index into ctx.outsections
    ctx.segments = []
    ctx.outsections = []
    for segname, perm, segkinds in SEGMENTS:
        if segname == "dwarf" and ctx.opts.strip:
            continue  # -s: no debug information either (as GNU ld's -s)
        seg = Segment(segname, perm)
        for kname in segkinds:
            ids = np.flatnonzero(kinds == KIND_ID[kname])
            if kname == "dwarf":
                # DWARF sections keep their names (.debug_info, .debug_line, ...).
                groups: dict[str, list[int]] = {}
                for i in ids.tolist():
                    groups.setdefault(ctx.sec_name[i], []).append(i)
                parts = [(n, np.array(g, np.int64)) for n, g in groups.items()]
            else:
                parts = [(OUTNAME[kname], ids)] if len(ids) else []
            for name, members in parts:
                os_ = OutSection(name, KIND_ID[kname], members)
                _place(ctx, os_, len(ctx.outsections))
                seg.sections.append(os_)
                ctx.outsections.append(os_)
        if seg.sections:
            ctx.segments.append(seg)


def _place(ctx, os_: OutSection, index: int) -> None:
    aligns = ctx.sec_align[os_.inputs]
    sizes = ctx.sec_size[os_.inputs]
    if len(aligns) and (aligns == aligns[0]).all() and (sizes % aligns[0] == 0).all():
        # Common case (one alignment, sizes multiples of it): no Python loop.
        offs = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
        end = int(sizes.sum())
    else:
        offs = np.empty(len(aligns), np.int64)
        end = 0
        for k, (a, s) in enumerate(zip(aligns.tolist(), sizes.tolist())):
            end = align_up(end, a)
            offs[k] = end
            end += s
    ctx.sec_off[os_.inputs] = offs
    ctx.sec_out[os_.inputs] = index
    os_.size = end
    os_.align = int(aligns.max()) if len(aligns) else 1


def address(ctx) -> None:
    """address assigns virtual addresses and file offsets to segments and
    output sections.

    The text segment starts at file offset 0 and holds the headers before
    .text, which sits at -T. Each later segment starts on a new R-aligned
    page at the same offset within the page as its file offset, so segments
    pack tightly in the file while VA == offset mod R holds (GNU ld's
    `ALIGN(MAXPAGESIZE) + (. & (MAXPAGESIZE - 1))`). DWARF is not loaded: its
    sections have address 0 and are laid out in the file after the data.
    """
    R, T = ctx.round, ctx.text_addr
    headr = ctx.format.headr_size(ctx)
    va = fileoff = 0
    first = True
    for seg in ctx.segments:
        if seg.name == "text" or (first and seg.loaded):
            off = T % R
            while off < headr:
                off += R
            if T < off:
                raise fail(f"text address {T:#x} leaves no room for the {headr}-byte headers "
                           f"below it (rounding {R:#x})")
            seg.vaddr, seg.fileoff = T - off, 0
            va, fileoff = T, off
        elif seg.loaded:
            fileoff = align_up(fileoff, seg.sections[0].align)
            va = align_up(va, R) + fileoff % R
            seg.vaddr, seg.fileoff = va, fileoff
        else:
            seg.fileoff = fileoff = align_up(fileoff, 8)
            seg.vaddr = 0
        first = False
        for os_ in seg.sections:
            if seg.loaded:
                va = align_up(va, os_.align)
                fileoff = seg.fileoff + (va - seg.vaddr) if not os_.nobits else fileoff
                os_.addr, os_.fileoff = va, fileoff
                va += os_.size
            else:
                fileoff = align_up(fileoff, os_.align)
                os_.addr, os_.fileoff = 0, fileoff
            fileoff = os_.fileoff + os_.filesize if not os_.nobits else fileoff
        if seg.loaded:
            seg.length = va - seg.vaddr
            seg.filelen = max((o.fileoff + o.filesize for o in seg.sections if not o.nobits),
                              default=seg.fileoff) - seg.fileoff
            if va > 1 << (8 * ctx.arch.ptr_size):
                raise fail(f"segment {seg.name} ends at {va:#x}, past the "
                           f"{8 * ctx.arch.ptr_size}-bit address space")
        else:
            seg.length = seg.filelen = fileoff - seg.fileoff


def layout(ctx) -> int:
    """layout fixes each input section's address and file offset and returns the
    size of the file up to the end of the last segment."""
    secaddr = np.zeros(len(ctx.sec_kind), np.int64)
    secfile = np.full(len(ctx.sec_kind), -1, np.int64)
    for os_ in ctx.outsections:
        secaddr[os_.inputs] = os_.addr + ctx.sec_off[os_.inputs]
        if not os_.nobits:
            secfile[os_.inputs] = os_.fileoff + ctx.sec_off[os_.inputs]
    ctx.sec_addr, ctx.sec_fileoff = secaddr, secfile
    end = 0
    for seg in ctx.segments:
        end = max(end, seg.fileoff + seg.filelen)
    return end


def listed_symbols(ctx) -> tuple[np.ndarray, np.ndarray]:
    """listed_symbols returns the symbol entries a symbol table or map lists:
    named locals that are not section symbols, and the winning definition of
    each global; only those in sections the output has (-s drops DWARF) or
    absolute/undefined ones."""
    bind, typ, sec = ctx.sym_bind, ctx.sym_type, ctx.sym_sec
    placed = (sec < 0) | (ctx.sec_out[np.maximum(sec, 0)] >= 0)
    loc = np.flatnonzero((bind == LOCAL) & (typ != SECTION_TYPE) & placed)
    named = ctx.names.length[loc] > 0
    glob = np.flatnonzero((bind != LOCAL) & (ctx.sym_res == np.arange(len(bind))) & placed)
    return loc[named], glob


__all__ = ["dodata", "address", "layout", "listed_symbols", "OutSection", "Segment", "KINDS", "align_up"]
