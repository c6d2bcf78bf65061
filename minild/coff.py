"""coff: `minild import` of COFF relocatable objects (the .o files of the MinGW
cross toolchains, x86_64-w64-mingw32 and i686-w64-mingw32) to minild objects.

importer.import_elf hands over every file that starts with a COFF machine
number minild serves (IMAGE_FILE_MACHINE_AMD64 0x8664, IMAGE_FILE_MACHINE_I386
0x14c) to read(). As for ELF, every table (section headers, symbols,
relocations) is read with numpy structured dtypes straight from the file's
bytes, the file header with struct; the only Python loop over the symbol table
visits the symbols that carry auxiliary records (section definitions, files,
weak externals), to tell the 18-byte records apart from their aux records.

What comes through (docs/import.md, "COFF objects"): sections of kind text,
rodata (.rdata, .xdata, .pdata), data, bss and dwarf (.debug_*), each under its
own name (`.text$foo`, `.rdata$.refptr.x`), alignment from IMAGE_SCN_ALIGN_*;
external, static and label symbols; section-definition symbols as section
symbols; weak externals; COMDAT leaders as weak symbols; relocations under the
ELF names of minild's arch modules (COFF-only types under their COFF names,
looked up in the arch module), with the addend that COFF keeps in the place
made explicit, adjusted for COFF's PC-relative base (the end of the field).

What minild cannot link is refused with the file, the section, symbol or
relocation named: constructors (.ctors, .dtors, .CRT$*), TLS (.tls*),
import-library members (.idata$*), exports (.edata), LTO objects, common
symbols, COMDAT selections other than the ones listed in COMDAT_OK, relocation
overflow (IMAGE_SCN_LNK_NRELOC_OVFL), relocation types without a Howto.
"""

from __future__ import annotations

import base64
import re
import struct

import numpy as np

from . import arch as archreg
from .errors import Diagnostics, fail
from .importer import _dropped, _strings, _unique, _why, implicit_addends, malformed
from .loader import ABS, KIND_ID, MAX_SIZE, UNDEF, Object
from .names import Names
from .vocab import Bind, SymType

# IMAGE_FILE_MACHINE_* -> minild arch
MACHINES = {0x8664: "amd64", 0x14C: "x86"}
MACHINE_NAMES = {0x8664: "IMAGE_FILE_MACHINE_AMD64", 0x14C: "IMAGE_FILE_MACHINE_I386"}

# The file header (IMAGE_FILE_HEADER) and the 40-byte section headers.
FILE_HEADER = struct.Struct("<HHIIIHH")
SHDR = np.dtype([("name", "S8"), ("vsize", "<u4"), ("vaddr", "<u4"), ("size", "<u4"),
                 ("off", "<u4"), ("reloff", "<u4"), ("lineoff", "<u4"), ("nreloc", "<u2"),
                 ("nline", "<u2"), ("flags", "<u4")])
# 18-byte symbol records (IMAGE_SYMBOL): the name is 8 bytes, or 4 zero bytes
# and a string-table offset. Aux records are 18 bytes in the same table.
SYM = np.dtype([("n0", "<u4"), ("n1", "<u4"), ("value", "<u4"), ("sec", "<i2"),
                ("type", "<u2"), ("sclass", "u1"), ("naux", "u1")])
SYM_NAME = np.dtype({"names": ["name"], "formats": ["S8"], "offsets": [0], "itemsize": 18})
# An aux record read as a section definition (format 5) or a weak external
# (format 3), one dtype over both layouts.
AUX = np.dtype({"names": ["length", "nreloc", "checksum", "number", "selection", "tag", "chars"],
                "formats": ["<u4", "<u2", "<u4", "<u2", "u1", "<u4", "<u4"],
                "offsets": [0, 4, 8, 12, 14, 0, 4], "itemsize": 18})
RELOC = np.dtype([("vaddr", "<u4"), ("sym", "<u4"), ("type", "<u2")])   # 10 bytes, packed

