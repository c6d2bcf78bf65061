"""importer: `minild import`, ELF relocatable objects (.o) to minild objects.

Not part of the link pipeline: it feeds it (cli `import` -> import_elf -> write;
the objects it writes are what loadlib reads). Every table of the ELF file
(section headers, symbols, relocations: millions of records in a large
object) is read with numpy structured dtypes straight from the file's bytes,
and the ELF header with struct, so an object imports without a Python object
per relocation or per symbol (docs/import.md has the figures and why neither
pyelftools nor LIEF parses the file). pyelftools' tables name relocation and
section types in error messages. REL objects (x86, arm, mips) keep their
addends in the places; they are made explicit here: plain data words are read
generically, instruction fields by the arch module's `implicit_addends` hook.

What comes through: allocated sections (kind from the flags: text, rodata,
data, bss), `.debug_*` sections (kind dwarf), local, global and weak symbols
with type and size, and section symbols, named after their section, so that
`.text+0x40` style references keep working. SHF_MERGE sections come through as
plain sections: minild does not merge their contents, which is correct (only
larger). Notes, unwind tables and attribute sections are left out.

What minild cannot link is refused here, with the file, the section and the
relocation named: COMDAT groups, TLS, common symbols, IFUNCs, init/fini arrays,
allocated sections of types minild does not know, and relocation types the arch
module does not know (GOT, PLT and TLS types in a static link among them).
"""

from __future__ import annotations

import io
import os
import re
import stat
import struct
import zlib

import numpy as np

from . import arch as archreg
from .errors import Diagnostics, LinkError, fail
from .loader import ABS, KIND_ID, MAX_ALIGN, MAX_SIZE, UNDEF, Object
from .names import Names
from .format.elfstruct import (ELFCOMPRESS_ZLIB, EHDR_FIELDS, SHDR_FIELDS, SHF_ALLOC,
                               SHF_COMPRESSED, SHF_EXECINSTR, SHF_TLS, SHF_WRITE, SHN_ABS,
                               SHN_COMMON, SHN_LORESERVE, SHN_UNDEF, SHN_XINDEX,
                               SHT_FINI_ARRAY, SHT_GROUP, SHT_INIT_ARRAY, SHT_LOPROC,
                               SHT_NOBITS, SHT_PREINIT_ARRAY, SHT_PROGBITS, SHT_REL, SHT_RELA,
                               SHT_SYMTAB, SHT_SYMTAB_SHNDX, STB_LOCAL, STB_WEAK, STT_COMMON, STT_FILE,
                               STT_GNU_IFUNC, STT_SECTION, STT_TLS, Layout, split_info)
from .outfile import refuse_same, write_file
from .schema import not_regular

REFUSED = -2   # kept[] of a section refused with an error (-1: left out quietly)
# A mips64 relocation whose r_type2/r_type3 are not NONE: no single type minild applies.
COMPOSITE = 1 << 20

# Sections with no meaning in a static minild link (attributes, notes, unwind
# tables no runtime here reads): left out, with no effect on the program.
DROPPED = (".note", ".comment", ".eh_frame", ".ARM.attributes", ".ARM.exidx", ".ARM.extab",
           ".riscv.attributes", ".MIPS.abiflags", ".reginfo", ".pdr", ".gnu.attributes",
           ".mdebug", ".llvm_addrsig", ".gnu_debuglink", ".MIPS.options")

# Why a relocation type is missing from an arch module, guessed from its psABI
# name (the same words in every psABI), for a message that says what to do.
_HINTS = (
    (("TLS", "TPOFF", "TPREL", "DTPMOD", "DTPOFF", "DTPREL", "TLSDESC"),
     "thread-local storage is not supported"),
    (("GOT",), "it needs a GOT, which a static minild link does not build "
               "(compile with -fno-pic)"),
    (("PLT",), "it needs a PLT, which a static minild link does not build "
               "(compile with -fno-pic)"),
    (("IRELATIVE", "COPY", "GLOB_DAT", "JUMP_SLOT", "RELATIVE"),
     "it is a dynamic relocation, not one for a relocatable object"),
)


_DROPPED = re.compile("(?:" + "|".join(re.escape(p) for p in DROPPED) + r")(?:\.|$)")


