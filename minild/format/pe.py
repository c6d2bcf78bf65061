"""pe: PE/COFF executables for amd64 (PE32+), x86 (PE32) and arm64 (PE32+).

The file, as lld-link and Go's Hwindows writer lay it out:

  headers   a DOS header and stub, "PE\\0\\0", the COFF header (the arch's
            machine), the optional header (PE32 or PE32+, 16 data directories)
            and the section table; SizeOfHeaders rounded to FileAlignment
  sections  .text, .rdata, .data, .bss, each starting on a SectionAlignment
            boundary in memory (-R, 0x1000) and a FileAlignment one in the file
            (--file-alignment, 0x200); .bss has no file bytes; then .reloc
  imports   gensections turns the used imports into a thunk per import called
            by name (in .text: `jmp *__imp_NAME`, as GNU ld and lld make them
            from import libraries) and an import table in .rdata: the
            descriptors, lookup tables, IAT and hint/name table, DLL names;
            the import and IAT data directories point at them
  .reloc    base relocations for every absolute pointer-size place (DIR64 on
            64-bit, HIGHLOW on x86), so that the image can be loaded at any
            base: DYNAMIC_BASE, NX_COMPAT and (64-bit) HIGH_ENTROPY_VA are set,
            as lld sets them; --no-dynamicbase leaves all of it out and marks
            the relocations stripped

-T is the image base (lld's defaults: 0x140000000 for 64-bit, 0x400000 for
x86). TimeDateStamp and CheckSum are 0, so the output is the same for the
same input (lld's /Brepro writes a hash instead; the loader checks CheckSum
only for drivers). DWARF is left out (said once with -v).
"""

from __future__ import annotations

import struct

import msgspec
import numpy as np

from ..errors import Diagnostics, fail, usage
from ..vocab import Kind, SegmentPlan, align_up
from . import Format, imports, rules

SEGMENTS = (
    SegmentPlan(".text", "rx", ((Kind.TEXT, ".text"),)),
    SegmentPlan(".rdata", "r", ((Kind.RODATA, ".rdata"),)),
    SegmentPlan(".data", "rw", ((Kind.DATA, ".data"),)),
    SegmentPlan(".bss", "rw", ((Kind.BSS, ".bss"),)),
)

# COFF characteristics
RELOCS_STRIPPED, EXECUTABLE_IMAGE, LARGE_ADDRESS_AWARE, MACHINE_32BIT = 0x1, 0x2, 0x20, 0x100
# DllCharacteristics
HIGH_ENTROPY_VA, DYNAMIC_BASE, NX_COMPAT, TERMINAL_SERVER_AWARE = 0x20, 0x40, 0x100, 0x8000
# section characteristics
CNT_CODE, CNT_INITIALIZED_DATA, CNT_UNINITIALIZED_DATA = 0x20, 0x40, 0x80
MEM_DISCARDABLE, MEM_EXECUTE, MEM_READ, MEM_WRITE = 0x02000000, 0x20000000, 0x40000000, 0x80000000
SUBSYSTEMS = {"windows": 2, "console": 3}
# data directories
DIR_IMPORT, DIR_BASERELOC, DIR_IAT = 1, 5, 12
# base relocation types
REL_BASED_HIGHLOW, REL_BASED_DIR64 = 3, 10

DOS_STUB = (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00"
            b"\xb8\x00\x00\x00\x00\x00\x00\x00\x40" + bytes(35))   # e_lfanew at 0x3c, filled in
# The classic 16-bit stub: print the message and exit.
DOS_CODE = (b"\x0e\x1f\xba\x0e\x00\xb4\x09\xcd\x21\xb8\x01\x4c\xcd\x21"
            b"This program cannot be run in DOS mode.\r\r\n$")
PE_OFFSET = 0x80
COFF = struct.Struct("<HHIIIHH")
SECTION = struct.Struct("<8sIIIIIIHHI")


class State(msgspec.Struct):
    """State is PE's private part of the link (Link.fmt)."""

    file_align: int
    idata: int = -1              # the import table's input section, or -1
    # per DLL: (name, [(import entry, name in the DLL)]), in the table's order
    dlls: list = msgspec.field(default_factory=list)
    # offsets in the import table: descriptors at 0, then these
    ilt: int = 0
    iat: int = 0
    iat_size: int = 0
    hints: list = msgspec.field(default_factory=list)     # per import: its hint/name offset
    names: list = msgspec.field(default_factory=list)     # per DLL: its name's offset
    idata_size: int = 0
    has_reloc: bool = False
    reloc: bytes = b""           # .reloc's contents
    reloc_rva: int = 0
    reloc_off: int = 0
    headers: int = 0             # SizeOfHeaders


