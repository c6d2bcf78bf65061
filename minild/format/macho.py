"""macho: Mach-O executables for amd64 and arm64, as dyld loads them today.

The file is a PIE that dyld loads and slides (MH_EXECUTE with MH_PIE,
MH_DYLDLINK, MH_TWOLEVEL, MH_NOUNDEFS), laid out as ld64 and lld lay it out:

  __PAGEZERO    4 GiB of no access below the image (a NULL dereference faults)
  __TEXT        the header and load commands, __text, __stubs (one per import
                called: `jmp *__got[NAME]`), __const (all read-only data)
  __DATA_CONST  __got: a slot per used import, bound by dyld at load
  __DATA        __data, __bss
  __DWARF       DWARF's sections, in the file and not accessible (-s: none)
  __LINKEDIT    rebase and bind opcodes, the export trie, function starts, the
                symbol table, the indirect symbol table, the string table and,
                on arm64, the code signature

Segments start on a page (16 KiB on arm64, 4 KiB on amd64) in memory and in
the file. Fixups are LC_DYLD_INFO_ONLY's opcode streams rather than chained
fixups: every slot and pointer is listed once, in order, in a stream that
llvm-objdump, Go's debug/macho, lldb and every dyld read, and the writer is
a few lines (chained fixups would rewrite the pointers in place in a per-page
chain format that differs per OS version). Every absolute pointer in __DATA
gets a rebase; a pointer in __TEXT, or an absolute place that is not a
pointer (R_X86_64_32), cannot be expressed in a PIE and is refused.

The code signature (arm64: the kernel kills an unsigned arm64 process) is an
ad-hoc, linker-signed CodeDirectory of SHA-256 hashes of 4 KiB pages, as ld64
and Go write it; it covers the file up to itself and is the last thing
written. Its identifier is the output's file name, as ld64's. LC_UUID is an
MD5 of the file before the signature, so the output is the same for the same
input.

DWARF: lldb and llvm-dwarfdump read the __DWARF sections of the executable
itself (no dSYM); their addresses inside DWARF are the program's unslid ones.
"""

from __future__ import annotations

import hashlib
import os
import struct

import msgspec
import numpy as np

from ..errors import Diagnostics, fail, usage
from ..listing import listed_symbols
from ..vocab import ABS, Bind, Kind, SegmentPlan, align_up
from . import Format, imports, rules
from .leb import uleb

SEGMENTS = (
    SegmentPlan("__TEXT", "rx", ((Kind.TEXT, "__text"), (Kind.TEXT, "__stubs", "__stubs"),
                                 (Kind.RODATA, "__const"))),
    SegmentPlan("__DATA_CONST", "rw", ((Kind.DATA, "__got", "__got"),)),
    SegmentPlan("__DATA", "rw", ((Kind.DATA, "__data"), (Kind.BSS, "__bss"))),
    SegmentPlan("__DWARF", "", ((Kind.DWARF, None),)),
)

LIBSYSTEM = "/usr/lib/libSystem.B.dylib"
DYLD = "/usr/lib/dyld"
PAGEZERO = 1 << 32