def _dropped(name: str) -> bool:
    return _DROPPED.match(name) is not None


def find_arch(machine: int, elf_class: int, order: str) -> archreg.Arch:
    for n in archreg.available():
        a = archreg.lookup(n)
        if a.elf is not None and (a.elf.machine, a.elf.cls, a.order) == (machine, elf_class, order):
            return a
    raise KeyError(machine)


def _strings(blob: bytes, offs: np.ndarray) -> list[str]:
    """_strings returns the NUL-terminated strings at offs of a string table.

    Names almost always start right after a NUL, so the table is split once and
    the strings picked by position, then decoded with a single call; names that
    share another's tail (allowed by ELF) are cut out one by one.
    """
    if len(offs) == 0:
        return []
    parts = blob.split(b"\0")
    lens = np.fromiter(map(len, parts), np.int64, len(parts))
    starts = np.concatenate(([0], np.cumsum(lens + 1)[:-1]))
    offs = np.minimum(offs.astype(np.int64), len(blob))
    pos = np.searchsorted(starts, offs, side="right") - 1
    picked = [parts[i] for i in pos.tolist()]
    for k in np.flatnonzero(starts[pos] != offs).tolist():
        picked[k] = parts[pos[k]][offs[k] - starts[pos[k]]:]
    return b"\0".join(picked).decode("utf-8", "replace").split("\0")


# Compressed sections (gcc -gz) of one object may decompress to this many
# bytes in all, at most (import --max-uncompressed; docs/reliability.md): a
# few hundred KB of zlib could otherwise ask for gigabytes.
MAX_UNCOMPRESSED = 256 << 20


def import_elf(path: str, max_uncompressed: int = MAX_UNCOMPRESSED) -> Object:
    """import_elf reads an ELF relocatable object; raises LinkError on what it refuses."""
    try:
        # O_NONBLOCK: a FIFO with no writer must not block the open.
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise fail(f"{path}: not a regular file ({not_regular(st.st_mode)})")
            data = f.read()
    except OSError as e:
        raise fail(f"cannot open {path}: {e.strerror}")
    if data[:4] != b"\x7fELF":
        from . import coff   # COFF objects (MinGW's amd64 and i386 .o): minild/coff.py
        if coff.is_coff(data):
            return coff.read(path, data)
        from . import wasmobj   # wasm objects (clang --target=wasm32 -c): minild/wasmobj.py
        if wasmobj.is_wasm(data):
            return wasmobj.read(path, data)
    try:
        return _import(path, _header(data, path), data, max_uncompressed)
    except (ValueError, IndexError) as e:
        # numpy's and struct's size errors: offsets or sizes past the end of the file
        raise fail(f"{path}: malformed ELF object: {type(e).__name__}: {e}")


ET_NAMES = {0: "ET_NONE", 1: "ET_REL", 2: "ET_EXEC (an executable)",
            3: "ET_DYN (a shared library or PIE)", 4: "ET_CORE (a core dump)"}
ET_REL = 1


def _header(data: bytes, path: str) -> dict:
    """_header decodes the ELF header with struct: one record, far cheaper
    than building pyelftools' parsers for every file (measured:
    docs/performance.md, 'Figures behind the code'; docs/import.md)."""
    if data[:4] != b"\x7fELF":
        raise fail(f"{path}: not an ELF object (no \\x7fELF magic number at offset 0)")
    if len(data) < 16 or data[4] not in (1, 2) or data[5] not in (1, 2):
        raise fail(f"{path}: malformed ELF object: bad EI_CLASS or EI_DATA in e_ident")
    elf_class, order = (32, 64)[data[4] - 1], "<>"[data[5] - 1]
    fmt = struct.Struct(order + ("HHIQQQIHHHHHH" if elf_class == 64 else "HHIIIIIHHHHHH"))
    if len(data) < 16 + fmt.size:
        raise fail(f"{path}: malformed ELF object: the file ends inside the ELF header")
    h = dict(zip(EHDR_FIELDS, fmt.unpack_from(data, 16)))
    h.update(elf_class=elf_class, order=order)
    return h