def _ptr(ctx) -> int:
    return ctx.arch.ptr_size


def defaults(arch) -> tuple[int, int]:
    return arch.pe.image_base, 0x1000


# --- gensections: thunks and the import table -----------------------------

def _dll_name_ok(module: str) -> bool:
    return bool(module) and not any(c in module for c in "/\\:\0") and module not in (".", "..")


def gensections(ctx) -> None:
    """gensections makes what the used imports need: the import table in
    .rdata, with an IAT slot for each, and a thunk for each one called by
    name (format.imports); every import's symbol then has a place."""
    o = ctx.opts
    fa = o.file_align if o.file_align is not None else 0x200
    ctx.fmt = st = State(file_align=fa)
    if not ctx.imports_used:
        return
    st.dlls = imports.used_by_module(ctx)
    d = Diagnostics()
    for dll, funcs in st.dlls:
        if not _dll_name_ok(dll):
            d.error(f"symbol {ctx.names[funcs[0][0]]} is imported from {dll!r}, which is not a "
                    "DLL's file name (a PE import names a DLL, e.g. kernel32.dll, not a path)")
    d.check()
    pe, p = ctx.arch.pe, _ptr(ctx)
    n = sum(len(v) for _, v in st.dlls)
    # The table: descriptors, lookup tables, IATs (one run: the IAT data
    # directory), hint/name entries, DLL names.
    off = 20 * (len(st.dlls) + 1)
    st.ilt = off
    off += p * (n + len(st.dlls))
    st.iat = off
    st.iat_size = p * (n + len(st.dlls))
    off += st.iat_size
    slots = {}
    for d_i, (_, funcs) in enumerate(st.dlls):
        for i, name in funcs:
            slots[i] = st.iat + p * (len(slots) + d_i)
            st.hints.append(off)
            off = align_up(off + 2 + len(name.encode()) + 1, 2)
    for dll, _ in st.dlls:
        st.names.append(off)
        off = align_up(off + len(dll.encode()) + 1, 2)
    st.idata_size = off
    obj = ctx.add_object("<pe imports>")
    (st.idata,) = ctx.add_sections(obj, [".idata"], [Kind.RODATA], [p], [st.idata_size], [None])
    st.idata = int(st.idata)
    imports.place(ctx, obj, st.idata, slots, pe.thunk, pe.thunk_relocs, ".text$thunks",
                  len(pe.thunk))


# --- address and layout ---------------------------------------------------

def headr_size(ctx) -> int:
    """headr_size: the headers, DOS stub to section table, before rounding
    (address rounds them to FileAlignment)."""
    st = ctx.fmt
    st.has_reloc = ctx.opts.dynamicbase and _based(ctx)
    nsec = len(_sections(ctx)) + st.has_reloc
    opt = (112 if _ptr(ctx) == 8 else 96) + 16 * 8
    return PE_OFFSET + 4 + COFF.size + opt + SECTION.size * nsec


def _sections(ctx) -> list:
    """_sections: the segments that become PE sections (a section of no bytes
    at all, such as an empty .data, is left out: a loader refuses it)."""
    return [s for s in ctx.segments if s.loaded and any(o.size for o in s.sections)]


def _based(ctx) -> bool:
    """_based: the program has places that need base relocations."""
    r = ctx.relocs
    idx = [ctx.arch.index[n] for n in ctx.arch.pe.rebased]
    return bool(np.isin(r.type, idx).any())


def address(ctx, headr: int) -> None:
    """address is PE's rule (Go's Hwindows): each section at the next
    SectionAlignment boundary in memory and FileAlignment boundary in the
    file, the headers first in both."""
    st = ctx.fmt
    SA, FA, base = ctx.round, st.file_align, ctx.text_addr
    if FA & (FA - 1) or not 0x200 <= FA <= 0x10000:
        raise usage(f"--file-alignment {FA:#x}: expected a power of two from 0x200 to 0x10000")
    if SA < FA:
        raise usage(f"-R {SA:#x}: the section alignment must be at least the file alignment "
                    f"({FA:#x})")
    if base % 0x10000:
        raise usage(f"-T {base:#x}: a PE image base must be a multiple of 64 KiB")
    ctx.image_base = base
    st.headers = fileoff = align_up(headr, FA)
    rva = align_up(st.headers, SA)
    for seg in ctx.segments:
        if not seg.loaded:
            continue
        seg.vaddr, seg.fileoff = base + rva, fileoff
        va, _ = rules._sections(seg, seg.vaddr, fileoff)
        if seg.length:           # an empty one takes no room (see _sections)
            rva = align_up(va - base, SA)
            fileoff += align_up(seg.filelen, FA)
    st.reloc_rva, st.reloc_off = rva, fileoff


