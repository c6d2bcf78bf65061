"""elfrel: ELF relocatable objects (ET_REL), the output of --externallink.

As Go's -linkmode=external does, minild lays out and writes one object and an
external linker (GNU ld, or cc for a program that uses libc) finishes the link.
The pipeline is the same; this format changes three phases:

  address  every output section at address 0, laid out after the ELF header;
           so a symbol's address is its offset in its output section
  layout   relocation records are counted per output section (vectorized) and
           their sections placed in the mapped part of the file, after the
           section bytes: count x record size (RELA64 24, REL32 8, RELA32 12)
  asmb     writes section bytes; REL targets also get each addend written into
           its place (RELA targets carry it in the record)
  asmb2    writes the records straight into the mapping, one worker per section,
           and checks the total written against what layout reserved (seed 003);
           then .symtab (section symbols, locals, globals, undefined references),
           .strtab, .shstrtab and the section headers past the mapped size.

Every relocation is emitted against the section symbol of its target's output
section with the target's offset folded into the addend, against symbol 0 for
absolute targets, or against the undefined symbol the external linker is to
resolve. Relocations that change no bytes (R_*_NONE, R_RISCV_RELAX and ALIGN)
are left out: the external linker relaxes nothing minild has not seen.
"""

from __future__ import annotations

import mmap

import numpy as np

import msgspec

from .. import workers
from ..errors import InternalError
from ..reloc import write_addends
from ..vocab import ABS, align_up
from . import Format
from .elf import SEGMENTS, StrTab, defaults, ident, section_headers, symbols, write_tables
from .elfstruct import (ET_REL, SHF_INFO_LINK, SHT_PROGBITS, SHT_REL, SHT_RELA, STT_SECTION,
                        Layout, r_info)


class State(msgspec.Struct):
    """State is elfrel's private part of the link (Link.fmt), set by layout."""

    symrows: np.ndarray          # .symtab's rows
    strtab: StrTab
    first_global: int
    P: np.ndarray                # per relocation: its offset in its output section
    symidx: np.ndarray           # per relocation: the .symtab row its record names
    addend: np.ndarray           # per relocation: the record's addend, the target's
                                 # offset in its section folded in where it names one
    sections: list               # (output section, file offset, relocation ids)
    expected: int                # bytes of records layout reserved


def headr_size(ctx) -> int:
    return Layout(ctx.arch.elf.cls, ctx.arch.order).ehdr.size


def rec_dtype(ctx) -> np.dtype:
    """rec_dtype is one relocation record of the target's class and kind."""
    return Layout(ctx.arch.elf.cls, ctx.arch.order).rel(ctx.arch.elf.rela)


def address(ctx, headr: int) -> None:
    """address puts every output section at address 0 and lays them out in the
    file after the ELF header, in segment order."""
    off = headr
    for seg in ctx.segments:
        seg.vaddr, seg.fileoff = 0, align_up(off, seg.sections[0].align)
        for os_ in seg.sections:
            os_.addr = 0
            if os_.nobits:
                os_.fileoff = off
            else:
                off = os_.fileoff = align_up(off, os_.align)
                off += os_.size
        seg.length = seg.filelen = off - seg.fileoff


def layout(ctx, end: int) -> int:
    """layout builds the symbol table, decides what each relocation names, and
    reserves the relocation record sections (counted here, before anything is
    written); it returns the file size to map.

    A relocation names its target's own symbol when the target has a row in
    .symtab (named locals, globals, undefined references), else the section
    symbol of the target's output section, with the target's offset folded into
    the addend (R_RISCV_PCREL_LO12 and friends need the former; section-typed
    symbols of imported objects the latter).
    """
    a = ctx.arch
    lay = Layout(a.elf.cls, a.order)
    n = len(ctx.outsections)
    for i, o in enumerate(ctx.outsections, start=1):
        o.shndx = i
    # Section symbols first: output section k is row k + 1.
    head = np.zeros(n, lay.sym)
    head["info"] = STT_SECTION
    head["shndx"] = np.arange(1, n + 1)
    strtab = StrTab()
    symrows, first_global, symidx = symbols(ctx, lay, strtab, head=head, undefined=True,
                                            index=True)
    r = ctx.relocs
    tgt = ctx.sym_res[r.sym]
    safe = np.maximum(tgt, 0)
    own = np.where(tgt >= 0, symidx[safe], symidx[r.sym])
    tsec = ctx.sym_sec[safe]
    secsym = np.where(tsec == ABS, 0, ctx.sec_out[np.maximum(tsec, 0)] + 1)
    # Every output section is at address 0: a place's address is its offset in
    # its output section, and a target's address its offset in its own.
    P = ctx.sec_addr[r.sec] + r.off
    addend = np.where(own >= 0, 0, ctx.defaddr[r.sym]) + r.add

    emit = np.array([h.size > 0 for h in a.howtos], bool)[r.type]
    emit &= ctx.sec_out[r.sec] >= 0
    out = ctx.sec_out[r.sec]
    # Records in input order within each output section (mips REL needs a HI16
    # before its LO16): a stable sort by output section.
    idx = np.flatnonzero(emit)
    idx = idx[np.argsort(out[idx], kind="stable")]
    counts = np.bincount(out[idx], minlength=n)
    bounds = np.concatenate(([0], np.cumsum(counts)))
    size = rec_dtype(ctx).itemsize
    sections = []
    off = end
    for k in range(n):
        if counts[k]:
            off = align_up(off, 8)
            sections.append((k, off, idx[bounds[k]:bounds[k + 1]]))
            off += int(counts[k]) * size
    ctx.fmt = State(symrows=symrows, strtab=strtab, first_global=first_global, P=P,
                    symidx=np.where(own >= 0, own, secsym), addend=addend, sections=sections,
                    expected=sum(len(x[2]) for x in sections) * size)
    return off