MH_MAGIC_64, MH_EXECUTE = 0xFEEDFACF, 2
MH_NOUNDEFS, MH_DYLDLINK, MH_TWOLEVEL, MH_PIE = 0x1, 0x4, 0x80, 0x200000
LC_SEGMENT_64, LC_SYMTAB, LC_DYSYMTAB, LC_LOAD_DYLIB, LC_LOAD_DYLINKER = 0x19, 0x2, 0xB, 0xC, 0xE
LC_UUID, LC_CODE_SIGNATURE, LC_FUNCTION_STARTS, LC_BUILD_VERSION = 0x1B, 0x1D, 0x26, 0x32
LC_DYLD_INFO_ONLY, LC_MAIN = 0x80000022, 0x80000028
VM_PROT_READ, VM_PROT_WRITE, VM_PROT_EXECUTE = 1, 2, 4
SG_READ_ONLY = 0x10
S_ZEROFILL, S_NON_LAZY_SYMBOL_POINTERS, S_SYMBOL_STUBS = 0x1, 0x6, 0x8
S_ATTR_PURE_INSTRUCTIONS, S_ATTR_SOME_INSTRUCTIONS, S_ATTR_DEBUG = 0x80000000, 0x400, 0x02000000
N_EXT, N_ABS, N_SECT = 0x1, 0x2, 0xE
N_WEAK_DEF, REFERENCED_DYNAMICALLY = 0x80, 0x10
PLATFORM_MACOS = 1
# rebase and bind opcodes
REBASE_TYPE_POINTER, BIND_TYPE_POINTER = 1, 1
REBASE_SET_TYPE_IMM, REBASE_SET_SEGMENT_AND_OFFSET_ULEB = 0x10, 0x20
REBASE_ADD_ADDR_ULEB, REBASE_DO_REBASE_IMM_TIMES = 0x30, 0x50
BIND_SET_DYLIB_ORDINAL_IMM, BIND_SET_DYLIB_ORDINAL_ULEB = 0x10, 0x20
BIND_SET_SYMBOL_TRAILING_FLAGS_IMM, BIND_SET_TYPE_IMM = 0x40, 0x50
BIND_SET_SEGMENT_AND_OFFSET_ULEB, BIND_DO_BIND = 0x70, 0x90
# code signature
CSMAGIC_EMBEDDED_SIGNATURE, CSMAGIC_CODEDIRECTORY = 0xFADE0CC0, 0xFADE0C02
CS_ADHOC, CS_LINKER_SIGNED, CS_EXECSEG_MAIN_BINARY = 0x2, 0x20000, 0x1
CS_PAGE = 12
CD_HEADER = 88    # a version 0x20400 CodeDirectory (execSeg fields included)

SEG = struct.Struct("<II16sQQQQiiII")
SECT = struct.Struct("<16s16sQQIIIIIIII")
NLIST = np.dtype([("strx", "<u4"), ("type", "u1"), ("sect", "u1"), ("desc", "<u2"),
                  ("value", "<u8")])


class State(msgspec.Struct):
    """State is Mach-O's private part of the link (Link.fmt)."""

    dylibs: list = msgspec.field(default_factory=lambda: [LIBSYSTEM])
    got: int = -1                 # the __got input section, or -1
    binds: list = msgspec.field(default_factory=list)   # (import entry, ordinal, name, slot)
    sign: bool = False
    minos: int = 0x000B0000
    # layout: the load commands' segments, in order, and __LINKEDIT's pieces
    segs: list = msgspec.field(default_factory=list)
    linkedit_off: int = 0
    linkedit_va: int = 0
    pieces: dict = msgspec.field(default_factory=dict)   # name -> (offset, bytes)
    nsyms: tuple = (0, 0, 0)      # locals, external definitions, undefined
    nindirect: int = 0
    sig_off: int = 0
    sig_size: int = 0


def defaults(arch) -> tuple[int, int]:
    return PAGEZERO, arch.macho.page


def _version(text: str) -> int:
    try:
        parts = [int(x) for x in text.split(".")]
    except ValueError:
        parts = []
    if not 1 <= len(parts) <= 3 or not all(0 <= p < 256 for p in parts[1:]) \
            or not 0 <= parts[0] < 65536:
        raise usage(f"--macos-version {text!r}: expected X.Y or X.Y.Z (e.g. 11.0)")
    parts += [0] * (3 - len(parts))
    return parts[0] << 16 | parts[1] << 8 | parts[2]


# --- gensections: stubs and __got ------------------------------------------