def layout(ctx, end: int) -> int:
    """layout builds .reloc from the absolute pointer-size relocations and
    returns the file's size: every section's raw data rounded to FileAlignment."""
    st = ctx.fmt
    a, r = ctx.arch, ctx.relocs
    fixed = np.isin(r.type, [a.index[n] for n in a.pe.fixed])
    placed = ctx.sec_out[r.sec] >= 0
    if ctx.opts.dynamicbase and (fixed & placed).any():
        d = Diagnostics()
        for k in np.flatnonzero(fixed & placed)[:20].tolist():
            d.error(f"{ctx.reloc_site(k)}: relocation {a.howtos[int(r.type[k])].name} against "
                    f"{ctx.reloc_target(k)} cannot be rebased (no base relocation holds it); "
                    "link with --no-dynamicbase for an image at a fixed base")
        d.check()
    if st.has_reloc:
        k = np.flatnonzero(np.isin(r.type, [a.index[n] for n in a.pe.rebased]) & placed)
        rvas = np.sort(ctx.sec_addr[r.sec[k]] + r.off[k] - ctx.image_base)
        st.reloc = base_relocs(rvas, REL_BASED_DIR64 if _ptr(ctx) == 8 else REL_BASED_HIGHLOW)
        return st.reloc_off + align_up(len(st.reloc), st.file_align)
    last = max((s.fileoff + align_up(s.filelen, st.file_align) for s in _sections(ctx)),
               default=st.headers)
    return max(last, st.headers)


def base_relocs(rvas: np.ndarray, kind: int) -> bytes:
    """base_relocs lays out .reloc: per 4 KiB page, a block of its RVA, its
    size, and a 16-bit entry (type << 12 | offset) per place, padded to 4 bytes."""
    out = []
    pages = rvas & ~0xFFF
    for page in np.unique(pages).tolist():
        offs = rvas[pages == page] - page
        ent = ((kind << 12) | offs).astype("<u2")
        if len(ent) % 2:
            ent = np.append(ent, np.uint16(0)).astype("<u2")   # ABSOLUTE: padding
        out.append(struct.pack("<II", page, 8 + 2 * len(ent)) + ent.tobytes())
    return b"".join(out)


# --- asmb2 ------------------------------------------------------------------

def _perm(seg) -> int:
    kinds = {o.kind for o in seg.sections}
    flags = MEM_READ
    if "x" in seg.perm:
        flags |= MEM_EXECUTE | CNT_CODE
    if "w" in seg.perm:
        flags |= MEM_WRITE
    if Kind.BSS in kinds:
        flags |= CNT_UNINITIALIZED_DATA
    elif "x" not in seg.perm:
        flags |= CNT_INITIALIZED_DATA
    return flags