def apply_relocs(ctx, buf, off, types, S, A, P, ids):
    """apply_relocs stands in for relocation during asmb: REL targets get the
    record's addend (the target's offset, where folded in, plus A) written
    into the place."""
    if ctx.arch.elf.rela:
        return []
    return write_addends(buf, off, types, ctx.fmt.addend[ids], ctx.arch.howtos,
                         ctx.arch.order)


def records(ctx, idx: np.ndarray) -> np.ndarray:
    """records builds one output section's relocation records."""
    r, a, st = ctx.relocs, ctx.arch, ctx.fmt
    sym = st.symidx[idx].astype(np.uint64)
    # (A type ELF has no number for, NO_ELF, never gets here: reloc.prepare
    # refuses it in an output with no image base.)
    codes = np.array([max(h.code, 0) for h in a.howtos], np.uint64)[r.type[idx]]
    rec = np.zeros(len(idx), rec_dtype(ctx))
    rec["offset"] = st.P[idx]
    rec["info"] = r_info(sym, codes, a.elf.cls, a.order, a.elf.machine)
    if a.elf.rela:
        rec["addend"] = st.addend[idx]
    return rec


def asmb2(ctx, out) -> None:
    """asmb2 writes the relocation records, the symbol table and the headers."""
    a, st = ctx.arch, ctx.fmt
    lay = Layout(a.elf.cls, a.order)

    # The records go straight into the mapping, in shares of the output sections
    # written by forked workers (minild.workers) when -j allows. What each
    # share wrote is counted in shared memory and checked against layout.
    jobs = st.sections
    counts = np.frombuffer(mmap.mmap(-1, 8 * max(len(jobs), 1)), np.int64, len(jobs))

    def run(lo: int, hi: int) -> bool:
        for j in range(lo, hi):
            _, off, idx = jobs[j]
            view = out.view(off)
            view.write(records(ctx, idx).tobytes())
            counts[j] = view.off - off
        return True

    if ctx.opts.jobs > 1 and len(jobs) > 1 and out.mode == "mmap":
        for lo, hi in workers.fork_map(len(jobs), ctx.opts.jobs, run):
            run(lo, hi)
    else:
        run(0, len(jobs))
    written = int(counts.sum())
    if written != st.expected:
        raise InternalError(f"wrote {written} bytes of relocation records; layout reserved "
                            f"{st.expected}")

    shstr = StrTab()
    shdrs = section_headers(ctx, lay, shstr)  # (every address is 0 here)
    # An empty .note.GNU-stack: the program does not need an executable stack.
    shdrs.append(lay.pack_shdr(shstr.add(".note.GNU-stack"), SHT_PROGBITS, 0, 0,
                               ctx.filesize, 0, 0, 0, 1, 0))
    symtab_index = len(shdrs) + len(jobs)
    size = rec_dtype(ctx).itemsize
    rela = a.elf.rela
    for k, off, idx in jobs:
        o = ctx.outsections[k]
        shdrs.append(lay.pack_shdr(shstr.add((".rela" if rela else ".rel") + o.name),
                                   SHT_RELA if rela else SHT_REL, SHF_INFO_LINK, 0, off,
                                   len(idx) * size, symtab_index, o.shndx,
                                   8 if a.elf.cls == 64 else 4, size))

    off = write_tables(out, lay, ctx.filesize, shdrs, shstr,
                       (st.symrows, st.strtab, st.first_global))

    ehdr = lay.ehdr.pack(ident(a), ET_REL, a.elf.machine, 1, 0, 0, off,
                         a.elf.flags, lay.ehdr.size, 0, 0, lay.shdr.size, len(shdrs),
                         len(shdrs) - 1)
    out.seek(0)
    out.write(ehdr)


FORMAT = Format(name="elfrel", part="elf", segments=SEGMENTS, defaults=defaults,
                headr_size=headr_size, address=address, layout=layout,
                apply_relocs=apply_relocs, asmb2=asmb2, allow_undefined=True)