# IMAGE_SCN_* flags
CNT_CODE = 0x20
CNT_INITIALIZED_DATA = 0x40
CNT_UNINITIALIZED_DATA = 0x80
TYPE_NO_PAD = 0x8
LNK_INFO = 0x200
LNK_REMOVE = 0x800
LNK_COMDAT = 0x1000
LNK_NRELOC_OVFL = 0x01000000
MEM_DISCARDABLE = 0x02000000
MEM_EXECUTE = 0x20000000
MEM_WRITE = 0x80000000
ALIGN_SHIFT, ALIGN_MASK = 20, 0xF

# IMAGE_FILE_* characteristics
FILE_EXECUTABLE_IMAGE = 0x2

# IMAGE_SYM_* section numbers and storage classes
SYM_UNDEFINED, SYM_ABSOLUTE, SYM_DEBUG = 0, -1, -2
CLASS_END_OF_FUNCTION = 0xFF
CLASS_EXTERNAL = 2
CLASS_STATIC = 3
CLASS_LABEL = 6
CLASS_FUNCTION = 101      # .bf/.ef/.lf: line-number bookkeeping
CLASS_FILE = 103
CLASS_SECTION = 104
CLASS_WEAK_EXTERNAL = 105
CLASS_NAMES = {0: "NULL", 1: "AUTOMATIC", 2: "EXTERNAL", 3: "STATIC", 4: "REGISTER",
               5: "EXTERNAL_DEF", 6: "LABEL", 7: "UNDEFINED_LABEL", 8: "MEMBER_OF_STRUCT",
               9: "ARGUMENT", 10: "STRUCT_TAG", 11: "MEMBER_OF_UNION", 12: "UNION_TAG",
               13: "TYPE_DEFINITION", 14: "UNDEFINED_STATIC", 15: "ENUM_TAG",
               16: "MEMBER_OF_ENUM", 17: "REGISTER_PARAM", 18: "BIT_FIELD", 100: "BLOCK",
               101: "FUNCTION", 102: "END_OF_STRUCT", 103: "FILE", 104: "SECTION",
               105: "WEAK_EXTERNAL", 107: "CLR_TOKEN", 0xFF: "END_OF_FUNCTION"}
DTYPE_FUNCTION = 2        # (Type >> 4) & 3: the symbol is a function

# IMAGE_COMDAT_SELECT_*
COMDAT_NAMES = {1: "NODUPLICATES", 2: "ANY", 3: "SAME_SIZE", 4: "EXACT_MATCH",
                5: "ASSOCIATIVE", 6: "LARGEST", 7: "NEWEST"}
# Selections minild links. ANY, SAME_SIZE, EXACT_MATCH: every copy is kept (minild
# does not discard sections) and the section's external symbols become weak, so
# that every reference resolves to the first copy; the copies are alike (the
# same bytes, or for SAME_SIZE the same size), so which one wins does not
# matter. NODUPLICATES: the symbols stay global, and a second copy is a
# duplicate-symbol error, as the selection asks. ASSOCIATIVE: kept with every
# copy of the section it follows, as that one is. LARGEST (the largest copy
# wins) and NEWEST are refused: the first copy is not the one they pick.
COMDAT_WEAK = (2, 3, 4)
COMDAT_OK = (1, 2, 3, 4, 5)

# Sections refused by name: (pattern, why).
REFUSED_SECTIONS = (
    (re.compile(r"\.(ctors|dtors)(\.|\$|$)|\.CRT\$"),
     "constructors and destructors need a C runtime to run them; minild links programs "
     "without one"),
    (re.compile(r"\.tls(\$|$)"), "thread-local storage is not supported"),
    (re.compile(r"\.idata\$"), "import tables come from import libraries, which minild does "
     "not read (declare the imports instead)"),
    (re.compile(r"\.edata$"), "exports are not supported"),
    (re.compile(r"\.gnu\.lto_"), "LTO objects carry no code for a linker without the LTO "
     "plugin (compile without -flto)"),
)