def asmb2(ctx, out) -> None:
    """asmb2 writes the import table, .reloc, and the headers."""
    st, a = ctx.fmt, ctx.arch
    base, p = ctx.image_base, _ptr(ctx)
    idata_rva = 0
    if st.idata >= 0:
        idata_rva = int(ctx.sec_addr[st.idata]) - base
        out.seek(int(ctx.sec_fileoff[st.idata]))
        out.write(_import_table(st, idata_rva, p))
    if st.has_reloc:
        out.seek(st.reloc_off)
        out.write(st.reloc)

    secs = _sections(ctx)
    rows = []
    for s in secs:
        raw = 0 if all(o.nobits for o in s.sections) else align_up(s.filelen, st.file_align)
        rows.append((s.name, align_up(s.length, 1), s.vaddr - base, raw,
                     s.fileoff if raw else 0, _perm(s)))
    if st.has_reloc:
        rows.append((".reloc", len(st.reloc), st.reloc_rva, align_up(len(st.reloc),
                     st.file_align), st.reloc_off, CNT_INITIALIZED_DATA | MEM_READ |
                     MEM_DISCARDABLE))
    size_of_image = align_up(max((rva + size for _, size, rva, *_ in rows),
                                 default=st.headers), ctx.round)
    code = sum(raw for name, _, _, raw, _, fl in rows if fl & CNT_CODE)
    init = sum(raw for name, _, _, raw, _, fl in rows if fl & CNT_INITIALIZED_DATA)
    uninit = sum(align_up(size, st.file_align) for name, size, _, _, _, fl in rows
                 if fl & CNT_UNINITIALIZED_DATA)
    base_of_code = next((rva for _, _, rva, _, _, fl in rows if fl & CNT_CODE), 0)
    base_of_data = next((rva for _, _, rva, _, _, fl in rows if not fl & CNT_CODE), 0)

    dirs = [(0, 0)] * 16
    if st.idata >= 0:
        dirs[DIR_IMPORT] = (idata_rva, 20 * (len(st.dlls) + 1))
        dirs[DIR_IAT] = (idata_rva + st.iat, st.iat_size)
    if st.has_reloc:
        dirs[DIR_BASERELOC] = (st.reloc_rva, len(st.reloc))

    chars = EXECUTABLE_IMAGE | (LARGE_ADDRESS_AWARE if p == 8 else MACHINE_32BIT)
    dll = NX_COMPAT | TERMINAL_SERVER_AWARE
    if ctx.opts.dynamicbase:
        dll |= DYNAMIC_BASE | (HIGH_ENTROPY_VA if p == 8 else 0)
    else:
        chars |= RELOCS_STRIPPED
    entry = ctx.entry_addr - base if ctx.entry_addr else 0
    opt_size = (112 if p == 8 else 96) + 16 * 8
    hdr = bytearray(DOS_STUB + DOS_CODE)
    struct.pack_into("<I", hdr, 0x3C, PE_OFFSET)
    hdr = hdr.ljust(PE_OFFSET, b"\0") + b"PE\0\0"
    hdr += COFF.pack(a.pe.machine, len(rows), 0, 0, 0, opt_size, chars)
    if p == 8:
        opt = struct.pack("<HBBIIIIIQIIHHHHHHIIIIHHQQQQII", 0x20B, 14, 0, code, init, uninit,
                          entry, base_of_code, base, ctx.round, st.file_align, 6, 0, 0, 0, 6,
                          0, 0, size_of_image, st.headers, 0, SUBSYSTEMS[ctx.opts.subsystem],
                          dll, 0x100000, 0x1000, 0x100000, 0x1000, 0, 16)
    else:
        opt = struct.pack("<HBBIIIIIIIIIHHHHHHIIIIHHIIIIII", 0x10B, 14, 0, code, init, uninit,
                          entry, base_of_code, base_of_data, base, ctx.round, st.file_align,
                          6, 0, 0, 0, 6, 0, 0, size_of_image, st.headers, 0,
                          SUBSYSTEMS[ctx.opts.subsystem], dll, 0x100000, 0x1000, 0x100000,
                          0x1000, 0, 16)
    hdr += opt + b"".join(struct.pack("<II", *d) for d in dirs)
    for name, size, rva, raw, ptr, fl in rows:
        hdr += SECTION.pack(name.encode()[:8], size, rva, raw, ptr, 0, 0, 0, 0, fl)
    if len(hdr) > st.headers:
        raise fail(f"PE headers take {len(hdr)} bytes, more than the {st.headers} reserved")
    out.seek(0)
    out.write(bytes(hdr))


def _import_table(st: State, rva: int, p: int) -> bytes:
    """_import_table lays out the import table (offsets as gensections chose)."""
    buf = bytearray(st.idata_size)
    k = 0
    ilt, iat = st.ilt, st.iat
    word = "<Q" if p == 8 else "<I"
    for d, (dll, funcs) in enumerate(st.dlls):
        struct.pack_into("<IIIII", buf, 20 * d, rva + ilt, 0, 0, rva + st.names[d], rva + iat)
        for _, name in funcs:
            hint = st.hints[k]
            struct.pack_into(word, buf, ilt, rva + hint)     # by name: the hint/name's RVA
            struct.pack_into(word, buf, iat, rva + hint)     # the loader overwrites it
            struct.pack_into("<H", buf, hint, 0)
            buf[hint + 2:hint + 2 + len(name.encode())] = name.encode()
            ilt += p
            iat += p
            k += 1
        ilt += p                                             # each DLL's list ends with 0
        iat += p
        buf[st.names[d]:st.names[d] + len(dll.encode())] = dll.encode()
    return bytes(buf)


def notes(ctx) -> list[str]:
    dwarf = {ctx.sec_name[i] for i in np.flatnonzero(ctx.sec_kind == Kind.DWARF).tolist()}
    if not dwarf:
        return []
    return [f"pe: DWARF sections left out ({', '.join(sorted(dwarf))})"]


def _image_base(ctx) -> int:
    return ctx.image_base


# lld-link defines __ImageBase; GNU ld __image_base__ (and the ends of sections).
LINKER_SYMBOLS = {"__ImageBase": _image_base, "__image_base__": _image_base,
                  "etext": rules.etext, "_etext": rules.etext,
                  "edata": rules.edata, "_edata": rules.edata,
                  "end": rules.end, "_end": rules.end}

FORMAT = Format(name="pe", part="pe", segments=SEGMENTS, defaults=defaults,
                headr_size=headr_size, address=address, asmb2=asmb2, layout=layout,
                gensections=gensections, linker_symbols=LINKER_SYMBOLS, imports=True,
                notes=notes)