def _table(data: bytes, shdr, dtype: np.dtype, path: str, name: str) -> np.ndarray:
    off, size = int(shdr["sh_offset"]), int(shdr["sh_size"])
    if off + size > len(data) or size % dtype.itemsize:
        raise fail(f"{path}: section {name}: {size} bytes at offset {off:#x} are not a whole "
                   f"number of {dtype.itemsize}-byte entries inside the file "
                   f"({len(data)} bytes)")
    return np.frombuffer(data, dtype, size // dtype.itemsize, off)


def _import(path: str, h: dict, data: bytes, max_uncompressed: int = MAX_UNCOMPRESSED) -> Object:
    d = Diagnostics()
    if h["e_type"] != ET_REL:
        raise fail(f"{path}: expected an ELF relocatable object (ET_REL), got "
                   f"{ET_NAMES.get(h['e_type'], h['e_type'])}: minild links .o files")
    order, elf_class, machine = h["order"], h["elf_class"], h["e_machine"]
    try:
        a = find_arch(machine, elf_class, order)
    except KeyError:
        raise fail(f"{path}: no minild arch for machine {_describe('e_machine', machine)}, "
                   f"ELF{elf_class} {'little' if order == '<' else 'big'}-endian")
    shdrs, names = _section_headers(data, h, elf_class, order, path)
    types = [s["sh_type"] for s in shdrs]

    # Which sections come through, and as what.
    kept = np.full(len(shdrs) + 1, -1, np.int64)   # ELF section index -> minild index
    sec_name, sec_kind, sec_align, sec_size, sec_data = [], [], [], [], []
    for i, (s, name, t) in enumerate(zip(shdrs, names, types)):
        fl = int(s["sh_flags"])
        where = f"{path}: section [{i}] {name}"
        why = None
        if t == SHT_GROUP:
            members = _table(data, s, np.dtype(order + "u4"), path, name)[1:].tolist()
            kept[[m for m in members if 0 < m < len(shdrs)]] = REFUSED
            d.error(f"{where}: COMDAT/section groups are not supported (members: "
                    + ", ".join(names[m] for m in members if 0 < m < len(names))
                    + "); they come from C++ inline functions and templates or -fpic thunks")
            continue
        dwarf = not fl & SHF_ALLOC and name.startswith(".debug_")
        if kept[i] == REFUSED or _dropped(name) or not (fl & SHF_ALLOC or dwarf):
            continue  # non-allocated, not DWARF: nothing a program or debugger uses
        if dwarf and t >= SHT_LOPROC:
            pass      # DWARF in a processor-specific type (SHT_MIPS_DWARF)
        elif t not in (SHT_PROGBITS, SHT_NOBITS, SHT_INIT_ARRAY, SHT_FINI_ARRAY,
                       SHT_PREINIT_ARRAY):
            if fl & SHF_ALLOC:
                # Leaving out an allocated section could change what the program does.
                why = f"allocated section of type {_describe('sh_type', t)} is not supported"
            else:
                continue
        elif fl & SHF_TLS:
            why = "thread-local storage (SHF_TLS) is not supported"
        elif t in (SHT_INIT_ARRAY, SHT_FINI_ARRAY, SHT_PREINIT_ARRAY):
            why = ("init/fini arrays (constructors) need a C runtime to run them; minild "
                   "links programs without one")
        elif int(s["sh_addralign"]) & (int(s["sh_addralign"]) - 1):
            why = f"alignment {s['sh_addralign']} is not a power of two"
        elif fl & SHF_COMPRESSED and not dwarf:
            why = "compressed allocated section (SHF_COMPRESSED) is not supported"
        if why:
            d.error(f"{where}: {why}")
            kept[i] = REFUSED
            continue
        if fl & SHF_ALLOC:
            if t == SHT_NOBITS:
                kind = "bss"
            elif fl & SHF_EXECINSTR:
                kind = "text"
            elif fl & SHF_WRITE:
                kind = "data"
            else:
                kind = "rodata"
        else:
            kind = "dwarf"
        align = max(int(s["sh_addralign"]), 1)
        if align > MAX_ALIGN or align & (align - 1):
            raise fail(f"{where}: alignment {align:#x} is not a power of two up to "
                       f"{MAX_ALIGN:#x}")
        if kind == "bss" and int(s["sh_size"]) >= MAX_SIZE:
            raise fail(f"{where}: size {int(s['sh_size']):#x} is too large")
        kept[i] = len(sec_name)
        sec_name.append(name)
        sec_kind.append(KIND_ID[kind])
        sec_align.append(align)
        size, off = int(s["sh_size"]), int(s["sh_offset"])
        if kind == "bss":
            sec_data.append(None)
        elif off + size > len(data):
            raise fail(f"{where}: {size} bytes at offset {off:#x} lie past the end of the "
                       f"file ({len(data)} bytes)")
        elif fl & SHF_COMPRESSED:
            # gcc -gz: relocations apply to the uncompressed bytes.
            raw, align = _decompress(data[off:off + size], elf_class, order, where,
                                     max_uncompressed)
            max_uncompressed -= len(raw)
            sec_data.append(raw)
            sec_align[-1] = max(align, 1)
            size = len(raw)
        else:
            sec_data.append(data[off:off + size])
        sec_size.append(size)
    sec_name = _unique(sec_name, np.zeros(len(sec_name), bool))

    # Symbols, as columns.
    symdt = Layout(elf_class, order).sym
    symsec = next((i for i, t in enumerate(types) if t == SHT_SYMTAB), None)
    if symsec is None:
        syms = np.zeros(1, symdt)
        strtab = b""
    else:
        syms = _table(data, shdrs[symsec], symdt, path, names[symsec])
        if len(syms) == 0:
            syms = np.zeros(1, symdt)
        st = shdrs[shdrs[symsec]["sh_link"]]
        strtab = data[st["sh_offset"]:st["sh_offset"] + st["sh_size"]]
    stype = (syms["info"] & 0xF).astype(np.int64)
    sbind = (syms["info"] >> 4).astype(np.int64)
    raw = syms["shndx"].astype(np.int64)
    shndx = raw
    if (raw == SHN_XINDEX).any():
        # More than 0xff00 sections: the real indexes are in SHT_SYMTAB_SHNDX.
        xs = next((i for i, t in enumerate(types) if t == SHT_SYMTAB_SHNDX), None)
        if xs is None:
            raise fail(f"{path}: symbols with SHN_XINDEX but no SHT_SYMTAB_SHNDX section")
        xt = _table(data, shdrs[xs], np.dtype(order + "u4"), path, names[xs])
        if len(xt) != len(syms):
            raise fail(f"{path}: section {names[xs]}: {len(xt)} entries for {len(syms)} symbols")
        shndx = np.where(raw == SHN_XINDEX, xt.astype(np.int64), raw)
    symnames = _strings(strtab, syms["name"])
    nsym = len(syms)
    special = (raw >= SHN_LORESERVE) & (raw != SHN_XINDEX)
    insec = ~special & (shndx > SHN_UNDEF) & (shndx < len(shdrs))
    msec = np.where(insec, kept[np.where(insec, shndx, len(shdrs))], -1)
    # Which ELF symbols become minild symbols: not the null symbol, not STT_FILE,
    # not section symbols of sections left out, not symbols defined in sections
    # left out (a relocation that uses one is reported below).
    take = np.ones(nsym, bool)
    take[0] = False
    take &= stype != STT_FILE
    take &= (raw == SHN_UNDEF) | (raw == SHN_ABS) | (raw == SHN_COMMON) | (msec >= 0)
    # Symbols refused here, or defined in a section refused above: relocations
    # that use them need no second message.
    reported = insec & (msec == REFUSED)
    bad = [
        (stype == STT_TLS, "thread-local symbols are not supported"),
        (stype == STT_GNU_IFUNC, "IFUNC symbols (STT_GNU_IFUNC) need run-time resolution, "
         "which a static minild link does not do"),
        (sbind > STB_WEAK, "binding {b} (e.g. STB_GNU_UNIQUE) is not supported"),
        ((raw == SHN_COMMON) | (stype == STT_COMMON), "common symbols are not supported "
         "(compile with -fno-common, or define the variable in one file)"),
        (special & ~np.isin(raw, (SHN_ABS, SHN_COMMON)),
         "special section index {x:#x} is not supported"),
    ]
    refuse = a.refuse_symbols
    if refuse is not None:
        bad += refuse(syms["other"], stype)   # what only the arch knows (st_other bits)
    for mask, msg in bad:
        mask = mask & take
        for i in np.flatnonzero(mask)[:8].tolist():
            d.error(f"{path}: symbol {symnames[i] or '#' + str(i)}: "
                    + msg.format(b=int(sbind[i]), x=int(raw[i])))
        take &= ~mask
        reported |= mask
    pick = np.flatnonzero(take)
    smap = np.full(nsym, -1, np.int64)        # ELF symbol index -> minild symbol index
    smap[pick] = np.arange(len(pick))
    issec = stype[pick] == STT_SECTION
    out_names = [symnames[i] for i in pick.tolist()]
    for k in np.flatnonzero(issec).tolist():
        out_names[k] = sec_name[msec[pick[k]]]
    out_sec = np.where(shndx[pick] == SHN_UNDEF, UNDEF,
                       np.where(shndx[pick] == SHN_ABS, ABS, msec[pick]))
    out_val = syms["value"][pick].astype(np.uint64).view(np.int64)
    out_size = syms["size"][pick].astype(np.int64)
    out_bind = sbind[pick].astype(np.uint8)
    t = stype[pick]
    out_type = np.where(t <= STT_SECTION, t, 0).astype(np.uint8)
    # Readable objects name symbols: locals whose names repeat get a #n suffix,
    # globals keep theirs (they are how other objects refer to them).
    out_names = _unique(out_names, out_bind != STB_LOCAL)
    sym_extra = []   # indexes of the symbols the importer adds (#zero)

    # Relocations.
    codes = np.array([hw.code for hw in a.howtos], np.int64)
    corder = np.argsort(codes, kind="stable")
    scodes = codes[corder]
    widths = np.array([hw.size for hw in a.howtos], np.int64)
    rs, ro, rt, ry, ra = [], [], [], [], []
    for i, (s, t) in enumerate(zip(shdrs, types)):
        if t not in (SHT_REL, SHT_RELA):
            continue
        target = int(s["sh_info"])
        if not 0 < target < len(shdrs) or kept[target] < 0:
            continue  # relocates a section left out (.eh_frame, ...) or reported above
        rela = t == SHT_RELA
        reldt = Layout(elf_class, order).rel(rela)
        recs = _table(data, s, reldt, path, names[i])
        if len(recs) == 0:
            continue
        sym, typ, composite = split_info(recs["info"], elf_class, order, machine)
        # A composite (mips64 r_type2/r_type3 not NONE) has no single meaning
        # minild applies.
        typ = np.where(composite, COMPOSITE, typ)
        off = recs["offset"].astype(np.int64)
        tsec = int(kept[target])
        where = f"{path}: section {names[i]}"
        pos = np.minimum(np.searchsorted(scodes, typ), len(scodes) - 1)
        known = scodes[pos] == typ
        htype = np.where(known, corder[pos], 0)
        if not known.all():
            for bad_t in np.unique(typ[~known]).tolist():
                ks = np.flatnonzero(typ == bad_t)
                k = int(ks[0])
                rname = _reloc_name(bad_t, data)
                more = f" (and {len(ks) - 1} more)" if len(ks) > 1 else ""
                d.error(f"{where}: relocation {rname} at {names[target]}+{int(off[k]):#x} "
                        f"against {_symdesc(symnames, stype, shndx, names, int(sym[k]))}"
                        f"{more}: {_why(rname, a.name)}")
        if (sym >= nsym).any():
            k = int(np.flatnonzero(sym >= nsym)[0])
            d.error(f"{where}: relocation at {names[target]}+{int(off[k]):#x} refers to symbol "
                    f"#{int(sym[k])}, past the end of the symbol table ({nsym} entries)")
            continue
        msym = smap[sym]
        lost = (msym < 0) & (sym != 0) & ~reported[sym]
        if lost.any():
            k = int(np.flatnonzero(lost)[0])
            d.error(f"{where}: relocation at {names[target]}+{int(off[k]):#x} refers to "
                    f"{_symdesc(symnames, stype, shndx, names, int(sym[k]))}, in a section "
                    "minild does not import")
        if (sym == 0).any():
            # r_sym 0 means "no symbol" (S = 0): an absolute symbol of value 0 stands in.
            if not sym_extra:
                sym_extra.append(len(out_names))
                out_names.append(_fresh("#zero", out_names))
            msym = np.where(sym == 0, sym_extra[0], msym)
        if sec_data[tsec] is None:
            d.error(f"{where}: relocations for {names[target]}, a section without bytes")
            continue
        past = off + widths[htype] > len(sec_data[tsec])
        if past.any():
            k = int(np.flatnonzero(past)[0])
            d.error(f"{where}: relocation {a.howtos[htype[k]].name} at {int(off[k]):#x} lies "
                    f"past the end of {names[target]} ({len(sec_data[tsec])} bytes)")
            continue
        if rela:
            add = recs["addend"].astype(np.int64)
        else:
            add = implicit_addends(a, htype, off, sym, sec_data[tsec] or b"", where, d)
        rs.append(np.full(len(recs), tsec, np.int32))
        ro.append(off)
        rt.append(htype.astype(np.int16))
        ry.append(msym.astype(np.int32))
        ra.append(add)
    d.check()
    if sym_extra:
        n = len(sym_extra)
        out_sec = np.concatenate((out_sec, np.full(n, ABS)))
        out_val = np.concatenate((out_val, np.zeros(n, np.int64)))
        out_size = np.concatenate((out_size, np.zeros(n, np.int64)))
        out_bind = np.concatenate((out_bind, np.zeros(n, np.uint8)))
        out_type = np.concatenate((out_type, np.zeros(n, np.uint8)))
    cat = lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt)  # noqa: E731
    return Object(
        path=path, arch=a.name, sec_name=sec_name, sec_kind=np.array(sec_kind, np.uint8),
        sec_align=np.array(sec_align, np.int64), sec_size=np.array(sec_size, np.int64),
        sec_data=sec_data, sym_name=Names.from_list(out_names), sym_sec=out_sec.astype(np.int32),
        sym_value=out_val.astype(np.int64), sym_size=out_size.astype(np.int64),
        sym_bind=out_bind.astype(np.uint8), sym_type=out_type.astype(np.uint8),
        rel_sec=cat(rs, np.int32), rel_off=cat(ro, np.int64), rel_type=cat(rt, np.int16),
        rel_sym=cat(ry, np.int32), rel_add=cat(ra, np.int64))