def gensections(ctx) -> None:
    """gensections makes a __got slot for each used import and a stub for each
    one called by name (format.imports), and records the binds dyld makes."""
    o = ctx.opts
    st = ctx.fmt = State(sign=ctx.arch.macho.sign if o.codesign is None else o.codesign,
                         minos=_version(o.macos_version))
    if not ctx.imports_used:
        return
    mods = imports.used_by_module(ctx)
    d = Diagnostics()
    for module, funcs in mods:
        if not module.startswith("/"):
            d.error(f"symbol {ctx.names[funcs[0][0]]} is imported from {module!r}, which is not "
                    "an absolute install path (a Mach-O import names a dylib as dyld finds it, "
                    f"e.g. {LIBSYSTEM})")
    d.check()
    for module, _ in mods:
        if module not in st.dylibs:
            st.dylibs.append(module)
    slots = {}
    for module, funcs in mods:
        for i, name in funcs:
            st.binds.append((i, st.dylibs.index(module) + 1, name, 8 * len(slots)))
            slots[i] = 8 * len(slots)
    obj = ctx.add_object("<macho imports>")
    (got,) = ctx.add_sections(obj, ["__got"], [Kind.DATA], [8], [8 * len(slots)], [None])
    st.got = int(got)
    m = ctx.arch.macho
    imports.place(ctx, obj, st.got, slots, m.stub, m.stub_relocs, "__stubs",
                  4 if len(m.stub) % 4 == 0 else 2)


# --- address and layout ------------------------------------------------------

def _out(ctx):
    """_out: the output sections the load commands list, with their segments."""
    return [(s, o) for s in ctx.segments for o in s.sections]


def _lc_sizes(ctx) -> list[int]:
    st = ctx.fmt
    segs = [s for s in ctx.segments if s.sections]
    sizes = [SEG.size]                                         # __PAGEZERO
    sizes += [SEG.size + SECT.size * len(s.sections) for s in segs]
    sizes += [SEG.size, 48, 24, 80, align_up(12 + len(DYLD) + 1, 8), 24, 24, 24]
    sizes += [align_up(24 + len(p) + 1, 8) for p in st.dylibs]
    sizes += [16] + ([16] if st.sign else [])
    return sizes


def headr_size(ctx) -> int:
    return 32 + sum(_lc_sizes(ctx))


def address(ctx, headr: int) -> None:
    """address: __TEXT at -T (0x100000000, after __PAGEZERO) and file offset 0,
    its sections after the header; each later segment on the next page in
    memory and in the file; __DWARF after __DATA in the file (its sections at
    address 0 inside the program, as DWARF's offsets need)."""
    page, base = ctx.round, ctx.text_addr
    if base % page:
        raise usage(f"-T {base:#x}: __TEXT must start on a page ({page:#x})")
    ctx.image_base = base
    st = ctx.fmt
    va, off = base, 0
    for seg in ctx.segments:
        if not seg.loaded:
            rules._unloaded(seg, off)
            st.segs.append((seg, va, align_up(seg.filelen, page)))
            va += align_up(seg.filelen, page)
            off = seg.fileoff + align_up(seg.filelen, page)
            continue
        seg.vaddr, seg.fileoff = va, off
        rules._sections(seg, va + (headr if off == 0 else 0), off)
        vmsize = align_up(seg.length, page)
        st.segs.append((seg, seg.vaddr, vmsize))
        va += vmsize
        off += align_up(seg.filelen, page)
    st.linkedit_va, st.linkedit_off = va, off


def _seg_index(ctx, sec: np.ndarray) -> np.ndarray:
    """_seg_index: each input section's segment, numbered as the load commands
    number them (__PAGEZERO is 0)."""
    out_seg = np.full(len(ctx.outsections) + 1, -1, np.int64)
    k = 0
    for j, (seg, _, _) in enumerate(ctx.fmt.segs, start=1):
        for _ in seg.sections:
            out_seg[k] = j
            k += 1
    return out_seg[ctx.sec_out[sec]]


