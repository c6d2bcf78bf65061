"""wasmobj: `minild import` of WebAssembly relocatable objects (the .o files of
`clang --target=wasm32 -c`) to minild objects of arch `wasm`.

importer.import_elf hands over every file that starts with the wasm magic
number (\\0asm) to read(). The module is parsed section by section, following
WebAssembly's tool conventions (Linking.md): the standard sections (type,
import, function, table, memory, global, export, start, elem, datacount, code,
data), then the custom sections `linking` (version 2: the symbol table, the
segment info, init functions and COMDATs) and `reloc.*`. Relocation entries
are read with numpy: the LEB128s of a reloc section are decoded together and
the entries found by pointer doubling, so there is no Python work per
relocation; symbols, functions and segments are visited once each in Python.

What comes through (docs/object-format.md, "WebAssembly objects"; docs/import.md,
"WebAssembly objects"): one text section per defined function (its code-section
entry without the size prefix), one rodata/data/bss section per data segment,
the types, function signatures, exports, imports (a function's import module and
field), and the relocations of the code and data sections, their offsets
rebased from the section's payload to the function body or the segment.

What minild cannot link is refused with the file, the section, the symbol or
the relocation named: globals other than the imported __stack_pointer, tables
other than the imported __indirect_function_table, defined memories and
tables, a start function, passive or TLS segments, init functions,
COMDATs, tags, and relocation types without a Howto in minild/arch/wasm.py.
"""

from __future__ import annotations

import numpy as np

from . import arch as archreg
from .errors import Diagnostics, fail
from .importer import _unique, _why, malformed
from .loader import ABS, IMPORT, KIND_ID, MAX_ALIGN, UNDEF, Object
from .names import Names
from .vocab import Bind, SymType

MAGIC = b"\0asm"
VERSION = 1
LINKING_VERSION = 2

# Section ids -> wasm-objdump's names for them.
SECTION_NAMES = {0: "Custom", 1: "Type", 2: "Import", 3: "Function", 4: "Table", 5: "Memory",
                 6: "Global", 7: "Export", 8: "Start", 9: "Elem", 10: "Code", 11: "Data",
                 12: "DataCount", 13: "Tag"}
TYPE, IMPORT_SEC, FUNCTION, TABLE, MEMORY, GLOBAL, EXPORT, START, ELEM, CODE, DATA, \
    DATACOUNT, TAG = range(1, 14)

VALTYPES = {0x7F: "i32", 0x7E: "i64", 0x7D: "f32", 0x7C: "f64"}
OTHER_VALTYPES = {0x7B: "v128", 0x70: "funcref", 0x6F: "externref"}
EXTERNAL = {0: "function", 1: "table", 2: "memory", 3: "global", 4: "tag"}

# linking subsections
WASM_SEGMENT_INFO, WASM_INIT_FUNCS, WASM_COMDAT_INFO, WASM_SYMBOL_TABLE = 5, 6, 7, 8
SUBSECTION_NAMES = {WASM_SEGMENT_INFO: "WASM_SEGMENT_INFO", WASM_INIT_FUNCS: "WASM_INIT_FUNCS",
                    WASM_COMDAT_INFO: "WASM_COMDAT_INFO", WASM_SYMBOL_TABLE: "WASM_SYMBOL_TABLE"}
# symbol kinds
SYM_FUNCTION, SYM_DATA, SYM_GLOBAL, SYM_SECTION, SYM_TAG, SYM_TABLE = range(6)
KIND_NAMES = ("function", "data", "global", "section", "tag", "table")
# symbol flags
BINDING_WEAK = 0x1
BINDING_LOCAL = 0x2
VISIBILITY_HIDDEN = 0x4
UNDEFINED = 0x10
EXPORTED = 0x20
EXPLICIT_NAME = 0x40
NO_STRIP = 0x80
TLS = 0x100
ABSOLUTE = 0x200
# segment flags
SEG_STRINGS = 0x1
SEG_TLS = 0x2

# Relocation types (Linking.md): code -> (name, has an addend). Only the types
# minild/arch/wasm.py has a Howto for are imported; the others are refused
# with their name.
RELOC_TYPES = {
    0: ("R_WASM_FUNCTION_INDEX_LEB", False), 1: ("R_WASM_TABLE_INDEX_SLEB", False),
    2: ("R_WASM_TABLE_INDEX_I32", False), 3: ("R_WASM_MEMORY_ADDR_LEB", True),
    4: ("R_WASM_MEMORY_ADDR_SLEB", True), 5: ("R_WASM_MEMORY_ADDR_I32", True),
    6: ("R_WASM_TYPE_INDEX_LEB", False), 7: ("R_WASM_GLOBAL_INDEX_LEB", False),
    8: ("R_WASM_FUNCTION_OFFSET_I32", True), 9: ("R_WASM_SECTION_OFFSET_I32", True),
    10: ("R_WASM_TAG_INDEX_LEB", False), 11: ("R_WASM_MEMORY_ADDR_REL_SLEB", True),
    12: ("R_WASM_TABLE_INDEX_REL_SLEB", False), 13: ("R_WASM_GLOBAL_INDEX_I32", False),
    14: ("R_WASM_MEMORY_ADDR_LEB64", True), 15: ("R_WASM_MEMORY_ADDR_SLEB64", True),
    16: ("R_WASM_MEMORY_ADDR_I64", True), 17: ("R_WASM_MEMORY_ADDR_REL_SLEB64", True),
    18: ("R_WASM_TABLE_INDEX_SLEB64", False), 19: ("R_WASM_TABLE_INDEX_I64", False),
    20: ("R_WASM_TABLE_NUMBER_LEB", False), 21: ("R_WASM_MEMORY_ADDR_TLS_SLEB", True),
    22: ("R_WASM_FUNCTION_OFFSET_I64", True), 23: ("R_WASM_MEMORY_ADDR_LOCREL_I32", True),
    24: ("R_WASM_TABLE_INDEX_REL_SLEB64", False), 25: ("R_WASM_MEMORY_ADDR_TLS_SLEB64", True),
    26: ("R_WASM_FUNCTION_INDEX_I32", False),
}
TYPE_INDEX_LEB = 6
LEB_TYPES = [c for c, (n, _) in RELOC_TYPES.items() if n.endswith("LEB")]   # 5-byte places
NO_SYMBOL_TYPES = (TYPE_INDEX_LEB,)   # whose index is not a symbol's
# clang's imports that a minild link provides itself: dropped.
PROVIDED = {("env", "__linear_memory", 2), ("env", "__indirect_function_table", 1)}
STACK_POINTER = "__stack_pointer"