def _decompress(raw: bytes, elf_class: int, order: str, where: str,
                limit: int = MAX_UNCOMPRESSED) -> tuple[bytes, int]:
    """_decompress undoes SHF_COMPRESSED: an Elf_Chdr, then zlib data; returns
    the bytes and the alignment of the uncompressed section. The header's
    size (ch_size) must be within limit, and the data may not decompress to
    more than it says: at most ch_size + 1 bytes are ever inflated."""
    hdr = struct.Struct(order + ("IIQQ" if elf_class == 64 else "III"))
    if len(raw) < hdr.size:
        raise fail(f"{where}: compressed section shorter than its header")
    f = hdr.unpack_from(raw)
    ctype, size, align = (f[0], f[2], f[3]) if elf_class == 64 else f
    if ctype != ELFCOMPRESS_ZLIB:
        raise fail(f"{where}: compression type {ctype} is not supported (only zlib: "
                   "compile with -gz=zlib)")
    if size > limit:
        raise fail(f"{where}: decompresses to {size} bytes (ch_size), more than the "
                   f"{max(limit, 0)} bytes left of the limit for compressed sections "
                   "(import --max-uncompressed raises it)")
    try:
        z = zlib.decompressobj()
        out = z.decompress(raw[hdr.size:], size + 1)
    except zlib.error as e:
        raise fail(f"{where}: bad zlib data: {e}")
    if len(out) > size:
        raise fail(f"{where}: decompresses to more than the {size} bytes its header says")
    if len(out) != size:
        raise fail(f"{where}: decompressed to {len(out)} bytes, the header says {size}")
    return out, align