def layout(ctx, end: int) -> int:
    """layout builds __LINKEDIT (everything but the code signature's hashes)
    and returns the file's size."""
    st, a, r = ctx.fmt, ctx.arch, ctx.relocs
    m = a.macho
    placed = ctx.sec_out[r.sec] >= 0
    loaded = np.zeros(len(ctx.sec_kind), bool)
    for s in ctx.segments:
        if s.loaded:
            for o in s.sections:
                loaded[o.inputs] = True
    d = Diagnostics()
    fixed = np.flatnonzero(np.isin(r.type, [a.index[n] for n in m.fixed]) & placed
                           & loaded[r.sec])
    for k in fixed[:20].tolist():
        d.error(f"{ctx.reloc_site(k)}: relocation {a.howtos[int(r.type[k])].name} against "
                f"{ctx.reloc_target(k)} cannot be expressed in a position-independent "
                "executable (dyld slides the image; only pointer-size absolute places are "
                "rebased)")
    k = np.flatnonzero(np.isin(r.type, [a.index[n] for n in m.rebased]) & placed & loaded[r.sec])
    intext = k[ctx.sec_kind[r.sec[k]] <= Kind.RODATA]
    for j in intext[:20].tolist():
        d.error(f"{ctx.reloc_site(j)}: relocation {a.howtos[int(r.type[j])].name} against "
                f"{ctx.reloc_target(j)} needs a rebase, and __TEXT is read-only at load "
                "(keep pointers in writable data)")
    d.check()

    pieces = []
    # rebase: one opcode run per pointer, in address order
    segidx = _seg_index(ctx, r.sec[k])
    segbase = {j: va for j, (_, va, _) in enumerate(st.segs, start=1)}
    addr = ctx.sec_addr[r.sec[k]] + r.off[k]
    order = np.lexsort((addr, segidx))
    reb = bytearray([REBASE_SET_TYPE_IMM | REBASE_TYPE_POINTER])
    for sj, ad in zip(segidx[order].tolist(), addr[order].tolist()):
        reb += bytes([REBASE_SET_SEGMENT_AND_OFFSET_ULEB | sj]) + uleb(ad - segbase[sj])
        reb.append(REBASE_DO_REBASE_IMM_TIMES | 1)
    reb.append(0)
    pieces.append(("rebase", bytes(reb) if len(k) else b""))
    # bind: each __got slot to its import
    bind = bytearray()
    if st.binds:
        gj = int(_seg_index(ctx, np.array([st.got]))[0])
        got_off = int(ctx.sec_addr[st.got]) - segbase[gj]
        for _, ordinal, name, slot in st.binds:
            bind += (bytes([BIND_SET_DYLIB_ORDINAL_IMM | ordinal]) if ordinal < 16 else
                     bytes([BIND_SET_DYLIB_ORDINAL_ULEB]) + uleb(ordinal))
            bind += bytes([BIND_SET_SYMBOL_TRAILING_FLAGS_IMM]) + name.encode() + b"\0"
            bind += bytes([BIND_SET_TYPE_IMM | BIND_TYPE_POINTER,
                           BIND_SET_SEGMENT_AND_OFFSET_ULEB | gj]) + uleb(got_off + slot)
            bind.append(BIND_DO_BIND)
        bind.append(0)
    pieces.append(("bind", bytes(bind)))
    pieces.append(("exports", _export_trie()))
    pieces.append(("starts", _function_starts(ctx)))
    syms, strtab, indirect = _symbols(ctx)
    pieces += [("symtab", syms), ("indirect", indirect), ("strtab", strtab)]

    off = st.linkedit_off
    for name, blob in pieces:
        off = align_up(off, 8)
        st.pieces[name] = (off, blob)
        off += len(blob)
    if st.sign:
        st.sig_off = off = align_up(off, 16)
        st.sig_size = _signature_size(ctx, off)
        off += st.sig_size
    return off


def _export_trie() -> bytes:
    """_export_trie: __mh_execute_header at offset 0 (what an executable must
    export: dyld and the tools find the image's header by it)."""
    name = b"__mh_execute_header\0"
    child = bytes([2, 0, 0, 0])         # terminal: 2 bytes (flags 0, address 0), no children
    root = bytes([0, 1]) + name
    return align_up_bytes(root + uleb(len(root) + 1) + child, 8)


def align_up_bytes(b: bytes, a: int) -> bytes:
    return b + bytes(align_up(len(b), a) - len(b))


def _function_starts(ctx) -> bytes:
    """_function_starts: ULEB128 deltas of the functions' addresses from
    __TEXT (every named symbol in code), ending with 0."""
    loc, glob = listed_symbols(ctx)
    ids = np.concatenate((loc, glob))
    sec = ctx.sym_sec[ids]
    ids = ids[(sec >= 0)]
    ids = ids[ctx.sec_kind[ctx.sym_sec[ids]] == Kind.TEXT]
    starts = np.unique(ctx.sym_addr[ids]) - ctx.image_base
    out = bytearray()
    prev = 0
    for s in starts.tolist():
        if s > prev:
            out += uleb(s - prev)
            prev = s
    if out:
        out.append(0)
    return align_up_bytes(bytes(out), 8)