class _Reader:
    """_Reader reads the wasm encodings from data[pos:end], failing with the
    place named (where: the file and section) at any read past end."""

    def __init__(self, data: bytes, pos: int, end: int, where: str):
        self.data, self.pos, self.end, self.where = data, pos, end, where

    def _short(self, what: str, n: int = 1):
        raise fail(f"{self.where}: malformed: {what} at offset {self.pos:#x} runs past the "
                   f"end of the section ({self.end:#x}, {n} bytes needed)")

    def u8(self, what: str) -> int:
        if self.pos >= self.end:
            self._short(what)
        self.pos += 1
        return self.data[self.pos - 1]

    def leb(self, what: str, bits: int = 32, signed: bool = False) -> int:
        start, result, shift = self.pos, 0, 0
        while True:
            if self.pos >= self.end:
                self.pos = start
                self._short(f"{what} (a LEB128)", self.pos - start + 1)
            b = self.data[self.pos]
            self.pos += 1
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
            if shift >= bits + 7:
                raise fail(f"{self.where}: malformed: {what} at offset {start:#x}: a LEB128 "
                           f"longer than {(bits + 6) // 7} bytes")
        if signed:
            if b & 0x40:
                result -= 1 << shift
            if not -(1 << (bits - 1)) <= result < 1 << (bits - 1):
                raise fail(f"{self.where}: malformed: {what} at offset {start:#x}: {result} "
                           f"does not fit {bits} bits")
        elif result >> bits:
            raise fail(f"{self.where}: malformed: {what} at offset {start:#x}: {result} "
                       f"does not fit {bits} bits")
        return result

    def count(self, what: str, least: int = 1) -> int:
        """count reads a vector's length, which must leave least bytes per element."""
        n = self.leb(what)
        if n * least > self.end - self.pos:
            raise fail(f"{self.where}: malformed: {what} {n} at offset {self.pos:#x}: more "
                       f"elements than the {self.end - self.pos} bytes left in the section")
        return n

    def name(self, what: str) -> str:
        n = self.leb(f"the length of {what}")
        if n > self.end - self.pos:
            self._short(what, n)
        raw = self.data[self.pos:self.pos + n]
        self.pos += n
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise fail(f"{self.where}: malformed: {what} at offset {self.pos - n:#x} is not "
                       "UTF-8")

    def skip(self, n: int, what: str):
        if n > self.end - self.pos:
            self._short(what, n)
        self.pos += n

    def done(self, what: str):
        if self.pos != self.end:
            raise fail(f"{self.where}: malformed: {self.end - self.pos} bytes after the "
                       f"{what}, at offset {self.pos:#x}")


class _Sec:
    """_Sec is one section of the module: its index, id, name and payload."""

    def __init__(self, index: int, sid: int, name: str, start: int, end: int, where: str):
        self.index, self.id, self.name, self.start, self.end = index, sid, name, start, end
        self.where = where


def is_wasm(data: bytes) -> bool:
    """is_wasm: data starts with the wasm magic number (what importer.import_elf
    hands to read)."""
    return data[:4] == MAGIC


def read(path: str, data: bytes) -> Object:
    """read turns the wasm relocatable object data (read from path) into a
    minild Object; raises LinkError, with the file and the place named, on
    what it refuses or cannot read."""
    return malformed("wasm", _read, path, data)


def _sections(path: str, data: bytes) -> list[_Sec]:
    if len(data) < 8:
        raise fail(f"{path}: malformed wasm object: the file ends inside the header "
                   f"({len(data)} of 8 bytes)")
    version = int.from_bytes(data[4:8], "little")
    if version != VERSION:
        raise fail(f"{path}: wasm binary version {version} is not supported (expected "
                   f"{VERSION})")
    r = _Reader(data, 8, len(data), f"{path}: malformed wasm object")
    secs: list[_Sec] = []
    seen: dict[int, int] = {}
    while r.pos < len(data):
        at = r.pos
        sid = r.u8(f"the id of section [{len(secs)}]")
        size = r.leb(f"the size of section [{len(secs)}]")
        start = payload = r.pos
        where = f"{path}: section [{len(secs)}] {SECTION_NAMES.get(sid, f'#{sid}')}"
        if size > len(data) - start:
            raise fail(f"{where}: {size} bytes at offset {start:#x} lie past the end of the "
                       f"file ({len(data)} bytes)")
        if sid not in SECTION_NAMES:
            raise fail(f"{where} at offset {at:#x}: unknown section id {sid}")
        name = SECTION_NAMES[sid]
        if sid == 0:
            cr = _Reader(data, start, start + size, where)
            name = cr.name("the custom section's name")
            start = cr.pos
            where = f"{path}: section [{len(secs)}] {name}"
        elif sid in seen:
            raise fail(f"{where}: a second {name} section (the first is section "
                       f"[{seen[sid]}])")
        else:
            seen[sid] = len(secs)
        secs.append(_Sec(len(secs), sid, name, start, payload + size, where))
        r.pos = payload + size
    return secs