def _symdesc(symnames, stype, shndx, names, k: int) -> str:
    if k == 0:
        return "no symbol"
    if k < len(stype) and stype[k] == STT_SECTION and 0 < shndx[k] < len(names):
        return f"section {names[shndx[k]]}"
    if k < len(symnames):
        return f"symbol {symnames[k]}"
    return f"symbol #{k}"


def _why(rname: str, arch: str) -> str:
    for words, why in _HINTS:
        if any(w in rname for w in words):
            return f"not supported by minild for {arch}: {why}"
    return f"unknown relocation type for minild's {arch} (its arch module does not apply it)"


def malformed(fmt: str, read_, path: str, data: bytes):
    """malformed runs one object reader (coff, wasmobj) on data: numpy's and
    struct's size errors, an offset or a count past the end of the file or a
    section, become a LinkError naming the file and the format."""
    try:
        return read_(path, data)
    except (ValueError, IndexError, OverflowError) as e:
        raise fail(f"{path}: malformed {fmt} object: {type(e).__name__}: {e}")


def _unique(names: list[str], fixed: np.ndarray) -> list[str]:
    """_unique renames repeated names (name#1, name#2, ..., $d.1 for mapping
    symbols) except where fixed;
    one C-speed check settles the common case of no repeats."""
    if len(set(names)) == len(names):
        return names
    out = list(names)
    taken = set(n for n, f in zip(names, fixed.tolist()) if f)
    for k, (n, f) in enumerate(zip(names, fixed.tolist())):
        if f:
            continue
        if n in taken:
            n = _fresh(n, taken)
            out[k] = n
        taken.add(n)
    return out