def _symbols(ctx) -> tuple[bytes, bytes, bytes]:
    """_symbols builds the symbol table (locals; external definitions with
    __mh_execute_header, by name; undefined imports with their library
    ordinals, by name), the string table and the indirect symbol table (the
    import of each stub, then of each __got slot)."""
    st = ctx.fmt
    internal = set(ctx.imports) | set(ctx.import_slot_of.values())
    loc, glob = ([], []) if ctx.opts.strip else listed_symbols(ctx)
    keep = lambda ids: [i for i in np.asarray(ids).tolist() if i not in internal  # noqa: E731
                        and (ctx.sym_sec[i] < 0 or ctx.sec_kind[ctx.sym_sec[i]] != Kind.DWARF)]
    loc, glob = keep(loc), keep(glob)
    sect = np.zeros(len(ctx.sec_kind) + 3, np.int64)       # per input section: n_sect
    for n, (_, o) in enumerate(_out(ctx), start=1):
        sect[o.inputs] = n
    names = [b""]
    rows = []

    def add(name: bytes, type_, sect_, desc, value):
        rows.append((sum(len(x) + 1 for x in names), type_, sect_, desc, value))
        names.append(name)

    for i in loc:
        s = int(ctx.sym_sec[i])
        add(ctx.names[i].encode(), N_ABS if s == ABS else N_SECT, 0 if s < 0 else sect[s], 0,
            int(ctx.sym_addr[i]))
    ext = sorted([(ctx.names[i].encode(), i) for i in glob] + [(b"__mh_execute_header", -1)])
    for name, i in ext:
        if i < 0:
            add(name, N_SECT | N_EXT, 1, REFERENCED_DYNAMICALLY, ctx.image_base)
            continue
        s = int(ctx.sym_sec[i])
        add(name, (N_ABS if s == ABS else N_SECT) | N_EXT, 0 if s < 0 else sect[s],
            N_WEAK_DEF if ctx.sym_bind[i] == Bind.WEAK else 0, int(ctx.sym_addr[i]))
    undef = sorted({(name, ordinal) for _, ordinal, name, _ in st.binds})
    first_undef = len(rows)
    undef_row = {}
    for name, ordinal in undef:
        undef_row[name] = len(rows)
        add(name.encode(), N_EXT, 0, ordinal << 8, 0)
    st.nsyms = (len(loc), len(ext), len(undef))
    assert first_undef == len(loc) + len(ext)
    table = np.array(rows, NLIST) if rows else np.zeros(0, NLIST)
    strtab = align_up_bytes(b"\0".join(names) + b"\0", 8)
    called = [i for i, _, _, _ in st.binds if i in ctx.imports_called]
    by_entry = {i: name for i, _, name, _ in st.binds}
    indirect = [undef_row[by_entry[i]] for i in called] + [undef_row[n] for _, _, n, _ in st.binds]
    st.nindirect = len(indirect)
    return table.tobytes(), strtab, np.array(indirect, "<u4").tobytes()


