"""rules: the address rules formats choose from, and the ends of the image.

address (minild.layout) has dodata's segments; a Format's `address` gives each
segment, output section and the headers their virtual addresses and file
offsets by one of these rules, as Go's ld.layout switches on the header type:

  congruent  ELF (Go's default): each loaded segment starts on a new R-aligned
             page at the same offset within the page as its file offset, so
             segments pack tightly in the file while VA == offset mod R holds
             (the kernel maps PT_LOADs with mmap); not-loaded segments (DWARF)
             follow in the file at address 0
  packed     plan 9 (Go's Hplan9): segments follow each other in the file with
             no gap; in memory each later one starts at the next R boundary

Either way the first segment starts at file offset 0 and holds the headers
before its first section, which sits at the text address -T.
"""

from __future__ import annotations

from ..errors import fail
from ..vocab import Kind, align_up


def _first(seg, T: int, R: int, headr: int, congruent: bool) -> tuple[int, int]:
    """_first places the first loaded segment at file offset 0 with its first
    section at T; returns (va, fileoff) of that section."""
    off = T % R if congruent else headr
    while off < headr:
        off += R
    if T < off:
        raise fail(f"text address {T:#x} leaves no room for the {headr}-byte headers "
                   f"below it (rounding {R:#x})")
    seg.vaddr, seg.fileoff = T - off, 0
    return T, off


def _sections(seg, va: int, fileoff: int) -> tuple[int, int]:
    """_sections places a loaded segment's sections from va on: file offsets
    keep each section as far from the segment's start as in memory, and bss
    takes no file space. Returns the segment's end (va) and its file end."""
    for os_ in seg.sections:
        va = align_up(va, os_.align)
        if not os_.nobits:
            fileoff = seg.fileoff + (va - seg.vaddr)
        os_.addr, os_.fileoff = va, fileoff
        va += os_.size
        if not os_.nobits:
            fileoff = os_.fileoff + os_.size
    seg.length = va - seg.vaddr
    seg.filelen = max((o.fileoff + o.filesize for o in seg.sections if not o.nobits),
                      default=seg.fileoff) - seg.fileoff
    return va, fileoff


def _unloaded(seg, fileoff: int) -> int:
    """_unloaded lays out a segment that is not loaded (DWARF) at address 0."""
    seg.fileoff = fileoff = align_up(fileoff, 8)
    seg.vaddr = 0
    for os_ in seg.sections:
        fileoff = align_up(fileoff, os_.align)
        os_.addr, os_.fileoff = 0, fileoff
        fileoff += os_.filesize
    seg.length = seg.filelen = fileoff - seg.fileoff
    return fileoff


def congruent(ctx, headr: int) -> None:
    """congruent is ELF's rule (the module docstring): GNU ld's
    `ALIGN(MAXPAGESIZE) + (. & (MAXPAGESIZE - 1))` between segments."""
    R, T = ctx.round, ctx.text_addr
    va = fileoff = 0
    first = True
    for seg in ctx.segments:
        if first and seg.loaded:
            va, fileoff = _first(seg, T, R, headr, True)
            va, fileoff = _sections(seg, va, fileoff)
        elif seg.loaded:
            fileoff = align_up(fileoff, seg.sections[0].align)
            va = align_up(va, R) + fileoff % R
            seg.vaddr, seg.fileoff = va, fileoff
            va, fileoff = _sections(seg, va, fileoff)
        else:
            fileoff = _unloaded(seg, fileoff)
        first = False


def packed(ctx, headr: int) -> None:
    """packed is plan 9's rule (the module docstring): the data segment's file
    bytes follow the text segment's directly, and its address is the end of
    text rounded up to R (the kernel's UTROUND)."""
    R, T = ctx.round, ctx.text_addr
    va = fileoff = 0
    first = True
    for seg in ctx.segments:
        if not seg.loaded:
            fileoff = _unloaded(seg, fileoff)
            continue
        if first:
            va, fileoff = _first(seg, T, R, headr, False)
        else:
            va = align_up(va, max(R, seg.sections[0].align))
            seg.vaddr, seg.fileoff = va, fileoff
        va, fileoff = _sections(seg, va, fileoff)
        fileoff = seg.fileoff + seg.filelen
        first = False


# --- the ends of the image, for linker-defined symbols -------------------

def end_of(ctx, kinds: tuple[Kind, ...] | None = None, nobits: bool = True) -> int:
    """end_of is the end address of the loaded output sections of the given
    kinds (None: all), bss left out unless nobits."""
    end = 0
    for s in ctx.segments:
        if s.loaded:
            for o in s.sections:
                if (kinds is None or o.kind in kinds) and (nobits or not o.nobits):
                    end = max(end, o.addr + o.size)
    return end


def image_start(ctx) -> int:
    """image_start is the address of the first loaded byte (the headers)."""
    return next((s.vaddr for s in ctx.segments if s.loaded), 0)


def etext(ctx) -> int:
    return end_of(ctx, (Kind.TEXT,))


def edata(ctx) -> int:
    return end_of(ctx, nobits=False)


def end(ctx) -> int:
    return end_of(ctx)