def _fresh(name: str, taken) -> str:
    if name not in taken:
        return name
    # Mapping symbols ($a, $d, $t, $x: where code and data start, for
    # disassemblers) stay mapping symbols as "$d.1": the ARM and AArch64 ELF
    # specifications allow "$d.<anything>". Other names get "#1", which no
    # compiler emits.
    sep = "." if name.startswith("$") else "#"
    c = 1
    while f"{name}{sep}{c}" in taken:
        c += 1
    return f"{name}{sep}{c}"


def _section_headers(data: bytes, h, elf_class: int, order: str,
                     path: str) -> tuple[list[dict], list[str]]:
    """_section_headers reads the section header table with numpy (pyelftools
    runs a construct parser per header, far too slow for the 65000 sections
    of a -ffunction-sections object; measured: docs/performance.md, 'Figures
    behind the code') and the names from .shstrtab."""
    dt = Layout(elf_class, order).shdr_dtype
    shoff, shnum, shstrndx = int(h["e_shoff"]), int(h["e_shnum"]), int(h["e_shstrndx"])
    if shoff == 0:
        return [], []
    if int(h["e_shentsize"]) != dt.itemsize:
        raise fail(f"{path}: malformed ELF object: e_shentsize {h['e_shentsize']}, expected "
                   f"{dt.itemsize}")
    if shoff + dt.itemsize > len(data):
        raise fail(f"{path}: malformed ELF object: section headers at {shoff:#x} lie past "
                   f"the end of the file ({len(data)} bytes)")
    first = np.frombuffer(data, dt, 1, shoff)[0]
    # Extended numbering (ELF gABI): past 0xff00 sections, section 0 holds the
    # real count (sh_size) and the real .shstrtab index (sh_link).
    if shnum == 0:
        shnum = int(first["sh_size"])
    if shstrndx == SHN_XINDEX:
        shstrndx = int(first["sh_link"])
    if shoff + shnum * dt.itemsize > len(data):
        raise fail(f"{path}: malformed ELF object: {shnum} section headers at {shoff:#x} lie "
                   f"past the end of the file ({len(data)} bytes)")
    table = np.frombuffer(data, dt, shnum, shoff)
    shdrs = [dict(zip(SHDR_FIELDS, row)) for row in table.tolist()]
    if not 0 < shstrndx < shnum:
        return shdrs, [""] * shnum
    st = shdrs[shstrndx]
    blob = data[st["sh_offset"]:st["sh_offset"] + st["sh_size"]]
    return shdrs, _strings(blob, table["sh_name"])


