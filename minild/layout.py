"""layout: dodata, address and layout, the phases between loading and writing.

dodata bins input sections into output sections by kind, following the output
format's segment plan; address gives every segment and output section its
virtual address and file offset by the format's rule (minild.format.rules);
layout fixes every input section's address and file offset, every symbol's
address, the link-wide values of the relocation expressions (minild.reloc), and
returns the size of the file up to the end of the last segment. Tables the
output format writes after that (symbols, section headers) go past that size,
into OutBuf's heap spill, as in Go's linker.
"""

from __future__ import annotations

import numpy as np

from . import reloc
from .errors import fail
from .vocab import UNDEF, Kind, OutSection, Segment, align_up


def dodata(ctx) -> None:
    """dodata bins input sections into output sections, segment by segment as
    the format's plan says, and places each input section at its aligned
    offset inside its output section. Kinds in no segment of the plan are left
    out of the output, and so is DWARF with -s (as GNU ld's -s)."""
    kinds = ctx.sec_kind
    ctx.sec_off = np.zeros(len(kinds), np.int64)      # offset in its output section
    ctx.sec_out = np.full(len(kinds), -1, np.int32)   # index into ctx.outsections
    ctx.segments = []
    ctx.outsections = []
    # Entries of the plan that take input sections by name (a format's own,
    # such as Mach-O's __stubs and __got): those are no other entry's.
    named = {e[2] for p in ctx.format.segments for e in p.kinds if len(e) > 2}
    claimed = np.array([n in named for n in ctx.sec_name], bool) if named else None
    for plan in ctx.format.segments:
        seg = Segment(plan.name, plan.perm)
        for kind, outname, *inname in plan.kinds:
            if kind == Kind.DWARF and ctx.opts.strip:
                continue
            match = kinds == kind
            if inname:
                match &= np.array([n == inname[0] for n in ctx.sec_name], bool)
            elif claimed is not None:
                match &= ~claimed
            ids = np.flatnonzero(match)
            if getattr(ctx, "sec_rank", None) is not None:
                # Thunk sections sit right after their callers' sections (thunks.py).
                ids = ids[np.argsort(ctx.sec_rank[ids], kind="stable")]
            if outname is None:
                # Sections that keep their names (.debug_info, .debug_line, ...).
                groups: dict[str, list[int]] = {}
                for i in ids.tolist():
                    groups.setdefault(ctx.sec_name[i], []).append(i)
                parts = [(n, np.array(g, np.int64)) for n, g in groups.items()]
            else:
                parts = [(outname, ids)] if len(ids) else []
            for name, members in parts:
                os_ = OutSection(name, kind, members)
                _place(ctx, os_, len(ctx.outsections))
                seg.sections.append(os_)
                ctx.outsections.append(os_)
        if seg.sections:
            ctx.segments.append(seg)


def _place(ctx, os_: OutSection, index: int) -> None:
    aligns = ctx.sec_align[os_.inputs]
    sizes = ctx.sec_size[os_.inputs]
    offs = np.empty(len(aligns), np.int64)
    end = 0
    cuts = np.flatnonzero(aligns[1:] != aligns[:-1]) + 1
    if len(cuts) > len(aligns) // 8:
        # Alignments that change every few inputs: a plain loop costs less
        # than numpy calls per run.
        for k, (a, s) in enumerate(zip(aligns.tolist(), sizes.tolist())):
            end = (end + a - 1) & -a
            offs[k] = end
            end += s
    else:
        # Runs of one alignment (a section per function: 100k+ inputs, in a
        # few runs): each start in a run is a multiple of its alignment, so
        # each input takes its size rounded up and the starts are a running
        # sum. Python steps from run to run only.
        bounds = [0, *cuts.tolist(), len(aligns)]
        for lo, hi in zip(bounds, bounds[1:]):
            if lo == hi:
                continue
            a = int(aligns[lo])
            end = (end + a - 1) & -a
            s = sizes[lo:hi]
            step = (s + (a - 1)) & -a
            offs[lo] = end
            np.cumsum(step[:-1], out=offs[lo + 1:hi])
            offs[lo + 1:hi] += end
            end = int(offs[hi - 1] + s[-1])
    ctx.sec_off[os_.inputs] = offs
    ctx.sec_out[os_.inputs] = index
    os_.size = end
    os_.align = int(aligns.max()) if len(aligns) else 1


def address(ctx) -> None:
    """address assigns virtual addresses and file offsets to segments and
    output sections by the format's rule, after the headers it asks room for."""
    ctx.format.address(ctx, ctx.format.headr_size(ctx))
    bits = 8 * ctx.arch.ptr_size
    for seg in ctx.segments:
        if seg.loaded and seg.vaddr + seg.length > 1 << bits:
            raise fail(f"segment {seg.name} ends at {seg.vaddr + seg.length:#x}, past the "
                       f"{bits}-bit address space")


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
    if ctx.format.assign is not None:
        ctx.format.assign(ctx)
    end = 0
    for seg in ctx.segments:
        end = max(end, seg.fileoff + seg.filelen)
    return end


def symaddrs(ctx) -> None:
    """symaddrs computes every symbol's address, the address each symbol entry
    resolves to (defaddr: what a relocation's S is), the entry point, and the
    link-wide values of the relocation expressions (reloc.prepare). P and S
    are never whole columns: asmb's writers compute each block's, in parallel."""
    for name, i in ctx.linker_defined.items():
        ctx.sym_value[i] = ctx.linker_symbols[name](ctx)
    sec = ctx.sym_sec
    # Indexed by a section id, UNDEF (-1), ABS (-2) or IMPORT (-3): a section's
    # address, or 0 (an absolute symbol's address is its value; an import the
    # format placed has a section).
    base = np.concatenate((ctx.sec_addr, [0, 0, 0]))
    addr = ctx.sym_addr = base[sec]
    addr += ctx.sym_value
    addr[sec == UNDEF] = 0
    # Indexed by sym_res: the defining entry's address, 0 for none (-1).
    ctx.defaddr = np.concatenate((addr, [0]))[ctx.sym_res]
    ctx.entry_addr = int(ctx.sym_addr[ctx.entry_sym]) if ctx.entry_sym is not None else 0
    ctx.reloc_env = reloc.prepare(ctx)


__all__ = ["dodata", "address", "layout", "symaddrs", "OutSection", "Segment", "align_up"]
