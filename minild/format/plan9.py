"""plan9: plan 9 a.out executables (amd64, 386, arm), as Go's linker writes them.

The format (plan 9's a.out(6); Go's asmbPlan9, writePlan9Header and
asmbPlan9Sym) is three segments and a symbol table:

  header   eight big-endian 32-bit words: magic, text size, data size, bss
           size, symbol table size, entry, spsz, pcsz; with HDR_MAGIC in the
           magic (amd64), the 64-bit entry follows as a big-endian 64-bit word
  text     the header's end on: code, then read-only data (a.out has no
           read-only segment); the kernel maps the file from offset 0 at
           UTZERO, so text starts at UTZERO + the header's size (-T)
  data     the next bytes of the file (segments are packed end to end, Go's
           Hplan9 layout), loaded at the end of text rounded up to UTROUND (-R)
  bss      zeros after data in memory, nothing in the file
  symbols  after data in the file (-s leaves them out): per symbol, its value
           (big-endian, 8 bytes with HDR_MAGIC, else 4), its type letter with
           0x80 set, its name and a NUL. T/t text, D/d data and read-only data,
           B/b bss; lower case for locals. Absolute symbols have no letter in
           a.out's alphabet and are left out.

There is no place for DWARF: its sections are left out (said once with -v).
spsz and pcsz are 0: minild writes no pc/sp or pc/line tables.
"""

from __future__ import annotations

import struct

import numpy as np

from ..errors import fail
from ..vocab import Bind, Kind, SegmentPlan, SymType
from . import Format, rules

HDR_MAGIC = 0x8000

SEGMENTS = (
    SegmentPlan("text", "rx", ((Kind.TEXT, ".text"), (Kind.RODATA, ".rodata"))),
    SegmentPlan("data", "rw", ((Kind.DATA, ".data"), (Kind.BSS, ".bss"))),
)

# Symbol type letters by the kind of the section a symbol is in.
LETTER = {Kind.TEXT: ord("T"), Kind.RODATA: ord("D"), Kind.DATA: ord("D"), Kind.BSS: ord("B")}


def defaults(arch) -> tuple[int, int]:
    return arch.plan9.text_addr, arch.plan9.round


def headr_size(ctx) -> int:
    return 40 if ctx.arch.plan9.hdr64 else 32


def symbols(ctx) -> bytes:
    """symbols builds the symbol table: text symbols in address order, then
    the others in address order (Go writes text first, then data and bss),
    each entry laid out with numpy from the names' bytes."""
    bind, typ, sec = ctx.sym_bind, ctx.sym_type, ctx.sym_sec
    ids = np.arange(len(bind))
    placed = sec >= 0
    out = np.where(placed, ctx.sec_out[np.maximum(sec, 0)], -1)
    keep = (out >= 0) & (typ != SymType.SECTION) & (ctx.names.length > 0)
    keep &= (bind == Bind.LOCAL) | (ctx.sym_res == ids)   # a global's winning definition
    keep = np.flatnonzero(keep)
    kinds = ctx.sec_kind[sec[keep]]
    letters = np.zeros(len(Kind), np.uint8)
    for k, c in LETTER.items():
        letters[k] = c
    letter = letters[kinds] + np.where(bind[keep] == Bind.LOCAL, ord("a") - ord("A"), 0)
    addr = ctx.sym_addr[keep]
    order = np.lexsort((keep, addr, kinds != Kind.TEXT))
    keep, letter, addr = keep[order], letter[order], addr[order]

    wide = 8 if ctx.arch.plan9.hdr64 else 4
    blob, offs = ctx.names.strtab(keep)           # names, each with its NUL
    lens = np.diff(np.append(offs, len(blob)))
    entry = wide + 1 + lens                       # value, type byte, name and NUL
    start = np.concatenate(([0], np.cumsum(entry)[:-1])).astype(np.int64)
    table = np.zeros(int(entry.sum()), np.uint8)
    value = addr.astype(">u8" if wide == 8 else ">u4")
    table[start[:, None] + np.arange(wide)] = value.view(np.uint8).reshape(-1, wide)
    table[start + wide] = letter | 0x80
    # The names' bytes, each run moved from its place in blob to its entry.
    src = np.arange(len(blob)) - np.repeat(offs, lens) + np.repeat(start + wide + 1, lens)
    table[src] = np.frombuffer(blob, np.uint8)
    return table.tobytes()


def asmb2(ctx, out) -> None:
    """asmb2 writes the symbol table after data, then the header at offset 0."""
    text, data = _segment(ctx, "text"), _segment(ctx, "data")
    headr = headr_size(ctx)
    syms = b"" if ctx.opts.strip else symbols(ctx)
    out.seek(ctx.filesize)
    out.write(syms)
    p9 = ctx.arch.plan9
    textsize = text.filelen - headr if text is not None else 0
    datasize = data.filelen if data is not None else 0
    bss = (data.length - data.filelen) if data is not None else 0
    entry = ctx.entry_addr
    words = (p9.magic, textsize, datasize, bss, len(syms),
             entry & ~0x80000000 if p9.hdr64 else entry, 0, 0)
    if any(w >= 1 << 32 for w in words):
        raise fail(f"plan 9 a.out: a header field does not fit 32 bits: {words}")
    hdr = struct.pack(">8I", *words)
    if p9.hdr64:
        hdr += struct.pack(">Q", entry)
    out.seek(0)
    out.write(hdr)


def _segment(ctx, name: str):
    return next((s for s in ctx.segments if s.name == name), None)


def notes(ctx) -> list[str]:
    """notes says what the format left out."""
    dwarf = {ctx.sec_name[i] for i in np.flatnonzero(ctx.sec_kind == Kind.DWARF).tolist()}
    if not dwarf:
        return []
    return [f"plan9: DWARF sections left out ({', '.join(sorted(dwarf))}): the a.out "
            "format has no place for them"]


# What plan 9's linkers define (end(2)): the ends of text, data and bss; and
# the underscore forms other toolchains' programs use.
LINKER_SYMBOLS = {
    "etext": rules.etext, "_etext": rules.etext,
    "edata": rules.edata, "_edata": rules.edata,
    "end": rules.end, "_end": rules.end,
}

FORMAT = Format(name="plan9", part="plan9", segments=SEGMENTS, defaults=defaults,
                headr_size=headr_size, address=rules.packed, asmb2=asmb2,
                linker_symbols=LINKER_SYMBOLS, notes=notes)