def _read(path: str, data: bytes) -> Object:
    try:
        a = archreg.lookup("wasm")
    except (KeyError, ModuleNotFoundError):
        raise fail(f"{path}: a wasm object, but this minild has no wasm arch module "
                   "(minild/arch/wasm.py)")
    secs = _sections(path, data)
    d = Diagnostics()
    by_id = {s.id: s for s in secs if s.id}
    linking = [s for s in secs if s.id == 0 and s.name == "linking"]
    if not linking:
        raise fail(f"{path}: not a relocatable wasm object (no \"linking\" section): minild "
                   "links .o files (clang --target=wasm32 -c)")
    if len(linking) > 1:
        raise fail(f"{linking[1].where}: a second linking section")

    # Types.
    types: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
    if TYPE in by_id:
        s = by_id[TYPE]
        r = _Reader(data, s.start, s.end, s.where)
        for k in range(r.count("the number of types", 3)):
            form = r.u8(f"the form of type [{k}]")
            if form != 0x60:
                raise fail(f"{s.where}: type [{k}]: form {form:#x} is not a function type (0x60)")
            sig = []
            for part in ("params", "results"):
                vals = []
                for j in range(r.count(f"the number of {part} of type [{k}]")):
                    v = r.u8(f"{part}[{j}] of type [{k}]")
                    if v not in VALTYPES:
                        d.error(f"{s.where}: type [{k}]: {part}[{j}]: value type "
                                f"{OTHER_VALTYPES.get(v, f'{v:#x}')} is not supported (only "
                                "i32, i64, f32, f64)")
                    vals.append(VALTYPES.get(v, "i32"))
                sig.append(tuple(vals))
            types.append((sig[0], sig[1]))
        r.done("types")

    def typeidx(r: _Reader, what: str) -> int:
        t = r.leb(what)
        if t >= len(types):
            raise fail(f"{r.where}: {what}: type index {t} is past the last type "
                       f"({len(types)} types)")
        return t

    # Imports: functions (module, field, type), the provided memory and table,
    # and __stack_pointer.
    fimports: list[tuple[str, str, int]] = []
    gimports: list[tuple[str, str]] = []
    gtypes: list[tuple[str | None, bool]] = []   # per global import: (value type, mutable)
    timports: list[tuple[str, str]] = []
    if IMPORT_SEC in by_id:
        s = by_id[IMPORT_SEC]
        r = _Reader(data, s.start, s.end, s.where)
        for k in range(r.count("the number of imports", 4)):
            module = r.name(f"the module of import [{k}]")
            field = r.name(f"the field of import [{k}]")
            kind = r.u8(f"the kind of import [{k}] {module}.{field}")
            what = f"import [{k}] {module}.{field}"
            if kind == 0:
                fimports.append((module, field, typeidx(r, f"the type of {what}")))
                continue
            if kind == 1:
                reftype = r.u8(f"the element type of {what}")
                _limits(r, what)
                timports.append((module, field))
                if reftype != 0x70 or (module, field, 1) not in PROVIDED:
                    d.error(f"{s.where}: {what}: a table import other than "
                            "env.__indirect_function_table (funcref) is not supported")
            elif kind == 2:
                if _limits(r, what) & 4:
                    raise fail(f"{s.where}: {what}: a 64-bit memory (wasm64) is not supported: "
                               "minild links wasm32 objects")
                if (module, field, 2) not in PROVIDED:
                    d.error(f"{s.where}: {what}: a memory import other than "
                            "env.__linear_memory is not supported")
            elif kind == 3:
                vt = r.u8(f"the value type of {what}")
                mut = r.u8(f"the mutability of {what}")
                gimports.append((module, field))
                gtypes.append((VALTYPES.get(vt), bool(mut)))
                if vt not in VALTYPES or mut > 1:
                    d.error(f"{s.where}: {what}: a global of value type {vt:#x} (mutability "
                            f"{mut}) is not supported")
            else:
                raise fail(f"{s.where}: {what}: import kind "
                           f"{EXTERNAL.get(kind, kind)} is not supported")
        r.done("imports")
    nimp = len(fimports)

    # Defined functions' types, and what a relocatable object may not define.
    ftypes: list[int] = []
    if FUNCTION in by_id:
        s = by_id[FUNCTION]
        r = _Reader(data, s.start, s.end, s.where)
        ftypes = [typeidx(r, f"the type of function [{nimp + k}]")
                  for k in range(r.count("the number of functions"))]
        r.done("functions")
    defined = {TABLE: 0, GLOBAL: 0}   # how many: symbols may name them (refused below)
    gdefs: list[tuple[str, bool, int]] = []   # defined globals: (value type, mutable, initial)
    if GLOBAL in by_id:
        s = by_id[GLOBAL]
        r = _Reader(data, s.start, s.end, s.where)
        for k in range(r.count("the number of globals", 3)):
            what = f"global [{len(gimports) + k}]"
            vt, mut = r.u8(f"the value type of {what}"), r.u8(f"the mutability of {what}")
            op = r.u8(f"the initial value's opcode of {what}")
            if vt not in VALTYPES or mut > 1:
                raise fail(f"{s.where}: {what}: value type {vt:#x} (mutability {mut}) is not "
                           "supported")
            if op in (0x41, 0x42):
                v = r.leb(f"the initial value of {what}", 64, signed=True)
            elif op in (0x43, 0x44):
                n = 4 if op == 0x43 else 8
                v = int.from_bytes(data[r.pos:r.pos + n], "little")
                r.skip(n, f"the initial value of {what}")
            else:
                raise fail(f"{s.where}: {what}: an initial value other than a constant "
                           f"(opcode {op:#x}) is not supported")
            if r.u8(f"the end of {what}'s initial value") != 0x0B:
                raise fail(f"{s.where}: {what}: its initial value does not end with end (0x0b)")
            gdefs.append((VALTYPES[vt], bool(mut), v))
        r.done("globals")
        defined[GLOBAL] = len(gdefs)
    for sid, what in ((TABLE, "defined tables"), (MEMORY, "defined memories"),
                      (TAG, "tags (exception handling)")):
        if sid in by_id:
            s = by_id[sid]
            n = defined[sid] = _Reader(data, s.start, s.end, s.where).leb(f"the number of {what}")
            if n:
                d.error(f"{s.where}: {n} {what}: not supported (a relocatable object from clang "
                        "imports its table, memory and __stack_pointer)")
    if START in by_id:
        d.error(f"{by_id[START].where}: a start function is not supported (the entry is "
                "_start, or -e)")
    # Elem: clang writes its own layout of the table's slots here; the linker
    # lays out the table again from the R_WASM_TABLE_INDEX_* relocations, as
    # wasm-ld does, so the section is read for nothing.

    # Exports: function index -> export name (clang's export_name attribute).
    fexports: dict[int, str] = {}
    if EXPORT in by_id:
        s = by_id[EXPORT]
        r = _Reader(data, s.start, s.end, s.where)
        for k in range(r.count("the number of exports", 3)):
            name = r.name(f"the name of export [{k}]")
            kind = r.u8(f"the kind of export [{k}] {name}")
            idx = r.leb(f"the index of export [{k}] {name}")
            if kind != 0:
                d.error(f"{s.where}: export [{k}] {name}: exports of a "
                        f"{EXTERNAL.get(kind, kind)} are not supported (only functions)")
            elif not nimp <= idx < nimp + len(ftypes):
                d.error(f"{s.where}: export [{k}] {name}: function [{idx}] is not a function "
                        f"this object defines ([{nimp}, {nimp + len(ftypes) - 1}])")
            else:
                fexports[idx] = name
        r.done("exports")

    # Code: each function's body (its entry without the size prefix).
    bodies: list[tuple[int, int]] = []
    code = by_id.get(CODE)
    if code is not None:
        r = _Reader(data, code.start, code.end, code.where)
        for k in range(r.count("the number of function bodies")):
            size = r.leb(f"the size of function [{nimp + k}]")
            start = r.pos
            r.skip(size, f"the body of function [{nimp + k}]")
            bodies.append((start, start + size))
        r.done("function bodies")
    if len(bodies) != len(ftypes):
        raise fail(f"{(code or by_id.get(FUNCTION)).where}: {len(bodies)} function bodies for "
                   f"{len(ftypes)} functions")

    # Data: each segment's bytes.
    segs: list[tuple[int, int]] = []
    dsec = by_id.get(DATA)
    if dsec is not None:
        r = _Reader(data, dsec.start, dsec.end, dsec.where)
        for k in range(r.count("the number of data segments", 2)):
            flags = r.leb(f"the flags of segment [{k}]")
            if flags == 1:
                d.error(f"{dsec.where}: segment [{k}]: passive segments (bulk memory) are "
                        "not supported")
            elif flags not in (0, 2):
                raise fail(f"{dsec.where}: segment [{k}]: unknown flags {flags:#x}")
            else:
                if flags == 2 and r.leb(f"the memory of segment [{k}]"):
                    d.error(f"{dsec.where}: segment [{k}]: memory index not 0")
                _init_expr(r, f"the offset of segment [{k}]")
            size = r.leb(f"the size of segment [{k}]")
            start = r.pos
            r.skip(size, f"the bytes of segment [{k}]")
            segs.append((start, start + size))
        r.done("data segments")
    if DATACOUNT in by_id:
        s = by_id[DATACOUNT]
        r = _Reader(data, s.start, s.end, s.where)
        n = r.leb("the data count")
        if n != len(segs):
            raise fail(f"{s.where}: data count {n}, but the Data section has {len(segs)} "
                       "segments")

    # linking: the symbol table and the segments' names, alignments and flags.
    lk = linking[0]
    r = _Reader(data, lk.start, lk.end, lk.where)
    version = r.leb("the version")
    if version != LINKING_VERSION:
        raise fail(f"{lk.where}: version {version} is not supported (expected "
                   f"{LINKING_VERSION}, as clang writes)")
    syminfo: list[tuple] = []   # (kind, flags, index, name, (segment, offset, size) | None)
    seginfo: list[tuple[str, int, int]] = []
    got_sub = set()
    while r.pos < lk.end:
        st = r.u8("the type of a subsection")
        sz = r.leb("the size of a subsection")
        sub = _Reader(data, r.pos, r.pos + sz, f"{lk.where}: subsection "
                      f"{SUBSECTION_NAMES.get(st, f'#{st}')}")
        r.skip(sz, sub.where.rsplit(": ", 1)[1])
        if st in got_sub:
            raise fail(f"{sub.where}: appears twice")
        got_sub.add(st)
        if st == WASM_SYMBOL_TABLE:
            syminfo = _symbol_table(sub, nimp, len(ftypes), fimports, gimports, timports,
                                    defined[GLOBAL], defined[TABLE])
        elif st == WASM_SEGMENT_INFO:
            for k in range(sub.count("the number of segments", 3)):
                name = sub.name(f"the name of segment [{k}]")
                p2 = sub.leb(f"the alignment of segment [{k}] {name}")
                flags = sub.leb(f"the flags of segment [{k}] {name}")
                seginfo.append((name, p2, flags))
            sub.done("segment info")
            if len(seginfo) != len(segs):
                raise fail(f"{sub.where}: {len(seginfo)} segments, but the Data section has "
                           f"{len(segs)}")
        elif st == WASM_INIT_FUNCS:
            n = sub.leb("the number of init functions")
            if n:
                d.error(f"{sub.where}: {n} init functions (constructors): not supported; "
                        "constructors need a C runtime to run them, and minild links programs "
                        "without one")
        elif st == WASM_COMDAT_INFO:
            names = []
            for k in range(sub.count("the number of COMDATs", 3)):
                names.append(sub.name(f"the name of COMDAT [{k}]"))
                sub.leb(f"the flags of COMDAT [{k}]")
                for j in range(sub.count(f"the number of entries of COMDAT [{k}]", 2)):
                    sub.u8(f"the kind of entry [{j}] of COMDAT [{k}]")
                    sub.leb(f"the index of entry [{j}] of COMDAT [{k}]")
            sub.done("COMDATs")
            if names:
                d.error(f"{sub.where}: COMDATs are not supported ({', '.join(names)}); they "
                        "come from C++ inline functions and templates")
        else:
            raise fail(f"{sub.where}: unknown subsection type {st}")
    if segs and not seginfo:
        seginfo = [(f".data.#{k}", 0, 0) for k in range(len(segs))]

    # Sections: a text section per defined function, then one per segment.
    func_syms: dict[int, str] = {}
    for kind, flags, index, name, _ in syminfo:
        if kind == SYM_FUNCTION and index >= nimp:
            func_syms.setdefault(index, name)
    sec_name = [f".text.{func_syms.get(nimp + k, f'#{nimp + k}')}" for k in range(len(bodies))]
    sec_kind = [KIND_ID["text"]] * len(bodies)
    sec_align = [1] * len(bodies)
    sec_size = [e - s for s, e in bodies]
    sec_data: list[bytes | None] = [data[s:e] for s, e in bodies]
    for k, ((s, e), (name, p2, flags)) in enumerate(zip(segs, seginfo)):
        raw = data[s:e]
        where = f"{dsec.where}: segment [{k}] {name}"
        if flags & SEG_TLS:
            d.error(f"{where}: thread-local storage (a TLS segment) is not supported")
        if p2 > 31 or 1 << p2 > MAX_ALIGN:
            d.error(f"{where}: alignment 2**{p2} is larger than {MAX_ALIGN:#x}")
            p2 = 0
        if name.startswith(".rodata"):
            kind = "rodata"
        elif name.startswith(".bss") and not raw.strip(b"\0"):
            kind = "bss"   # clang writes the zeros of .bss.* segments: no file space here
        else:
            kind = "data"
        sec_name.append(name)
        sec_kind.append(KIND_ID[kind])
        sec_align.append(1 << p2)
        sec_size.append(e - s)
        sec_data.append(None if kind == "bss" else raw)
    sec_name = _unique(sec_name, np.zeros(len(sec_name), bool))
    nfunc_secs = len(bodies)

    # Symbols.
    nsym = len(syminfo)
    smap = np.full(nsym, -1, np.int64)    # wasm symbol -> minild symbol
    reported = np.zeros(nsym, bool)       # refused here: relocations against it need no message
    dropped: dict[int, str] = {}          # left out on purpose: why, for a relocation against it
    out_names, out_sec, out_val, out_size, out_bind, out_type = [], [], [], [], [], []
    imports, signatures, exports, globals_ = [], {}, {}, {}
    for k, (kind, flags, index, name, dinfo) in enumerate(syminfo):
        where = f"{lk.where}: symbol #{k} {name or '(no name)'}"
        bad = None
        undef = bool(flags & UNDEFINED)
        if flags & BINDING_LOCAL and flags & BINDING_WEAK:
            bad = "both local and weak"
        elif flags & TLS:
            bad = "thread-local symbols are not supported"
        elif flags & EXPORTED and (kind != SYM_FUNCTION or undef):
            bad = f"exporting a {'undefined ' if undef else ''}{KIND_NAMES[kind]} is not supported " \
                  "(only defined functions)"
        elif kind == SYM_TAG:
            bad = "tags (exception handling) are not supported"
        elif kind == SYM_TABLE:
            if undef and name == "__indirect_function_table":
                dropped[k] = "the function table, which the linker lays out"
                continue
            bad = "tables other than the imported __indirect_function_table are not supported"
        elif kind == SYM_SECTION:
            dropped[k] = "a section symbol of a custom section, which minild leaves out"
            continue
        elif kind == SYM_GLOBAL and not (undef and name == STACK_POINTER):
            # A wasm global: imported (or defined by another object), or defined
            # here as an absolute symbol whose value is its initial value.
            if undef:
                module, field = gimports[index]
                globals_[len(out_names)] = gtypes[index]
                if module != "env" or flags & EXPLICIT_NAME:
                    imports.append((len(out_names), module, field))
                    gsec = IMPORT
                else:
                    gsec = UNDEF
                gval = 0
            else:
                vt, mut, gval = gdefs[index - len(gimports)]
                globals_[len(out_names)] = (vt, mut)
                gsec = ABS
        elif kind == SYM_DATA and flags & ABSOLUTE:
            bad = "absolute data symbols are not supported"
        if bad:
            d.error(f"{where}: {bad}")
            reported[k] = True
            continue
        sec, val, size, typ = UNDEF, 0, 0, SymType.NOTYPE
        if kind == SYM_GLOBAL and not (undef and name == STACK_POINTER):
            sec, val = gsec, gval
        if kind == SYM_FUNCTION:
            typ = SymType.FUNC
            if index < nimp:
                module, field, t = fimports[index]
                signatures[len(out_names)] = t
                if module != "env" or flags & EXPLICIT_NAME:
                    imports.append((len(out_names), module, field))
                    sec = IMPORT
            else:
                sec = index - nimp
                size = sec_size[sec]
                signatures[len(out_names)] = ftypes[sec]
                if flags & EXPORTED or index in fexports:
                    exports[len(out_names)] = fexports.get(index, name)
        elif kind == SYM_DATA:
            typ = SymType.OBJECT
            if dinfo is not None:
                seg, val, size = dinfo
                if seg >= len(segs):
                    d.error(f"{where}: segment [{seg}] is past the last segment "
                            f"({len(segs)} segments)")
                    reported[k] = True
                    continue
                if val + size > sec_size[nfunc_secs + seg]:
                    d.error(f"{where}: offset {val:#x} and size {size} lie past the end of "
                            f"segment [{seg}] {seginfo[seg][0]} ({sec_size[nfunc_secs + seg]} "
                            "bytes)")
                    reported[k] = True
                    continue
                sec = nfunc_secs + seg
        smap[k] = len(out_names)
        out_names.append(name)
        out_sec.append(sec)
        out_val.append(val)
        out_size.append(size)
        out_bind.append(Bind.LOCAL if flags & BINDING_LOCAL else
                        Bind.WEAK if flags & BINDING_WEAK else Bind.GLOBAL)
        out_type.append(typ)
        if sec == UNDEF and out_bind[-1] == Bind.LOCAL:
            d.error(f"{where}: a local symbol that is undefined")
    out_names = _unique(out_names, np.array(out_bind) != Bind.LOCAL)
    seen: dict[str, int] = {}
    for j, (n, b) in enumerate(zip(out_names, out_bind)):
        if not n:
            d.error(f"{lk.where}: symbol #{int(np.flatnonzero(smap == j)[0])} has an empty name")
        elif b != Bind.LOCAL:
            if n in seen:
                d.error(f"{lk.where}: symbol {n}: declared twice (symbols #"
                        f"{int(np.flatnonzero(smap == seen[n])[0])} and "
                        f"#{int(np.flatnonzero(smap == j)[0])})")
            seen[n] = j

    # Relocations: reloc.CODE and reloc.DATA.
    targets = {}
    if code is not None:
        targets[code.index] = (code, np.array([s for s, _ in bodies], np.int64),
                               np.array([e for _, e in bodies], np.int64), 0)
    if dsec is not None:
        targets[dsec.index] = (dsec, np.array([s for s, _ in segs], np.int64),
                               np.array([e for _, e in segs], np.int64), nfunc_secs)
    notype_sym = -1      # the empty-named absolute symbol of R_WASM_TYPE_INDEX_LEB
    rs, ro, rt, ry, ra = [], [], [], [], []
    done_targets: dict[int, str] = {}
    for s in secs:
        if s.id != 0 or not s.name.startswith("reloc."):
            continue
        r = _Reader(data, s.start, s.end, s.where)
        tgt = r.leb("the target section")
        if tgt >= len(secs):
            raise fail(f"{s.where}: target section [{tgt}] is past the last section "
                       f"({len(secs)} sections)")
        if tgt not in targets:
            if secs[tgt].id == 0:
                continue   # relocations of a custom section left out (.debug_*)
            raise fail(f"{s.where}: relocations for section [{tgt}] {secs[tgt].name}: only "
                       "the Code and Data sections are relocated")
        if tgt in done_targets:
            raise fail(f"{s.where}: a second relocation section for section [{tgt}] "
                       f"{secs[tgt].name} (the first is {done_targets[tgt]})")
        done_targets[tgt] = s.name
        n = r.count("the number of relocations", 3)
        typ, off, idx, add = _relocs(data, r.pos, s.end, n, s.where)
        tsec, starts, ends, base = targets[tgt]
        tname = tsec.name
        # The type's Howto, by name.
        htype = np.full(len(typ), -1, np.int64)
        for t in np.unique(typ).tolist():
            rname = RELOC_TYPES.get(t, (f"#{t}",))[0]
            sel = typ == t
            h = a.index.get(rname, -1)
            if h < 0:
                ks = np.flatnonzero(sel)
                k = int(ks[0])
                more = f" (and {len(ks) - 1} more)" if len(ks) > 1 else ""
                d.error(f"{s.where}: relocation {rname} ({t}) at {tname}+{int(off[k]):#x}"
                        f"{_against(t, int(idx[k]), syminfo)}{more}: {_why(rname, 'wasm')}")
            htype[sel] = h
        if (htype < 0).any():
            continue
        width = a.widths[htype]
        # The function body or segment each place lies in (offsets are from the start
        # of the section's payload; starts and ends from the file's); rebased to it.
        abs_off = off + tsec.start
        which = np.searchsorted(starts, abs_off, side="right") - 1
        if len(ends):
            inside = (which >= 0) & (abs_off + width <= ends[np.maximum(which, 0)])
        else:
            inside = np.zeros(len(off), bool)
        if not inside.all():
            k = int(np.flatnonzero(~inside)[0])
            d.error(f"{s.where}: relocation {RELOC_TYPES[int(typ[k])][0]} at "
                    f"{tname}+{int(off[k]):#x}: its {int(width[k])}-byte place does not lie "
                    f"inside one {'function body' if tsec.id == CODE else 'data segment'} of "
                    f"the {tname} section")
            continue
        rel_off = abs_off - starts[which]
        leb = np.isin(typ, LEB_TYPES)
        if leb.any():
            # A LEB place must be a padded 5-byte LEB128, which the linker rewrites whole.
            buf = np.frombuffer(data, np.uint8)
            rows = buf[abs_off[leb][:, None] + np.arange(5)]
            ok = ((rows[:, :4] & 0x80) != 0).all(axis=1) & ((rows[:, 4] & 0x80) == 0)
            if not ok.all():
                k = int(np.flatnonzero(leb)[np.flatnonzero(~ok)[0]])
                d.error(f"{s.where}: relocation {RELOC_TYPES[int(typ[k])][0]} at "
                        f"{tname}+{int(off[k]):#x}: the place is not a 5-byte (padded) LEB128")
                continue
        # Symbols, or (R_WASM_TYPE_INDEX_LEB) a type index.
        istype = typ == TYPE_INDEX_LEB
        if istype.any():
            bad = istype & (idx >= len(types))
            if bad.any():
                k = int(np.flatnonzero(bad)[0])
                d.error(f"{s.where}: relocation R_WASM_TYPE_INDEX_LEB at {tname}+"
                        f"{int(off[k]):#x}: type index {int(idx[k])} is past the last type "
                        f"({len(types)} types)")
                continue
            if notype_sym < 0:
                notype_sym = len(out_names)
                out_names.append("")
                out_sec.append(ABS)
                out_val.append(0)
                out_size.append(0)
                out_bind.append(Bind.LOCAL)
                out_type.append(SymType.NOTYPE)
            add = np.where(istype, idx, add)
        past = ~istype & (idx >= nsym)
        if past.any():
            k = int(np.flatnonzero(past)[0])
            d.error(f"{s.where}: relocation {RELOC_TYPES[int(typ[k])][0]} at {tname}+"
                    f"{int(off[k]):#x} refers to symbol #{int(idx[k])}, past the end of the "
                    f"symbol table ({nsym} symbols)")
            continue
        msym = np.where(istype, notype_sym, smap[np.where(istype, 0, idx)] if nsym else -1)
        lost = (msym < 0) & ~reported[np.where(istype, 0, idx)] if nsym else msym < 0
        if lost.any():
            k = int(np.flatnonzero(lost)[0])
            j = int(idx[k])
            d.error(f"{s.where}: relocation {RELOC_TYPES[int(typ[k])][0]} at {tname}+"
                    f"{int(off[k]):#x} against symbol #{j} {syminfo[j][3]}: the symbol is "
                    f"{dropped.get(j, 'not imported')}")
            continue
        if (msym < 0).any():
            continue   # against a symbol refused above
        secidx = base + which
        into_bss = np.array([sec_data[i] is None for i in secidx.tolist()], bool) \
            if tsec.id == DATA else np.zeros(len(off), bool)
        if into_bss.any():
            k = int(np.flatnonzero(into_bss)[0])
            d.error(f"{s.where}: relocation at {tname}+{int(off[k]):#x} patches "
                    f"{sec_name[int(secidx[k])]}, a bss segment")
            continue
        rs.append(secidx.astype(np.int32))
        ro.append(rel_off)
        rt.append(htype.astype(np.int16))
        ry.append(msym.astype(np.int32))
        ra.append(add)
    d.check()
    cat = lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt)  # noqa: E731
    return Object(
        path=path, arch=a.name, sec_name=sec_name, sec_kind=np.array(sec_kind, np.uint8),
        sec_align=np.array(sec_align, np.int64), sec_size=np.array(sec_size, np.int64),
        sec_data=sec_data, sym_name=Names.from_list(out_names),
        sym_sec=np.array(out_sec, np.int32), sym_value=np.array(out_val, np.int64),
        sym_size=np.array(out_size, np.int64), sym_bind=np.array(out_bind, np.uint8),
        sym_type=np.array(out_type, np.uint8),
        rel_sec=cat(rs, np.int32), rel_off=cat(ro, np.int64), rel_type=cat(rt, np.int16),
        rel_sym=cat(ry, np.int32), rel_add=cat(ra, np.int64), imports=imports,
        types=types, signatures=signatures, exports=exports, globals=globals_)