# COFF relocation types: code -> (COFF name, minild Howto name, place bytes, addend delta).
# The delta turns COFF's implicit addend into minild's: COFF's pc-relative
# types are relative to the end of the 4-byte field (and REL32_k to k bytes
# past it), minild's S + A - P to its start. None: skipped (ABSOLUTE, a no-op).
AMD64_RELOCS = {
    0x0: ("IMAGE_REL_AMD64_ABSOLUTE", None, 0, 0),
    0x1: ("IMAGE_REL_AMD64_ADDR64", "R_X86_64_64", 8, 0),
    0x2: ("IMAGE_REL_AMD64_ADDR32", "R_X86_64_32", 4, 0),
    0x3: ("IMAGE_REL_AMD64_ADDR32NB", "IMAGE_REL_AMD64_ADDR32NB", 4, 0),
    0x4: ("IMAGE_REL_AMD64_REL32", "R_X86_64_PC32", 4, -4),
    0x5: ("IMAGE_REL_AMD64_REL32_1", "R_X86_64_PC32", 4, -5),
    0x6: ("IMAGE_REL_AMD64_REL32_2", "R_X86_64_PC32", 4, -6),
    0x7: ("IMAGE_REL_AMD64_REL32_3", "R_X86_64_PC32", 4, -7),
    0x8: ("IMAGE_REL_AMD64_REL32_4", "R_X86_64_PC32", 4, -8),
    0x9: ("IMAGE_REL_AMD64_REL32_5", "R_X86_64_PC32", 4, -9),
    0xA: ("IMAGE_REL_AMD64_SECTION", None, 2, 0),
    0xB: ("IMAGE_REL_AMD64_SECREL", "IMAGE_REL_AMD64_SECREL", 4, 0),
    0xC: ("IMAGE_REL_AMD64_SECREL7", None, 1, 0),
    0xD: ("IMAGE_REL_AMD64_TOKEN", None, 4, 0),
    0xE: ("IMAGE_REL_AMD64_SREL32", None, 4, 0),
    0xF: ("IMAGE_REL_AMD64_PAIR", None, 0, 0),
    0x10: ("IMAGE_REL_AMD64_SSPAN32", None, 4, 0),
}
I386_RELOCS = {
    0x0: ("IMAGE_REL_I386_ABSOLUTE", None, 0, 0),
    0x1: ("IMAGE_REL_I386_DIR16", "R_386_16", 2, 0),
    0x2: ("IMAGE_REL_I386_REL16", "R_386_PC16", 2, -2),
    0x6: ("IMAGE_REL_I386_DIR32", "R_386_32", 4, 0),
    0x7: ("IMAGE_REL_I386_DIR32NB", "IMAGE_REL_I386_DIR32NB", 4, 0),
    0x9: ("IMAGE_REL_I386_SEG12", None, 2, 0),
    0xA: ("IMAGE_REL_I386_SECTION", None, 2, 0),
    0xB: ("IMAGE_REL_I386_SECREL", "IMAGE_REL_I386_SECREL", 4, 0),
    0xC: ("IMAGE_REL_I386_TOKEN", None, 4, 0),
    0xD: ("IMAGE_REL_I386_SECREL7", None, 1, 0),
    0x14: ("IMAGE_REL_I386_REL32", "R_386_PC32", 4, -4),
}
RELOCS = {"amd64": AMD64_RELOCS, "x86": I386_RELOCS}
ABSOLUTE = 0   # IMAGE_REL_*_ABSOLUTE in both tables: no relocation


def is_coff(data: bytes) -> bool:
    """is_coff: data starts with the file header of a COFF object for a machine
    minild serves (what importer.import_elf hands to read)."""
    return len(data) >= 2 and int.from_bytes(data[:2], "little") in MACHINES


def read(path: str, data: bytes) -> object:
    """read turns the COFF relocatable object data (read from path) into a
    minild Object; raises LinkError, with the file and the place named, on
    what it refuses or cannot read."""
    return malformed("COFF", _read, path, data)