def _reloc_name(code: int, data: bytes) -> str:
    if code == COMPOSITE:
        return "(mips64 composite type2/type3)"
    name = _describe("reloc", code, data)
    return f"{name} ({code})" if name else f"#{code}"


def _describe(what: str, value: int, data: bytes = b"") -> str | None:
    """_describe names an ELF constant for a message with pyelftools' tables
    (only on the error path; without pyelftools, messages give numbers)."""
    try:
        from elftools.elf import descriptions as ds
        if what == "reloc":
            from elftools.elf.elffile import ELFFile
            name = ds.describe_reloc_type(value, ELFFile(io.BytesIO(data)))
        elif what == "sh_type":
            name = ds.describe_sh_type(value)
        else:
            from elftools.elf.enums import ENUM_E_MACHINE
            name = next((k for k, v in ENUM_E_MACHINE.items() if v == value), None)
    except Exception:  # pyelftools missing, or raising for codes it lacks
        name = None
    if not name or str(name).startswith(("<", "unrecognized")):
        return None if what == "reloc" else str(value)
    return str(name) if what == "reloc" else f"{name} ({value})"


def implicit_addends(a: archreg.Arch, htype: np.ndarray, off: np.ndarray, sym: np.ndarray,
                     data: bytes, where: str, d: Diagnostics) -> np.ndarray:
    """implicit_addends reads REL addends from the places: plain data words here,
    instruction fields through the arch's hook."""
    if a.implicit_addends is not None:
        return np.asarray(a.implicit_addends(htype, off, data, sym, a), np.int64)
    add = np.zeros(len(off), np.int64)
    buf = np.frombuffer(data, np.uint8)
    for t in np.unique(htype).tolist():
        h = a.howtos[t]
        sel = np.flatnonzero(htype == t)
        if h.size == 0:
            continue
        if h.insert is not None:
            d.error(f"{where}: cannot read the implicit addend of {h.name}: the arch module "
                    "has no implicit_addends hook")
            continue
        if (off[sel] + h.size > len(buf)).any():
            k = int(sel[np.flatnonzero(off[sel] + h.size > len(buf))[0]])
            d.error(f"{where}: relocation {h.name} at {int(off[k]):#x} lies past the end of "
                    f"its section ({len(buf)} bytes)")
            continue
        idx = off[sel][:, None] + np.arange(h.size)
        raw = buf[idx].copy().view(np.dtype(a.order + "i" + str(h.size))).ravel()
        add[sel] = raw
    return add