def _limits(r: _Reader, what: str):
    flags = r.u8(f"the limits of {what}")
    r.leb(f"the minimum of {what}", 64)
    if flags & 1:
        r.leb(f"the maximum of {what}", 64)
    return flags


def _init_expr(r: _Reader, what: str) -> int:
    op = r.u8(what)
    if op != 0x41:   # i32.const
        raise fail(f"{r.where}: {what}: expected i32.const (0x41), got opcode {op:#x}")
    v = r.leb(what, 32, signed=True)
    if r.u8(f"the end of {what}") != 0x0B:
        raise fail(f"{r.where}: {what}: expected end (0x0b) after i32.const")
    return v


def _symbol_table(r: _Reader, nimp: int, nfunc: int, fimports, gimports, timports,
                  nglobal: int, ntable: int) -> list:
    """_symbol_table reads WASM_SYMBOL_TABLE: (kind, flags, index, name,
    (segment, offset, size) or None) per symbol; names of undefined
    functions, globals and tables without WASM_SYMBOL_EXPLICIT_NAME come
    from their import's field."""
    out = []
    for k in range(r.count("the number of symbols", 2)):
        kind = r.u8(f"the kind of symbol #{k}")
        flags = r.leb(f"the flags of symbol #{k}")
        undef = bool(flags & UNDEFINED)
        index, name, dinfo = 0, "", None
        if kind in (SYM_FUNCTION, SYM_GLOBAL, SYM_TAG, SYM_TABLE):
            index = r.leb(f"the index of symbol #{k}")
            space = {SYM_FUNCTION: ("function", fimports, nimp + nfunc),
                     SYM_GLOBAL: ("global", gimports, len(gimports) + nglobal),
                     SYM_TABLE: ("table", timports, len(timports) + ntable),
                     SYM_TAG: ("tag", [], 1 << 32)}[kind]
            if kind != SYM_TAG and index >= space[2]:
                raise fail(f"{r.where}: symbol #{k}: {space[0]} [{index}] does not exist "
                           f"({space[2]} {space[0]}s)")
            if kind != SYM_TAG and undef != (index < len(space[1])):
                raise fail(f"{r.where}: symbol #{k}: {space[0]} [{index}] is "
                           f"{'not ' if undef else ''}an import, but the symbol is "
                           f"{'' if undef else 'not '}undefined")
            if not undef or flags & EXPLICIT_NAME:
                name = r.name(f"the name of symbol #{k}")
            elif kind != SYM_TAG:
                name = space[1][index][1]
        elif kind == SYM_DATA:
            name = r.name(f"the name of symbol #{k}")
            if not undef:
                dinfo = (r.leb(f"the segment of symbol #{k} {name}"),
                         r.leb(f"the offset of symbol #{k} {name}"),
                         r.leb(f"the size of symbol #{k} {name}"))
        elif kind == SYM_SECTION:
            index = r.leb(f"the section of symbol #{k}")
        else:
            raise fail(f"{r.where}: symbol #{k}: unknown symbol kind {kind}")
        out.append((kind, flags, index, name, dinfo))
    r.done("symbols")
    return out