def _read(path: str, data: bytes) -> Object:
    if len(data) < FILE_HEADER.size:
        raise fail(f"{path}: malformed COFF object: the file ends inside the COFF file header "
                   f"({len(data)} of {FILE_HEADER.size} bytes)")
    machine, nsec, _, symoff, nsym, opthdr, chars = FILE_HEADER.unpack_from(data)
    arch = MACHINES[machine]
    a = archreg.lookup(arch)
    if opthdr or chars & FILE_EXECUTABLE_IMAGE:
        raise fail(f"{path}: expected a COFF relocatable object, got an image (an optional "
                   f"header of {opthdr} bytes, characteristics {chars:#x}): minild links .o files")
    d = Diagnostics()

    # The symbol table and the string table after it.
    if nsym and symoff + nsym * SYM.itemsize > len(data):
        raise fail(f"{path}: malformed COFF object: {nsym} symbols at {symoff:#x} lie past the "
                   f"end of the file ({len(data)} bytes)")
    syms = np.frombuffer(data, SYM, nsym, symoff) if nsym else np.zeros(0, SYM)
    strtab = b""
    stroff = symoff + nsym * SYM.itemsize
    if symoff and stroff + 4 <= len(data):
        size = int.from_bytes(data[stroff:stroff + 4], "little")
        if size < 4 or stroff + size > len(data):
            raise fail(f"{path}: malformed COFF object: string table of {size} bytes at "
                       f"{stroff:#x} lies past the end of the file ({len(data)} bytes)")
        strtab = data[stroff:stroff + size]

    # Section headers.
    shoff = FILE_HEADER.size + opthdr
    if shoff + nsec * SHDR.itemsize > len(data):
        raise fail(f"{path}: malformed COFF object: {nsec} section headers at {shoff:#x} lie "
                   f"past the end of the file ({len(data)} bytes)")
    shdrs = np.frombuffer(data, SHDR, nsec, shoff)
    names = [_section_name(n, strtab, path, i + 1) for i, n in enumerate(shdrs["name"].tolist())]

    # Which records are symbols and which are their aux records.
    naux = syms["naux"].astype(np.int64)
    primary = _primaries(naux)
    aux_of = np.where(primary & (naux > 0), np.arange(nsym) + 1, -1)   # first aux record
    if (aux_of >= nsym).any():
        k = int(np.flatnonzero(aux_of >= nsym)[0])
        raise fail(f"{path}: malformed COFF object: symbol #{k} has {int(naux[k])} aux records "
                   f"past the end of the symbol table ({nsym} records)")
    aux = np.frombuffer(data, AUX, nsym, symoff) if nsym else np.zeros(0, AUX)
    symnames = _symbol_names(data, syms, symoff, strtab)
    sclass = syms["sclass"].astype(np.int64)
    secno = syms["sec"].astype(np.int64)
    value = syms["value"].astype(np.int64)

    # Section-definition symbols: static, value 0, an aux record, named after
    # their section. Their aux record holds the COMDAT selection.
    indef = primary & (sclass == CLASS_STATIC) & (secno > 0) & (secno <= nsec) & (naux > 0) \
        & (value == 0)
    secdef = np.zeros(nsym, bool)
    selection = {}      # COFF section number -> (selection, associated section number)
    for k in np.flatnonzero(indef).tolist():
        s = int(secno[k])
        if symnames[k] == names[s - 1]:
            secdef[k] = True
            if shdrs["flags"][s - 1] & LNK_COMDAT and s not in selection:
                x = aux[aux_of[k]]
                selection[s] = (int(x["selection"]), int(x["number"]))

    # Which sections come through, and as what.
    kept = np.full(nsec + 1, -1, np.int64)   # COFF section number -> minild index (-2 refused)
    comdat_weak = np.zeros(nsec + 1, bool)
    sec_name, sec_kind, sec_align, sec_size, sec_data = [], [], [], [], []
    for i, (s, name) in enumerate(zip(shdrs.tolist(), names), 1):
        _, _, _, size, off, reloff, _, nreloc, _, fl = s
        where = f"{path}: section [{i}] {name}"
        why = next((w for p, w in REFUSED_SECTIONS if p.match(name)), None)
        dwarf = name.startswith(".debug_")
        if why is None and not dwarf and (fl & (LNK_INFO | LNK_REMOVE | MEM_DISCARDABLE)
                                          or _dropped(name)):
            continue    # .drectve, notes, .comment, .eh_frame, .llvm_addrsig, .stab
        if why is None and fl & LNK_NRELOC_OVFL:
            why = "more than 65535 relocations (IMAGE_SCN_LNK_NRELOC_OVFL) are not supported"
        if why is None and fl & LNK_COMDAT:
            sel, assoc = selection.get(i, (None, 0))
            if sel is None:
                why = "COMDAT section without a section-definition symbol"
            elif sel not in COMDAT_OK:
                why = (f"COMDAT selection {COMDAT_NAMES.get(sel, sel)} ({sel}) is not supported "
                       "(minild keeps every copy and resolves to the first: it links "
                       "NODUPLICATES, ANY, SAME_SIZE, EXACT_MATCH and ASSOCIATIVE)")
            elif sel == 5 and not 0 < assoc <= nsec:
                why = f"ASSOCIATIVE COMDAT section follows section #{assoc}, which does not exist"
            comdat_weak[i] = sel in COMDAT_WEAK
        shift = (fl >> ALIGN_SHIFT) & ALIGN_MASK
        if why is None and shift == 15:
            why = f"bad alignment field (IMAGE_SCN_ALIGN_* {shift:#x}) in characteristics {fl:#x}"
        if why:
            d.error(f"{where}: {why}")
            kept[i] = -2
            continue
        # As LLVM's COFF reader: no ALIGN bits means 16, TYPE_NO_PAD means 1.
        align = 1 if fl & TYPE_NO_PAD else (1 << (shift - 1) if shift else 16)
        if dwarf:
            kind = "dwarf"
        elif fl & CNT_UNINITIALIZED_DATA:
            kind = "bss"
        elif fl & (CNT_CODE | MEM_EXECUTE):
            kind = "text"
        elif fl & MEM_WRITE:
            kind = "data"
        else:
            kind = "rodata"
        if kind == "bss":
            if size >= MAX_SIZE:
                raise fail(f"{where}: size {size:#x} is too large")
            blob = None
        elif off == 0 and size:
            raise fail(f"{where}: {size} bytes of initialized data without any in the file "
                       "(PointerToRawData 0)")
        elif off + size > len(data):
            raise fail(f"{where}: {size} bytes at offset {off:#x} lie past the end of the file "
                       f"({len(data)} bytes)")
        else:
            blob = data[off:off + size]
        kept[i] = len(sec_name)
        sec_name.append(name)
        sec_kind.append(KIND_ID[kind])
        sec_align.append(align)
        sec_size.append(size)
        sec_data.append(blob)
    sec_name = _unique(sec_name, np.zeros(len(sec_name), bool))

    # Symbols, as columns.
    insec = (secno > 0) & (secno <= nsec)
    msec = np.where(insec, kept[np.where(insec, secno, 0)], -1)
    ext = sclass == CLASS_EXTERNAL
    undef = secno == SYM_UNDEFINED
    weak = primary & (sclass == CLASS_WEAK_EXTERNAL)
    named = primary & np.isin(sclass, (CLASS_EXTERNAL, CLASS_STATIC, CLASS_LABEL))
    bad = primary & ~np.isin(sclass, (CLASS_EXTERNAL, CLASS_STATIC, CLASS_LABEL, CLASS_FILE,
                                      CLASS_FUNCTION, CLASS_WEAK_EXTERNAL, CLASS_SECTION,
                                      CLASS_END_OF_FUNCTION))
    for k in np.flatnonzero(bad)[:8].tolist():
        c = int(sclass[k])
        d.error(f"{path}: symbol {symnames[k] or '#' + str(k)}: storage class "
                f"IMAGE_SYM_CLASS_{CLASS_NAMES.get(c, '?')} ({c}) is not supported")
    common = named & ext & undef & (value > 0)
    for k in np.flatnonzero(common)[:8].tolist():
        d.error(f"{path}: common symbol {symnames[k]} ({int(value[k])} bytes): common symbols "
                "are not supported (compile with -fno-common, or define the variable in one "
                "file)")
    special = named & (secno < SYM_DEBUG)
    for k in np.flatnonzero(special)[:8].tolist():
        d.error(f"{path}: symbol {symnames[k]}: special section number {int(secno[k])} is not "
                "supported")
    bad_sec = named & (secno > nsec)
    for k in np.flatnonzero(bad_sec)[:8].tolist():
        d.error(f"{path}: symbol {symnames[k]}: section number {int(secno[k])} is past the "
                f"last section ({nsec})")
    nowhere = named & ~ext & undef
    for k in np.flatnonzero(nowhere)[:8].tolist():
        d.error(f"{path}: symbol {symnames[k]}: a local symbol (storage class "
                f"{CLASS_NAMES[int(sclass[k])]}) without a section")
    reported = (insec & (msec == -2)) | common | bad | special | bad_sec | nowhere
    # Which records become minild symbols: external, static and label symbols
    # that are defined in a section that comes through, absolute, or (external)
    # undefined; not files, debug symbols (.bf/.ef) or what was refused above.
    take = named & ~reported & (secno != SYM_DEBUG)
    take &= (secno == SYM_ABSOLUTE) | undef | (msec >= 0)

    out_sec = np.where(undef, UNDEF, np.where(secno == SYM_ABSOLUTE, ABS, msec))
    out_val = value.copy()
    out_bind = np.where(ext, Bind.GLOBAL, Bind.LOCAL).astype(np.int64)
    out_type = np.where((syms["type"] >> 4) & 3 == DTYPE_FUNCTION, SymType.FUNC,
                        SymType.NOTYPE).astype(np.int64)
    out_type[secdef] = SymType.SECTION
    # COMDAT copies: their external symbols weak, so that the first copy wins.
    out_bind[ext & insec & comdat_weak[np.where(insec, secno, 0)]] = Bind.WEAK
    names_out = list(symnames)
    for k in np.flatnonzero(secdef & take).tolist():
        names_out[k] = sec_name[msec[k]]

    # Weak externals: weak symbols that fall back to a default symbol (their
    # aux record's TagIndex): defined where the default is (gcc's weak
    # definitions: the default is .weak.NAME.SOMEGLOBAL in the same object),
    # or undefined where the default is absolute 0 (gcc's weak references).
    for k in np.flatnonzero(weak).tolist():
        if aux_of[k] < 0:
            d.error(f"{path}: weak external {symnames[k]}: no aux record naming its default")
            reported[k] = True
            continue
        tag = int(aux[aux_of[k]]["tag"])
        if not 0 <= tag < nsym or not primary[tag]:
            d.error(f"{path}: weak external {symnames[k]}: default symbol #{tag} is not a "
                    f"symbol of the table ({nsym} records)")
            reported[k] = True
            continue
        dflt = symnames[tag]
        if reported[tag]:
            reported[k] = True
            continue
        if take[tag] and secno[tag] != SYM_UNDEFINED:
            if secno[tag] == SYM_ABSOLUTE and value[tag] == 0:
                out_sec[k], out_val[k] = UNDEF, 0
            else:
                out_sec[k], out_val[k] = out_sec[tag], value[tag]
            if dflt.startswith(".weak."):
                # gas's name for the default (.weak.NAME.SOMEGLOBAL) serves only
                # this weak external: local, so that no two objects clash on it.
                out_bind[tag] = Bind.LOCAL
        else:
            d.error(f"{path}: weak external {symnames[k]}: its default {dflt} is "
                    + ("undefined here: minild cannot make one undefined symbol an alias of "
                       "another" if secno[tag] == SYM_UNDEFINED else
                       "not a symbol minild imports"))
            reported[k] = True
            continue
        out_bind[k] = Bind.WEAK
        take[k] = True

    # Symbols outside their section.
    past = take & (out_sec >= 0) & (out_val > np.append(np.array(sec_size, np.int64), 0)[
        np.where(out_sec >= 0, out_sec, len(sec_size))])
    for k in np.flatnonzero(past)[:8].tolist():
        d.error(f"{path}: symbol {symnames[k]}: value {int(out_val[k]):#x} lies past the end "
                f"of section {sec_name[out_sec[k]]} ({sec_size[out_sec[k]]} bytes)")
    take &= ~past
    reported |= past

    pick = np.flatnonzero(take)
    smap = np.full(nsym, -1, np.int64)      # COFF symbol index -> minild symbol index
    smap[pick] = np.arange(len(pick))
    out_names = _unique([names_out[k] for k in pick.tolist()], out_bind[pick] != Bind.LOCAL)
    # What the object format cannot say: an empty name, a global name twice.
    seen: dict[str, int] = {}
    for k, n, b in zip(pick.tolist(), out_names, out_bind[pick].tolist()):
        if not n:
            d.error(f"{path}: symbol #{k} has an empty name")
        elif b != Bind.LOCAL:
            if n in seen:
                d.error(f"{path}: symbol {n}: declared twice (symbols #{seen[n]} and #{k})")
            seen[n] = k

    # Relocations.
    table = RELOCS[arch]
    # COFF type -> minild howto (-1: none), place bytes, addend delta. The
    # COFF-only types (ADDR32NB, SECREL) are found by name: an arch module
    # without them makes their relocations "unknown relocation type" errors.
    howto = np.full(1 << 16, -1, np.int64)
    width = np.zeros(1 << 16, np.int64)
    delta = np.zeros(1 << 16, np.int64)
    for code, (_, hname, w, dl) in table.items():
        howto[code] = a.index.get(hname, -1) if hname else -1
        width[code], delta[code] = w, dl
    rs, ro, rt, ry, ra = [], [], [], [], []
    for i, s in enumerate(shdrs.tolist(), 1):
        _, _, _, size, _, reloff, _, nreloc, _, fl = s
        if kept[i] < 0 or nreloc == 0:
            continue
        name = names[i - 1]
        where = f"{path}: section [{i}] {name}"
        tsec = int(kept[i])
        if reloff + nreloc * RELOC.itemsize > len(data):
            d.error(f"{where}: {nreloc} relocations at offset {reloff:#x} lie past the end of "
                    f"the file ({len(data)} bytes)")
            continue
        if sec_data[tsec] is None:
            d.error(f"{where}: relocations for a section without bytes (bss)")
            continue
        recs = np.frombuffer(data, RELOC, nreloc, reloff)
        typ = recs["type"].astype(np.int64)
        off = recs["vaddr"].astype(np.int64)
        sym = recs["sym"].astype(np.int64)
        keep = typ != ABSOLUTE
        typ, off, sym = typ[keep], off[keep], sym[keep]
        if not len(typ):
            continue
        htype = howto[typ]
        bad_t = htype < 0
        if (sym >= nsym).any():
            k = int(np.flatnonzero(sym >= nsym)[0])
            d.error(f"{where}: relocation at {name}+{int(off[k]):#x} refers to symbol "
                    f"#{int(sym[k])}, past the end of the symbol table ({nsym} records)")
            continue
        for t in np.unique(typ[bad_t]).tolist():
            ks = np.flatnonzero(typ == t)
            k = int(ks[0])
            rname = f"{table[t][0]} ({t:#x})" if t in table else f"#{t:#x}"
            more = f" (and {len(ks) - 1} more)" if len(ks) > 1 else ""
            d.error(f"{where}: relocation {rname} at {name}+{int(off[k]):#x} against "
                    f"{_symdesc(symnames, secdef, secno, names, int(sym[k]))}{more}: "
                    f"{_why(rname, arch)}")
        if bad_t.any():
            continue
        msym = smap[sym]
        lost = (msym < 0) & ~reported[sym]
        if lost.any():
            k = int(np.flatnonzero(lost)[0])
            d.error(f"{where}: relocation at {name}+{int(off[k]):#x} refers to "
                    f"{_symdesc(symnames, secdef, secno, names, int(sym[k]))}, which minild "
                    "does not import (an aux record, a file or debug symbol, or a symbol in a "
                    "section left out)")
            continue
        if (msym < 0).any():
            continue    # against a symbol refused above
        outside = (off < 0) | (off + width[typ] > len(sec_data[tsec]))
        if outside.any():
            k = int(np.flatnonzero(outside)[0])
            d.error(f"{where}: relocation {table[int(typ[k])][0]} at {int(off[k]):#x} lies past "
                    f"the end of {name} ({len(sec_data[tsec])} bytes)")
            continue
        add = implicit_addends(a, htype, off, msym, sec_data[tsec], where, d) + delta[typ]
        rs.append(np.full(len(off), tsec, np.int32))
        ro.append(off)
        rt.append(htype.astype(np.int16))
        ry.append(msym.astype(np.int32))
        ra.append(add)
    d.check()
    cat = lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt)  # noqa: E731
    return Object(
        path=path, arch=arch, sec_name=sec_name, sec_kind=np.array(sec_kind, np.uint8),
        sec_align=np.array(sec_align, np.int64), sec_size=np.array(sec_size, np.int64),
        sec_data=sec_data, sym_name=Names.from_list(out_names),
        sym_sec=out_sec[pick].astype(np.int32), sym_value=out_val[pick].astype(np.int64),
        sym_size=np.zeros(len(pick), np.int64), sym_bind=out_bind[pick].astype(np.uint8),
        sym_type=out_type[pick].astype(np.uint8),
        rel_sec=cat(rs, np.int32), rel_off=cat(ro, np.int64), rel_type=cat(rt, np.int16),
        rel_sym=cat(ry, np.int32), rel_add=cat(ra, np.int64))