def _signature_size(ctx, codelimit: int) -> int:
    ident = os.path.basename(ctx.opts.output).encode() + b"\0"
    nslots = -(-codelimit // (1 << CS_PAGE))
    return align_up(12 + 8 + CD_HEADER + len(ident) + 32 * nslots, 16)


# --- asmb2 ---------------------------------------------------------------------

def _prot(perm: str) -> int:
    return ((VM_PROT_READ if "r" in perm else 0) | (VM_PROT_WRITE if "w" in perm else 0)
            | (VM_PROT_EXECUTE if "x" in perm else 0))


def _sect_flags(o, seg) -> int:
    if o.name == "__stubs":
        return S_SYMBOL_STUBS | S_ATTR_PURE_INSTRUCTIONS | S_ATTR_SOME_INSTRUCTIONS
    if o.name == "__got":
        return S_NON_LAZY_SYMBOL_POINTERS
    if o.kind == Kind.TEXT:
        return S_ATTR_PURE_INSTRUCTIONS | S_ATTR_SOME_INSTRUCTIONS
    if o.kind == Kind.BSS:
        return S_ZEROFILL
    if o.kind == Kind.DWARF:
        return S_ATTR_DEBUG
    return 0


def _name16(s: str) -> bytes:
    b = s.encode()
    if len(b) > 16:
        raise fail(f"Mach-O: the name {s!r} is longer than 16 bytes")
    return b.ljust(16, b"\0")


def asmb2(ctx, out) -> None:
    """asmb2 writes __LINKEDIT, the header and load commands, the UUID, and
    last the code signature over the final bytes."""
    st, a = ctx.fmt, ctx.arch
    for off, blob in st.pieces.values():
        out.seek(off)
        out.write(blob)
    page = ctx.round
    cmds = []
    cmds.append(SEG.pack(LC_SEGMENT_64, SEG.size, _name16("__PAGEZERO"), 0, ctx.image_base,
                         0, 0, 0, 0, 0, 0))
    n_stub = len([i for i, *_ in st.binds if i in ctx.imports_called])
    for seg, va, vmsize in st.segs:
        sects = b""
        for o in seg.sections:
            stubs = o.name == "__stubs"
            got = o.name == "__got"
            addr = o.addr if seg.loaded else va + (o.fileoff - seg.fileoff)
            sects += SECT.pack(_name16(o.name.replace(".debug_", "__debug_")), _name16(seg.name),
                               addr, o.size, 0 if o.nobits else o.fileoff,
                               max(o.align, 1).bit_length() - 1, 0, 0, _sect_flags(o, seg),
                               n_stub if got else 0, len(a.macho.stub) if stubs else 0, 0)
        prot = _prot(seg.perm)
        filesize = align_up(seg.filelen, page) if seg.loaded else seg.filelen
        cmds.append(SEG.pack(LC_SEGMENT_64, SEG.size + len(sects), _name16(seg.name), va,
                             vmsize, seg.fileoff, filesize, prot, prot,
                             len(seg.sections), SG_READ_ONLY if seg.name == "__DATA_CONST" else 0)
                    + sects)
    end = (st.sig_off + st.sig_size) if st.sign else max(o + len(b) for o, b in st.pieces.values())
    cmds.append(SEG.pack(LC_SEGMENT_64, SEG.size, _name16("__LINKEDIT"), st.linkedit_va,
                         align_up(end - st.linkedit_off, page), st.linkedit_off,
                         end - st.linkedit_off, VM_PROT_READ, VM_PROT_READ, 0, 0))
    p = st.pieces
    cmds.append(struct.pack("<12I", LC_DYLD_INFO_ONLY, 48, p["rebase"][0] if p["rebase"][1] else 0,
                            len(p["rebase"][1]), p["bind"][0] if p["bind"][1] else 0,
                            len(p["bind"][1]), 0, 0, 0, 0, p["exports"][0], len(p["exports"][1])))
    nloc, next_, nund = st.nsyms
    cmds.append(struct.pack("<6I", LC_SYMTAB, 24, p["symtab"][0], nloc + next_ + nund,
                            p["strtab"][0], len(p["strtab"][1])))
    cmds.append(struct.pack("<20I", LC_DYSYMTAB, 80, 0, nloc, nloc, next_, nloc + next_, nund,
                            0, 0, 0, 0, 0, 0, p["indirect"][0] if st.nindirect else 0,
                            st.nindirect, 0, 0, 0, 0))
    cmds.append(_with_name(LC_LOAD_DYLINKER, 12, DYLD))
    uuid_at = 32 + sum(len(c) for c in cmds) + 8
    cmds.append(struct.pack("<II16s", LC_UUID, 24, bytes(16)))
    cmds.append(struct.pack("<6I", LC_BUILD_VERSION, 24, PLATFORM_MACOS, st.minos, st.minos, 0))
    cmds.append(struct.pack("<IIQQ", LC_MAIN, 24, ctx.entry_addr - ctx.image_base, 0))
    for lib in st.dylibs:
        cmds.append(_with_name(LC_LOAD_DYLIB, 24, lib, struct.pack("<III", 2, 0x10000, 0x10000)))
    cmds.append(struct.pack("<4I", LC_FUNCTION_STARTS, 16, p["starts"][0], len(p["starts"][1])))
    if st.sign:
        cmds.append(struct.pack("<4I", LC_CODE_SIGNATURE, 16, st.sig_off, st.sig_size))
    body = b"".join(cmds)
    flags = MH_NOUNDEFS | MH_DYLDLINK | MH_TWOLEVEL | MH_PIE
    header = struct.pack("<8I", MH_MAGIC_64, a.macho.cputype, a.macho.cpusubtype, MH_EXECUTE,
                         len(cmds), len(body), flags, 0)
    out.seek(0)
    out.write(header + body)
    # LC_UUID: an MD5 of the file as it is now (UUID zero, no signature yet).
    data = _read(out, st.sig_off if st.sign else ctx.filesize)
    uuid = bytearray(hashlib.md5(data).digest())
    uuid[6] = (uuid[6] & 0x0F) | 0x30          # RFC 4122 version 3 (MD5), as ld64 marks it
    uuid[8] = (uuid[8] & 0x3F) | 0x80
    out.seek(uuid_at)
    out.write(bytes(uuid))
    if st.sign:
        data = data[:uuid_at] + bytes(uuid) + data[uuid_at + 16:]
        out.seek(st.sig_off)
        out.write(_signature(ctx, data))


def _with_name(cmd: int, head: int, name: str, extra: bytes = b"") -> bytes:
    size = align_up(head + len(name) + 1, 8)
    return (struct.pack("<III", cmd, size, head) + extra + name.encode()).ljust(size, b"\0")


def _read(out, n: int) -> bytes:
    """_read reads the output's first n bytes back (the mapping and the file
    share the page cache, so this sees every write so far)."""
    buf = bytearray()
    while len(buf) < n:
        chunk = os.pread(out.fd, n - len(buf), len(buf))
        if not chunk:
            raise fail(f"cannot read back the output to sign it: it ends at {len(buf)} bytes")
        buf += chunk
    return bytes(buf)


def _signature(ctx, data: bytes) -> bytes:
    """_signature: an ad-hoc, linker-signed SuperBlob with one CodeDirectory
    (version 0x20400) hashing every 4 KiB page of data with SHA-256."""
    st = ctx.fmt
    text = next(s for s, _, _ in st.segs if s.name == "__TEXT")
    ident = os.path.basename(ctx.opts.output).encode() + b"\0"
    size = 1 << CS_PAGE
    hashes = b"".join(hashlib.sha256(data[i:i + size]).digest() for i in range(0, len(data), size))
    nslots = len(hashes) // 32
    hash_off = CD_HEADER + len(ident)
    cd_len = hash_off + len(hashes)
    cd = struct.pack(">9IBBBBIIIIQQQQ", CSMAGIC_CODEDIRECTORY, cd_len, 0x20400,
                     CS_ADHOC | CS_LINKER_SIGNED, hash_off, CD_HEADER, 0, nslots, len(data),
                     32, 2, 0, CS_PAGE, 0, 0, 0, 0, 0, text.fileoff,
                     align_up(text.filelen, ctx.round), CS_EXECSEG_MAIN_BINARY)
    assert len(cd) == CD_HEADER
    blob = cd + ident + hashes
    sb = struct.pack(">5I", CSMAGIC_EMBEDDED_SIGNATURE, 20 + len(blob), 1, 0, 20) + blob
    return sb.ljust(st.sig_size, b"\0")


def notes(ctx) -> list[str]:
    return []


LINKER_SYMBOLS = {"__mh_execute_header": lambda ctx: ctx.image_base,
                  "etext": rules.etext, "edata": rules.edata, "end": rules.end}

FORMAT = Format(name="macho", part="macho", segments=SEGMENTS, defaults=defaults,
                headr_size=headr_size, address=address, asmb2=asmb2, layout=layout,
                gensections=gensections, linker_symbols=LINKER_SYMBOLS, imports=True,
                entry="_main")