def _relocs(data: bytes, pos: int, end: int, n: int, where: str):
    """_relocs decodes n relocation entries from data[pos:end] with numpy: every
    LEB128 of the section at once, then the entries (type, offset, index, and
    an addend for some types) found by pointer doubling over the decoded
    values. Returns int64 columns type, offset, index, addend."""
    z = np.zeros(0, np.int64)
    if n == 0:
        if pos != end:
            raise fail(f"{where}: malformed: {end - pos} bytes after the relocations")
        return z, z, z, z
    b = np.frombuffer(data, np.uint8, end - pos, pos)
    last = np.flatnonzero(b < 0x80)          # the last byte of each LEB128
    if not len(last) or last[-1] != len(b) - 1:
        raise fail(f"{where}: malformed: the section ends inside a LEB128 (at offset "
                   f"{pos + (int(last[-1]) + 1 if len(last) else 0):#x})")
    first = np.concatenate(([0], last[:-1] + 1))
    length = last - first + 1
    if (length > 5).any():
        k = int(np.flatnonzero(length > 5)[0])
        raise fail(f"{where}: malformed: a LEB128 longer than 5 bytes at offset "
                   f"{pos + int(first[k]):#x}")
    shift = 7 * (np.arange(len(b)) - np.repeat(first, length))
    val = np.add.reduceat((b & 0x7F).astype(np.int64) << shift, first)
    m = len(val)
    # Entry starts: 0, then each start's type says how many values the entry has.
    has_add = np.zeros(256, np.int64)
    for c, (_, ha) in RELOC_TYPES.items():
        has_add[c] = ha
    code = np.where(val < 256, val, 0)
    nxt = np.minimum(np.arange(m) + 3 + has_add[code], m)
    nxt = np.append(nxt, m)                  # m: the end (a fixed point)
    reach = np.zeros(m + 1, bool)
    reach[0] = True
    jump = nxt
    while True:
        grown = reach.copy()
        grown[jump[reach]] = True
        if (grown == reach).all():
            break
        reach, jump = grown, jump[jump]
    starts = np.flatnonzero(reach[:m])
    ends = nxt[starts]
    typ = val[starts]
    unknown = ~np.isin(typ, list(RELOC_TYPES))
    if unknown.any():
        k = int(np.flatnonzero(unknown)[0])
        raise fail(f"{where}: relocation [{k}]: unknown relocation type {int(typ[k])} (at "
                   f"offset {pos + int(first[starts[k]]):#x}): its entry, and the ones after "
                   "it, cannot be read")
    if len(starts) != n or starts[-1] + 3 + has_add[code[starts[-1]]] != m:
        raise fail(f"{where}: malformed: {n} relocations declared, the section holds "
                   + (f"{len(starts)}" if len(starts) != n else
                      "as many, but ends inside the last"))
    big = length[starts] != 1
    if big.any():
        k = int(np.flatnonzero(big)[0])
        raise fail(f"{where}: malformed: relocation [{k}]: the type is not one byte")
    off, idx = val[starts + 1], val[starts + 2]
    withadd = ends - starts == 4
    add = np.zeros(n, np.int64)
    if withadd.any():
        j = starts[withadd] + 3
        raw, ln = val[j], length[j]
        neg = (b[last[j]] & 0x40) != 0
        add[withadd] = np.where(neg, raw - (np.int64(1) << (7 * ln)), raw)
    wide = (off >> 32) | (idx >> 32)
    bad_add = (add < -(1 << 31)) | (add >= 1 << 31)
    if (wide != 0).any() or bad_add.any():
        k = int(np.flatnonzero((wide != 0) | bad_add)[0])
        raise fail(f"{where}: malformed: relocation [{k}]: a field does not fit 32 bits")
    return typ, off, idx, add


def _against(t: int, idx: int, syminfo: list) -> str:
    if t in NO_SYMBOL_TYPES:
        return f" (type index {idx})"
    if idx < len(syminfo):
        return f" against symbol {syminfo[idx][3] or '#' + str(idx)}"
    return f" against symbol #{idx}"