def _primaries(naux: np.ndarray) -> np.ndarray:
    """_primaries marks the records of the symbol table that are symbols (the
    others are aux records of the symbol before them): one step per symbol
    that has aux records, found with a search over those alone."""
    n = len(naux)
    prim = np.ones(n, bool)
    carriers = np.flatnonzero(naux > 0)
    pos = 0
    j = int(np.searchsorted(carriers, pos))
    while j < len(carriers):
        k = int(carriers[j])
        end = min(k + 1 + int(naux[k]), n)
        prim[k + 1:end] = False
        pos = end
        j = int(np.searchsorted(carriers, pos, side="left"))
    return prim


def _section_name(raw: bytes, strtab: bytes, path: str, i: int) -> str:
    """_section_name: 8 bytes, or "/123" (decimal) or "//AbCdEf" (base64, for
    offsets past 9,999,999) into the string table."""
    if raw.startswith(b"/") and len(raw) > 1:
        try:
            off = (int.from_bytes(b"\0\0" + base64.b64decode(raw[2:].ljust(8, b"A")[:8]), "big")
                   if raw.startswith(b"//") else int(raw[1:].decode("ascii")))
        except (ValueError, UnicodeDecodeError):
            raise fail(f"{path}: section [{i}]: bad long-name reference {raw!r}")
        if not 4 <= off < len(strtab):
            raise fail(f"{path}: section [{i}]: name at string-table offset {off} lies past "
                       f"the end of the string table ({len(strtab)} bytes)")
        end = strtab.find(b"\0", off)
        raw = strtab[off:end if end >= 0 else len(strtab)]
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def _symbol_names(data: bytes, syms: np.ndarray, symoff: int, strtab: bytes) -> list[str]:
    """_symbol_names reads every record's name: short names in place, long ones
    (first four bytes zero) from the string table, decoded in one call each."""
    n = len(syms)
    if n == 0:
        return []
    short = np.frombuffer(data, SYM_NAME, n, symoff)["name"].tolist()
    long_ = np.flatnonzero(syms["n0"] == 0)
    names = b"\0".join(short).decode("utf-8", "replace").split("\0") \
        if not any(b"\0" in s for s in short) else \
        [s.split(b"\0", 1)[0].decode("utf-8", "replace") for s in short]
    if len(long_):
        offs = syms["n1"][long_].astype(np.int64)
        offs = np.where(offs < len(strtab), offs, len(strtab))
        for k, s in zip(long_.tolist(), _strings(strtab + b"\0", offs)):
            names[k] = s
    return names


def _symdesc(symnames, secdef, secno, names, k: int) -> str:
    if k < len(secdef) and secdef[k]:
        return f"section {names[secno[k] - 1]}"
    if k < len(symnames):
        return f"symbol {symnames[k] or '#' + str(k)}"
    return f"symbol #{k}"