def write(obj: Object, out: str, compact: bool) -> None:
    """write encodes obj and writes it atomically to out."""
    from .encode import encode_compact, encode_readable

    a = archreg.lookup(obj.arch)
    data = encode_compact(obj, a) if compact else encode_readable(obj, a)
    if not data.endswith(b"\n"):
        data += b"\n"
    write_file(out, data, "")


def import_files(paths: list[str], output: str, compact: bool,
                 max_uncompressed: int = MAX_UNCOMPRESSED, tally=None) -> list[str]:
    """import_files imports each ELF object: to the file output when there is
    one, else into the directory output as NAME.obj. Every file is tried, so
    one run reports the errors of all of them; returns the paths written.
    An `ar` archive (libgcc.a) becomes an archive of minild objects
    (minild/archive.py): NAME.a in the directory output. tally (bench.Tally),
    if given, counts each input converted (or refused)."""
    from . import archive

    def one(i, o):
        p = paths[i]
        try:
            if archive.is_archive(p):
                archive.import_archive(p, o, compact, max_uncompressed)
            else:
                write(import_elf(p, max_uncompressed), o, compact)
        finally:
            if tally is not None:
                tally.done(i)

    if len(paths) == 1 and not os.path.isdir(output):
        refuse_same(output, paths)
        one(0, output)
        return [output]
    outs = [os.path.join(output, os.path.basename(p) if archive.is_archive(p)
                         else os.path.splitext(os.path.basename(p))[0] + ".obj")
            for p in paths]
    seen: dict[str, str] = {}
    for p, o in zip(paths, outs):
        if o in seen:
            raise fail(f"{p} and {seen[o]} would both be imported to {o}; import them into "
                       "different directories")
        seen[o] = p
        refuse_same(o, paths)
    try:
        os.makedirs(output, exist_ok=True)
    except OSError as e:
        raise fail(f"cannot create directory {output}: {e.strerror}")
    d = Diagnostics()
    for i, o in enumerate(outs):
        try:
            one(i, o)
        except LinkError as e:
            for x in e.diags:
                d.error(x.message, *x.notes)
            d.suppressed += e.suppressed
    d.check()
    return outs
