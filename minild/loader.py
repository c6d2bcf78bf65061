"""loader: validated columns from decoded objects (loadlib's read).

An object is one JSON document in one of two encodings of the same schema
(docs/object-format.md, minild.schema): "readable" (hex bytes, relocation
records, symbols by name) for people, and "compact" (base64 bytes, base64-packed
integer columns) for programs and large links. Both become the same Objects:
numpy columns for symbols and relocations, so that later phases never see a
Python object per relocation. Every check reports the file and the JSON path.
"""

from __future__ import annotations

import mmap
import operator
import os
from itertools import repeat

import msgspec
import numpy as np

from . import arch as archreg
from . import shm, workers
from .suggest import did_you_mean
from .errors import Diagnostics, LinkError, fail
from .names import Names
from .reloc import addend as reloc_addend
from .vocab import ABS, BINDINGS, IMPORT, KIND_ID, KINDS, TYPES, UNDEF, Bind, SymType  # noqa: F401
# The schema and decoding live apart from numpy (minild.readahead).
from .schema import RELOC_COLUMNS, SYMBOL_COLUMNS, Compact, Readable, decode, msgspec_message

# The shared vocabulary (minild.vocab) under the names the loader's callers use.
LOCAL, GLOBAL, WEAK = Bind.LOCAL, Bind.GLOBAL, Bind.WEAK
SECTION_TYPE = SymType.SECTION
MAX_ALIGN = 1 << 31   # section alignment, at most (fits ELF32's sh_addralign)
MAX_SIZE = 1 << 62    # sizes, at most (addresses stay in int64 arithmetic)


COLUMNS = {
    ("symbols", "section"): "<i4", ("symbols", "value"): "<u8", ("symbols", "size"): "<u8",
    ("symbols", "binding"): "u1", ("symbols", "type"): "u1",
    ("relocs", "section"): "<u4", ("relocs", "offset"): "<u8", ("relocs", "type"): "<u2",
    ("relocs", "symbol"): "<u4", ("relocs", "addend"): "<i8",
}


# --- what loading produces ---------------------------------------------------

class Object(msgspec.Struct):
    """Object is one decoded, validated input: per-object columns."""

    path: str
    arch: str
    sec_name: list[str]
    sec_kind: np.ndarray      # uint8 index into KINDS
    sec_align: np.ndarray     # int64
    sec_size: np.ndarray      # int64
    sec_data: list[bytes | None]
    sym_name: Names
    sym_sec: np.ndarray       # int32: index into this object's sections, UNDEF, ABS
    sym_value: np.ndarray     # int64
    sym_size: np.ndarray      # int64
    sym_bind: np.ndarray      # uint8
    sym_type: np.ndarray      # uint8
    rel_sec: np.ndarray       # int32
    rel_off: np.ndarray       # int32 where the object's sections are < 2 GiB, else int64
    rel_type: np.ndarray      # int16: index into the arch's howtos
    rel_sym: np.ndarray       # int32: index into this object's symbols
    rel_add: np.ndarray       # int32 where the file's column is 4 bytes or less, else int64
    # Imported symbols: (symbol index, module, name in the module); their
    # sym_sec is IMPORT.
    imports: list = msgspec.field(default_factory=list)
    # wasm: the object's function types ((params), (results)); per symbol
    # index, its type index (functions) and its export name.
    types: list = msgspec.field(default_factory=list)
    signatures: dict = msgspec.field(default_factory=dict)
    exports: dict = msgspec.field(default_factory=dict)
    globals: dict = msgspec.field(default_factory=dict)   # wasm: symbol -> (type, mutable)

    @classmethod
    def empty(cls, path: str, arch: str) -> "Object":
        """empty returns an object with nothing in it (the linker's own, "<internal>")."""
        z = lambda dt: np.zeros(0, dt)  # noqa: E731
        return cls(path, arch, [], z(np.uint8), z(np.int64), z(np.int64), [],
                   Names.from_list([]), z(np.int32), z(np.int64), z(np.int64), z(np.uint8),
                   z(np.uint8), z(np.int32), z(np.int64), z(np.int16), z(np.int32), z(np.int64))


def read_object(path: str, doc: Readable | Compact | None = None) -> Object:
    """read_object decodes and validates one object file (raises LinkError);
    given doc, the file as decoded already (minild.readahead), it only
    validates."""
    if doc is None:
        doc = decode(path)
    return _build(path, doc, False)


def _build(path: str, doc: Readable | Compact, bulk: bool) -> Object:
    try:
        a = archreg.lookup(doc.arch)
    except (KeyError, ModuleNotFoundError):
        raise fail(f"{path}: $.arch: unknown arch {doc.arch!r}; expected one of: "
                   + ", ".join(archreg.available()) + did_you_mean(doc.arch, archreg.available()))
    d = Diagnostics()
    if isinstance(doc, Readable):
        obj = _from_readable(path, doc, a, d)
    else:
        obj = _from_compact(path, doc, a, d, bulk)
    d.check()
    return obj


# Below this much work (bytes of input), a forked reader costs more than it saves.
# MINILD_FORK_LOAD_BYTES lowers it for the tests (docs/testing.md).
FORK_LOAD_BYTES = int(os.environ.get("MINILD_FORK_LOAD_BYTES", 16 << 20))
# The parent reads this many times a child's share: a child also copies its
# results into shared memory, so with too small a share the parent finishes
# first and waits for its child (measured: docs/performance.md, 'Figures
# behind the code').
PARENT_SHARE = 1.5
# A file decoded already (minild.readahead) costs about this part of a whole
# read: validation and hashing take about as long as msgspec's decoding.
DECODED_SHARE = 0.5

_ARRAYS = ("sec_kind", "sec_align", "sec_size", "sym_sec", "sym_value", "sym_size", "sym_bind",
           "sym_type", "rel_sec", "rel_off", "rel_type", "rel_sym", "rel_add")


def read_objects(paths: list[str], jobs: int, decoded: dict[int, Compact] | None = None,
                 tally=None, spent: list | None = None) -> list["Object | LinkError"]:
    """read_objects reads every object, in order: an Object or the LinkError
    that reading it raised. decoded holds documents a read-ahead decoded
    already, by position in paths: they are only validated.

    With jobs > 1 and enough input, forked children read shares of the files
    (msgspec holds the GIL: threads would take turns) and leave the results in
    an anonymous shared mapping, where the parent takes the columns and section
    bytes as views, without a copy or a pickle of the bulk; each child's small
    remainder (names of sections, array places, messages) is pickled into the
    mapping after them. A child that fails leaves its share to the parent, so
    the result never depends on -j. tally (bench.Tally), if given, counts
    each object read, in whichever process reads it. spent, if given, gets
    the stretches of shared memory that hold only the objects' columns
    (_unship): columns.columns releases them once it has copied them."""
    decoded = decoded or {}
    sizes = []
    for p in paths:
        try:
            sizes.append(os.stat(p).st_size)
        except OSError:
            sizes.append(0)   # read_object says what is wrong with it
    work = [int(z * DECODED_SHARE) if i in decoded else z for i, z in enumerate(sizes)]

    def read(i: int):
        o = _read_or_error(paths[i], decoded.get(i))
        if tally is not None:
            tally.done(i)
        return o

    if jobs <= 1 or len(paths) < 2 or sum(work) < FORK_LOAD_BYTES or not hasattr(os, "fork"):
        return [read(i) for i in range(len(paths))]
    # A child's region: three times its files. Section bytes shrink from their
    # base64, but narrow columns widen to int64; a share that does not fit is
    # read again by the parent. Untouched pages of the mapping cost nothing,
    # and where the system refuses the mapping, the parent reads everything.
    base = np.concatenate(([0], np.cumsum([3 * z + (1 << 16) for z in sizes])))
    try:
        shared = _shared_mapping(int(base[-1]))
    except (OSError, ValueError, OverflowError):
        return [read(i) for i in range(len(paths))]
    results: list = [None] * len(paths)

    def run(lo: int, hi: int) -> bool:
        objs = [read(i) for i in range(lo, hi)]
        for o in objs:
            if not isinstance(o, LinkError):
                o.sym_name.hashes()   # resolve's first step, done here in parallel
        if os.getpid() == parent:
            results[lo:hi] = objs
            return True
        return _ship(objs, shared, int(base[lo]), int(base[hi]))

    parent = os.getpid()
    cuts = workers.weighted_shares(work, min(jobs, len(paths)), PARENT_SHARE)
    redo = workers.fork_map(len(paths), jobs, run, cuts)
    for lo, hi in cuts[1:]:
        if lo < hi and (lo, hi) not in redo:
            results[lo:hi] = _unship(shared, int(base[lo]), spent)
    for lo, hi in redo:
        results[lo:hi] = [read(i) for i in range(lo, hi)]
    return results


def _shared_mapping(size: int) -> mmap.mmap:
    return shm.mapping(size)   # (a seam for the tests: a system that refuses it)


def _read_or_error(path: str, doc: Compact | None = None):
    """_read_or_error is a bulk read of one object (_from_compact) or its error."""
    try:
        return _build(path, doc if doc is not None else decode(path), True)
    except LinkError as e:
        return e


def _ship(objs: list, shared: mmap.mmap, lo: int, hi: int) -> bool:
    """_ship writes objs into shared[lo:hi] as one shm record: the arrays and
    section bytes as its bulk fields, the rest in its pickle. False if they
    do not fit."""
    fields: list = []

    def put(raw) -> int:
        fields.append(raw)
        return len(fields) - 1

    metas: list = []
    for o in objs:
        if isinstance(o, LinkError):
            metas.append(o)
            continue
        arrays = {}
        for f in _ARRAYS:
            a = np.ascontiguousarray(getattr(o, f))
            arrays[f] = (put(a), a.dtype.str)
        n = o.sym_name
        names = (put(n.blob), *((put(np.ascontiguousarray(x)), x.dtype.str)
                                for x in (n.start, n.length, n.hashes())))
        metas.append([o.path, o.arch, o.sec_name, arrays, names, None, o.imports,
                      (o.types, o.signatures, o.exports, o.globals)])
    # Section bytes after every column: the columns are one stretch of the
    # record, which the parent releases once it has joined them
    # (columns.columns), while the bytes are read until the output is written.
    for o, m in zip(objs, metas):
        if not isinstance(o, LinkError):
            m[5] = shm.put_bytes(o.sec_data, put)
    return shm.pack(shared, lo, hi, metas, fields) is not None


def _unship(shared: mmap.mmap, lo: int, spent: list | None = None) -> list:
    """_unship rebuilds the objects a child shipped to shared[lo:]: arrays and
    section bytes are views of the mapping. The stretch of the record that
    holds the columns goes on spent, as (mapping, start, end), to be
    released once they are joined."""
    metas, field, at = shm.unpack_placed(shared, lo)
    bytes_from = [at[m[5][1]] for m in metas if not isinstance(m, LinkError)]
    if spent is not None and bytes_from:
        spent.append((shared, lo, min(bytes_from)))
    view = lambda k, dtype: np.frombuffer(field[k], dtype)  # noqa: E731
    out = []
    for m in metas:
        if isinstance(m, LinkError):
            out.append(m)
            continue
        path, arch, sec_name, arrays, (blob, start, length, hashes), data, imports, w = m
        cols = {f: view(*a) for f, a in arrays.items()}
        # The names' text too is a view: Names.concat copies it into the
        # link's one blob (a copy here first would hold every name twice at
        # once: C++ names are most of a large link's bytes).
        names = Names(field[blob], view(*start), view(*length), view(*hashes))
        sec_data = shm.get_bytes(data, field)
        out.append(Object(path=path, arch=arch, sec_name=sec_name, sec_data=sec_data,
                          sym_name=names, imports=imports, types=w[0], signatures=w[1],
                          exports=w[2], globals=w[3], **cols))
    return out


def _check_sections(path, secs, d: Diagnostics, data_of) -> tuple[list, list, np.ndarray]:
    """_check_sections validates what both encodings share; returns sizes, data and
    alignments (bad values replaced, so that building the columns cannot fail
    before the errors are reported)."""
    if data_of is _raw and len(secs) > 8:
        # A compact object with -ffunction-sections holds a section per function
        # (100k+ in a link): check whole lists at once, and leave the loop below,
        # which names each problem, to an object that has one.
        fast = _sections_plausible(secs)
        if fast is not None:
            return fast
    sizes, datas, aligns = [], [], []
    seen: dict[str, int] = {}
    for i, s in enumerate(secs):
        where = f"{path}: $.sections[{i}]"
        if s.name in seen:
            d.error(f"{where}.name: duplicate section name {s.name!r} "
                    f"(also $.sections[{seen[s.name]}])")
        seen.setdefault(s.name, i)
        if not 1 <= s.align <= MAX_ALIGN or s.align & (s.align - 1):
            d.error(f"{where}.align: expected a power of two from 1 to {MAX_ALIGN:#x}, "
                    f"got {s.align}")
            aligns.append(1)
        else:
            aligns.append(s.align)
        if s.kind == "bss":
            if s.data is not None:
                d.error(f"{where}.data: a bss section has no data; give its size")
            if s.size is None or not 0 <= s.size < MAX_SIZE:
                d.error(f"{where}.size: expected the size of the bss section, from 0 to "
                        f"{MAX_SIZE - 1:#x}")
            sizes.append(s.size if s.size is not None and 0 <= s.size < MAX_SIZE else 0)
            datas.append(None)
        else:
            if s.size is not None:
                d.error(f"{where}.size: only bss sections have a size; give data instead")
            if s.data is None:
                d.error(f"{where}.data: expected the section's bytes")
                raw = b""
            else:
                raw = data_of(s.data, f"{where}.data", d)
            sizes.append(len(raw))
            datas.append(raw)
    return sizes, datas, np.array(aligns, np.int64)


def _raw(raw, where: str, d: Diagnostics):
    """_raw is the compact encoding's section data: msgspec decoded it (base64)."""
    return raw


def _sections_plausible(secs) -> tuple[list, list, np.ndarray] | None:
    """_sections_plausible is _check_sections' result for compact sections that
    have no problem, found with passes in C over whole lists (map and
    attrgetter: no Python step per section); None at any doubt (then the loop
    finds and names the problem)."""
    names = list(map(_NAME, secs))
    if len(set(names)) != len(names):
        return None
    try:
        aligns = np.fromiter(map(_ALIGN, secs), np.int64, len(secs))
    except OverflowError:
        return None
    if aligns.min() < 1 or aligns.max() > MAX_ALIGN or (aligns & (aligns - 1)).any():
        return None
    datas = list(map(_DATA, secs))
    sizes = list(map(_SIZE, secs))
    bss = np.flatnonzero(np.fromiter(map("bss".__eq__, map(_KIND, secs)), bool, len(secs)))
    bss = bss.tolist()
    # Every bss section has a size and no data (checked one by one: there are
    # few); then every other one has data and no size.
    for i in bss:
        if datas[i] is not None or sizes[i] is None or not 0 <= sizes[i] < MAX_SIZE:
            return None
    # (counted by identity: list.count(None) compares each section's bytes with None)
    if sum(map(operator.is_, datas, repeat(None))) != len(bss) \
            or sum(map(operator.is_, sizes, repeat(None))) != len(secs) - len(bss):
        return None
    if not bss:
        return list(map(len, datas)), datas, aligns
    for i in bss:
        datas[i] = b""
    lens = list(map(len, datas))
    for i in bss:
        lens[i], datas[i] = sizes[i], None
    return lens, datas, aligns


_NAME, _ALIGN, _DATA, _SIZE, _KIND = map(operator.attrgetter, ("name", "align", "data", "size",
                                                             "kind"))


def _hex(text: str, where: str, d: Diagnostics) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        d.error(f"{where}: bad hex: {hex_problem(text)}")
        # The link fails; bytes of about the meant size spare the relocations
        # in this section errors of their own ("outside section (size 0x0)").
        digits = "".join(c if c in HEXDIGITS else "0" for c in text if not c.isspace())
        return bytes(len(digits) // 2 + len(digits) % 2)


HEXDIGITS = frozenset("0123456789abcdefABCDEF")


def hex_problem(text: str) -> str:
    """hex_problem says what is wrong with a section's hex data (bytes.fromhex
    refused it), with the position in the data string (from 0)."""
    digits = 0
    for i, c in enumerate(text):
        if c in HEXDIGITS:
            digits += 1
        elif c.isspace():
            if digits % 2:
                return (f"a space inside a byte at character {i} (after {digits} hex digits); "
                        f"each byte is two hex digits")
        else:
            return f"{c!r} at character {i} is not a hex digit (0-9, a-f) or a space"
    return (f"{digits} hex digits, an odd number: each byte is two hex digits "
            f"(the last byte, at character {len(text.rstrip()) - 1}, has one)")


def _from_readable(path: str, doc: Readable, a: archreg.Arch, d: Diagnostics) -> Object:
    sizes, datas, aligns = _check_sections(path, doc.sections, d, _hex)
    secidx = {s.name: i for i, s in enumerate(doc.sections)}

    names, ssec, sval, ssize, sbind, stype = [], [], [], [], [], []
    imports = []
    signatures: dict[int, int] = {}
    exports: dict[int, str] = {}
    globals_: dict[int, tuple[str, bool]] = {}
    byname: dict[str, int] = {}
    for i, s in enumerate(doc.symbols):
        where = f"{path}: $.symbols[{i}]"
        if "\0" in s.name:
            d.error(f"{where}.name: a symbol name may not contain NUL")
        if s.import_ is not None:
            si = IMPORT
            imp = _check_import(where, s.name, s.section, s.binding, s.import_.module,
                                s.import_.name, d)
            if imp is not None:
                imports.append((i, *imp))
        elif s.section is None:
            si = UNDEF
            if s.binding == "local":
                d.error(f"{where}: local symbol {s.name!r} must be defined in a section")
        elif s.section == "*ABS*":
            si = ABS
        elif s.section in secidx:
            si = secidx[s.section]
            if not 0 <= s.value <= sizes[si]:
                d.error(f"{where}.value: symbol {s.name!r} at {s.value:#x} is outside "
                        f"section {s.section} (size {sizes[si]:#x})")
        else:
            d.error(f"{where}.section: no section named {s.section!r} in this object")
            si = UNDEF
        if s.name in byname:
            d.error(f"{where}.name: symbol {s.name!r} is already declared at "
                    f"$.symbols[{byname[s.name]}]")
        byname.setdefault(s.name, i)
        if not 0 <= s.size < MAX_SIZE:
            d.error(f"{where}.size: expected a size from 0 to {MAX_SIZE - 1:#x}, got {s.size}")
        if not -(1 << 63) <= s.value < 1 << 64:
            d.error(f"{where}.value: {s.value} does not fit in 64 bits")
        if s.signature is not None:
            if not 0 <= s.signature < len(doc.types):
                d.error(f"{where}.signature: {s.signature} indexes no entry of $.types "
                        f"({len(doc.types)} types)")
            else:
                signatures[i] = s.signature
        if s.global_ is not None:
            if s.section not in (None, "*ABS*") or s.binding == "local" and s.section is None:
                d.error(f"{where}.global: a wasm global is in no section: give \"*ABS*\" and "
                        "its initial value in value (or no section, for one defined elsewhere)")
            else:
                globals_[i] = (s.global_.type, s.global_.mutable)
        if s.export is not None:
            if not s.export or "\0" in s.export or si < 0:
                d.error(f"{where}.export: expected a non-empty name on a defined symbol")
            else:
                exports[i] = s.export
        names.append(s.name)
        ssec.append(si)
        # Negative values (an absolute `.set x, -16`) are kept as their 64-bit pattern.
        sval.append(s.value % (1 << 64))
        ssize.append(s.size if 0 <= s.size < MAX_SIZE else 0)
        sbind.append(BINDINGS.index(s.binding))
        stype.append(TYPES.index(s.type))

    rsec, roff, rtype, rsym, radd = [], [], [], [], []
    for i, s in enumerate(doc.sections):
        if s.relocs and s.kind == "bss":
            d.error(f"{path}: $.sections[{i}].relocs: a bss section has no bytes to relocate")
            continue
        for j, r in enumerate(s.relocs):
            where = f"{path}: $.sections[{i}].relocs[{j}]"
            t = a.index.get(r.type)
            if t is None:
                d.error(f"{where}.type: unknown relocation type {r.type!r} for arch {a.name}"
                        + did_you_mean(r.type, a.index))
                continue
            width = a.howtos[t].size
            if r.offset < 0 or r.offset + width > sizes[i]:
                d.error(f"{where}.offset: relocation {r.type} at {r.offset:#x} (size {width}) "
                        f"is outside section {s.name} (size {sizes[i]:#x})")
                continue
            if not -(1 << 63) <= r.addend < 1 << 63:
                d.error(f"{where}.addend: {r.addend} does not fit in 64 bits")
                continue
            if "\0" in r.symbol:
                d.error(f"{where}.symbol: a symbol name may not contain NUL")
                continue
            if not r.symbol and a.howtos[t].calc is not reloc_addend:
                d.error(f"{where}.symbol: relocation {r.type} needs a symbol (only a "
                        "relocation that carries its value in its addend names none)")
                continue
            k = byname.get(r.symbol)
            if k is None:
                # A name the object does not declare is a reference to a global
                # defined elsewhere: hand-written objects need not list them.
                # No name at all: the local absolute 0 (wasm's type indexes).
                k = byname[r.symbol] = len(names)
                names.append(r.symbol)
                ssec.append(UNDEF if r.symbol else ABS)
                sval.append(0)
                ssize.append(0)
                sbind.append(GLOBAL if r.symbol else LOCAL)
                stype.append(0)
            rsec.append(i)
            roff.append(r.offset)
            rtype.append(t)
            rsym.append(k)
            radd.append(r.addend)

    return Object(
        path=path, arch=a.name,
        sec_name=list(map(_NAME, doc.sections)),
        sec_kind=np.array([KIND_ID[s.kind] for s in doc.sections], np.uint8),
        sec_align=aligns,
        sec_size=np.array(sizes, np.int64), sec_data=datas,
        sym_name=Names.from_list(names), sym_sec=np.array(ssec, np.int32),
        sym_value=np.array(sval, np.uint64).astype(np.int64) if sval else np.zeros(0, np.int64),
        sym_size=np.array(ssize, np.int64),
        sym_bind=np.array(sbind, np.uint8), sym_type=np.array(stype, np.uint8),
        rel_sec=np.array(rsec, np.int32), rel_off=np.array(roff, np.int64),
        rel_type=np.array(rtype, np.int16), rel_sym=np.array(rsym, np.int32),
        rel_add=np.array(radd, np.int64), imports=imports,
        types=[(tuple(t.params), tuple(t.results)) for t in doc.types],
        signatures=signatures, exports=exports, globals=globals_)


def _check_import(where: str, name: str, section, binding: str, module: str,
                  export: str | None, d: Diagnostics) -> tuple[str, str] | None:
    """_check_import checks one imported symbol (readable: section is its
    section field; compact: its section index) and returns (module, the name
    the module exports it by), or None after an error."""
    ok = True
    if section is not None and section != UNDEF:
        d.error(f"{where}: imported symbol {name!r} has a section; an import is defined "
                "outside the program (leave out its section)")
        ok = False
    if binding in ("local", LOCAL):
        d.error(f"{where}: imported symbol {name!r} is local; an import is global")
        ok = False
    for field, text in (("module", module), ("name", export)):
        if text is not None and (not text or "\0" in text):
            d.error(f"{where}.import.{field}: expected a non-empty name without NUL, "
                    f"got {text!r}")
            ok = False
    return (module, export or name) if ok else None


def _column(path: str, group: str, name: str, raw: bytes, count: int, d: Diagnostics) -> np.ndarray:
    """_column reads one packed column, as a view of raw. Its elements may be
    narrower than the column's type (a writer picks the narrowest width that
    holds its values): the width is the byte length over count, 1, 2, 4 or 8
    up to the type's own. _wide gives the column's own type."""
    dt = np.dtype(COLUMNS[(group, name)])
    if count < 0:
        if name == "section":   # said once per group (its first column)
            d.error(f"{path}: $.{group}.count: expected the number of {group}, 0 or more, "
                    f"got {count}")
        return np.zeros(0, dt)
    width, rest = divmod(len(raw), count) if count else (dt.itemsize, len(raw))
    if rest or width not in _WIDTHS or width > dt.itemsize:
        widths = [w for w in _WIDTHS if w <= dt.itemsize]
        d.error(f"{path}: $.{group}.{name}: expected {count} values of "
                + (f"{widths[0]}" if len(widths) == 1 else
                   ", ".join(map(str, widths[:-1])) + f" or {widths[-1]}")
                + f" bytes each ({', '.join(str(count * w) for w in widths)} bytes), "
                f"got {len(raw)} bytes")
        return np.zeros(0, dt)  # never used: the caller checks before it reads columns
    return np.frombuffer(raw, _NARROW_TYPES[dt.kind, width])


def _wide(col: np.ndarray, group: str, name: str) -> np.ndarray:
    """_wide sign- or zero-extends a column read by _column to its type (or,
    for a few, to a narrower one where the file's width allows: NARROW)."""
    dt = np.dtype(COLUMNS[(group, name)])
    narrow = NARROW.get((group, name))
    if narrow is not None and col.dtype.itemsize <= narrow.itemsize:
        return col.astype(narrow)
    return col if col.dtype.itemsize == dt.itemsize else col.astype(dt)


# Columns kept narrower than their type when the file's width allows it: the
# link-wide column is int32 unless some object needs int64 (loadlib.columns),
# half the memory for millions of addends.
NARROW = {("relocs", "addend"): np.dtype(np.int32)}


_WIDTHS = (1, 2, 4, 8)
_NARROW_TYPES = {(k, w): np.dtype(f"{k}{w}").newbyteorder("<") for k in "iu" for w in _WIDTHS}


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _names(path: str, raw: bytes, d: Diagnostics) -> Names | None:
    """_names reads $.symbols.name: from its text when it is plain, else by
    decoding it (which also finds what is wrong with it)."""
    names = Names.from_json_array(raw)
    if names is not None:
        return names
    try:
        lst = msgspec.json.decode(raw, type=list[str])
    except msgspec.ValidationError as e:
        m = msgspec_message(e)
        d.error(f"{path}: $.symbols.name{m[1:] if m.startswith('$') else ': ' + m}")
        return None
    for i, n in enumerate(lst):
        if "\0" in n:
            d.error(f"{path}: $.symbols.name[{i}]: a symbol name may not contain NUL")
            break
    return Names.from_list(lst)


def _from_compact(path: str, doc: Compact, a: archreg.Arch, d: Diagnostics,
                  bulk: bool = False) -> Object:
    """_from_compact validates a compact document and makes its Object.

    bulk is a link's read (read_objects): the columns stay the file's narrow
    views, which loadlib widens as it joins them; and where minima and maxima
    show every index in range, the two checks that look up each row's
    section (a symbol's value inside its section, a relocation's bytes
    inside a section with bytes) are left to loadlib, which makes them once
    for the whole link (bounds_ok). Any doubt, and every non-bulk read, runs
    every check here, with its message."""
    sizes, datas, aligns = _check_sections(path, doc.sections, d, _raw)
    sec_size = np.array(sizes, np.int64)
    kinds = np.fromiter(map(KIND_ID.__getitem__, map(_KIND, doc.sections)), np.uint8,
                        len(doc.sections))

    sy, rl = doc.symbols, doc.relocs
    ns, nr = sy.count, rl.count
    names = _names(path, sy.name, d)
    if names is not None and len(names) != ns and ns >= 0:
        d.error(f"{path}: $.symbols.name: expected {ns} names, got {len(names)}")
    sym = [_column(path, "symbols", n, getattr(sy, n), ns, d) for n in SYMBOL_COLUMNS]
    if d:
        d.check()
    rel_columns = lambda d: [_column(path, "relocs", n, getattr(rl, n), nr, d)  # noqa: E731
                             for n in RELOC_COLUMNS]
    if bulk:
        scratch = Diagnostics()   # what is wrong, if anything, the full checks below say
        rel = rel_columns(scratch)
        table = [a.index.get(name) for name in rl.types]
        if not scratch and None not in table and _symbols_plausible(len(sizes), *sym) \
                and _relocs_plausible(len(sizes), ns, len(table), max(sizes, default=0), *rel):
            # Narrow views for loadlib.columns to widen; 8-byte unsigned
            # values are int64 bit patterns, as in the wide columns.
            as64 = lambda c: c.view(np.int64) if c.dtype.itemsize == 8 else c  # noqa: E731
            ssec, sval, ssize, sbind, stype = sym
            rsec, roff, rtyp, rsym, radd = rel
            imports, ssec = _compact_imports(path, sy, names, ssec, sbind, d)
            wasm = _compact_wasm(path, doc, d)
            d.check()
            return Object(path=path, arch=a.name, sec_name=list(map(_NAME, doc.sections)),
                          sec_kind=kinds, sec_align=aligns, sec_size=sec_size, sec_data=datas,
                          sym_name=names, sym_sec=ssec, sym_value=as64(sval),
                          sym_size=as64(ssize), sym_bind=sbind, sym_type=stype,
                          rel_sec=rsec, rel_off=roff,
                          rel_type=np.array(table, np.int16)[rtyp] if nr else
                          np.zeros(0, np.int16), rel_sym=rsym, rel_add=radd, imports=imports,
                          **wasm)

    ssec, sval, ssize, sbind, stype = [_wide(c, "symbols", n) for c, n in zip(sym, SYMBOL_COLUMNS)]
    _check_symbols(path, doc, names, sizes, sec_size, ssec, sval, ssize, sbind, stype, d)
    rel = rel_columns(d)
    table = []
    for k, name in enumerate(rl.types):
        t = a.index.get(name)
        if t is None:
            d.error(f"{path}: $.relocs.types[{k}]: unknown relocation type {name!r} "
                    f"for arch {a.name}" + did_you_mean(name, a.index))
            t = 0
        table.append(t)
    d.check()
    rsec, roff, rtyp, rsym, radd = [_wide(c, "relocs", n) for c, n in zip(rel, RELOC_COLUMNS)]
    gtype = _check_relocs(path, doc, a, np.array(table, np.int16), sizes, sec_size, kinds, ns,
                          rsec, roff, rtyp, rsym, d)
    imports, ssec = _compact_imports(path, sy, names, ssec, sbind, d)
    wasm = _compact_wasm(path, doc, d)
    d.check()
    return Object(
        path=path, arch=a.name, sec_name=list(map(_NAME, doc.sections)),
        sec_kind=kinds, sec_align=aligns,
        sec_size=sec_size, sec_data=datas,
        sym_name=names, sym_sec=ssec.astype(np.int32), sym_value=sval.view(np.int64),
        sym_size=ssize.astype(np.int64), sym_bind=sbind, sym_type=stype,
        # Offsets are inside their sections (checked above): int32 unless a
        # section is 2 GiB or more.
        rel_sec=rsec.astype(np.int32),
        rel_off=roff.astype(np.int32 if not len(sizes) or max(sizes) < 1 << 31 else np.int64),
        rel_type=gtype, rel_sym=rsym.astype(np.int32), rel_add=radd, imports=imports, **wasm)


def _compact_wasm(path: str, doc, d: Diagnostics) -> dict:
    """_compact_wasm checks the wasm parts of a compact document (types,
    $.symbols.signatures and .exports) and returns them as Object fields."""
    sy = doc.symbols
    if not (doc.types or sy.signatures or sy.exports or sy.globals):
        return {}
    sigs, exps, globs = {}, {}, {}
    for j, (k, vt, mut) in enumerate(sy.globals):
        if not 0 <= k < sy.count:
            d.error(f"{path}: $.symbols.globals[{j}]: symbol {k} is not in [0, {sy.count - 1}]")
        else:
            globs[k] = (vt, bool(mut))
    for j, (k, t) in enumerate(sy.signatures):
        if not 0 <= k < sy.count or not 0 <= t < len(doc.types):
            d.error(f"{path}: $.symbols.signatures[{j}]: symbol {k} or type {t} out of range "
                    f"({sy.count} symbols, {len(doc.types)} types)")
        else:
            sigs[k] = t
    for j, (k, name) in enumerate(sy.exports):
        if not 0 <= k < sy.count or not name or "\0" in name:
            d.error(f"{path}: $.symbols.exports[{j}]: expected a symbol index below {sy.count} "
                    "and a non-empty name")
        else:
            exps[k] = name
    return {"types": [(tuple(t.params), tuple(t.results)) for t in doc.types],
            "signatures": sigs, "exports": exps, "globals": globs}


def _compact_imports(path: str, sy, names, ssec: np.ndarray, sbind: np.ndarray,
                     d: Diagnostics) -> tuple[list, np.ndarray]:
    """_compact_imports checks $.symbols.imports and returns the object's
    imports and the section column with IMPORT at each imported symbol (a
    copy: the column may be a view of the file)."""
    if not sy.imports:
        return [], ssec
    imports = []
    ssec = ssec.astype(np.int32)
    seen: set[int] = set()
    for j, imp in enumerate(sy.imports):
        where = f"{path}: $.symbols.imports[{j}]"
        k = imp.symbol
        if not 0 <= k < sy.count:
            d.error(f"{where}.symbol: index {k} is not in [0, {sy.count - 1}]")
            continue
        if k in seen:
            d.error(f"{where}.symbol: symbol {names[k]!r} is imported twice")
            continue
        seen.add(k)
        got = _check_import(where, names[k], int(ssec[k]), int(sbind[k]), imp.module, imp.name, d)
        if got is not None:
            imports.append((k, *got))
            ssec[k] = IMPORT
    return imports, ssec


def _symbols_plausible(nsec: int, ssec, sval, ssize, sbind, stype) -> bool:
    """_symbols_plausible: every section index, binding and type in range, no
    undefined local (minima and maxima: a handful of passes over narrow
    columns)."""
    if not len(ssec):
        return True
    return (int(ssec.min()) >= ABS and int(ssec.max()) < nsec and int(sbind.max()) <= WEAK
            and int(stype.max()) < len(TYPES)
            and not ((ssec == UNDEF) & (sbind == LOCAL)).any())


def _relocs_plausible(nsec: int, nsym: int, ntypes: int, maxsize: int,
                      rsec, roff, rtyp, rsym, radd) -> bool:
    """_relocs_plausible: every section, type and symbol index in range, and
    no offset past the largest section (so that it fits the link's offset
    column)."""
    if not len(rsec):
        return True
    return (int(rsec.max()) < nsec and int(rtyp.max()) < ntypes and int(rsym.max()) < nsym
            and int(roff.max()) <= maxsize)


def _check_symbols(path, doc, names, sizes, sec_size, ssec, sval, ssize, sbind, stype, d):
    nsec = len(sizes)
    bad = (ssec < ABS) | (ssec >= nsec)
    if bad.any():
        i = _first(bad)
        d.error(f"{path}: $.symbols.section[{i}]: symbol {names[i]!r}: section index "
                f"{ssec[i]} is not in [-2, {nsec - 1}]")
    else:
        out = _symbols_outside(sec_size, ssec, sval)
        if out.any():
            i = _first(out)
            d.error(f"{path}: $.symbols.value[{i}]: symbol {names[i]!r} at {int(sval[i]):#x} "
                    f"is outside section {doc.sections[ssec[i]].name} "
                    f"(size {sizes[ssec[i]]:#x})")
    if (sbind > WEAK).any():
        i = _first(sbind > WEAK)
        d.error(f"{path}: $.symbols.binding[{i}]: expected 0 (local), 1 (global) or 2 (weak), "
                f"got {sbind[i]}")
    if (stype >= len(TYPES)).any():
        i = _first(stype >= len(TYPES))
        d.error(f"{path}: $.symbols.type[{i}]: expected 0..3, got {stype[i]}")
    lu = (sbind == LOCAL) & (ssec == UNDEF)
    if lu.any():
        i = _first(lu)
        d.error(f"{path}: $.symbols.section[{i}]: local symbol {names[i]!r} must be "
                "defined in a section")


def _check_relocs(path, doc, a, table, sizes, sec_size, kinds, ns, rsec, roff, rtyp, rsym, d
                  ) -> np.ndarray:
    """_check_relocs checks every relocation; it returns their types (the
    arch's howto indices)."""
    nsec, nr = len(sizes), len(rsec)
    if (rtyp >= len(table)).any():
        i = _first(rtyp >= len(table))
        d.error(f"{path}: $.relocs.type[{i}]: {rtyp[i]} indexes no entry of $.relocs.types")
        d.check()
    if (rsec >= nsec).any():
        i = _first(rsec >= nsec)
        d.error(f"{path}: $.relocs.section[{i}]: no section {rsec[i]} (object has {nsec})")
        d.check()
    if (rsym >= ns).any():
        i = _first(rsym >= ns)
        d.error(f"{path}: $.relocs.symbol[{i}]: no symbol {rsym[i]} (object has {ns})")
    gtype = table[rtyp] if nr else np.zeros(0, np.int16)
    width = a.widths[table][rtyp] if nr else np.zeros(0, np.int64)
    rsec32 = rsec.astype(np.int32)
    if (kinds[rsec32] == KIND_ID["bss"]).any():
        i = _first(kinds[rsec32] == KIND_ID["bss"])
        d.error(f"{path}: $.relocs.section[{i}]: section {doc.sections[rsec32[i]].name} is bss "
                "and has no bytes to relocate")
    out = (roff > (1 << 62)) | (roff.astype(np.int64) + width > sec_size[rsec32])
    if out.any():
        i = _first(out)
        d.error(f"{path}: $.relocs.offset[{i}]: relocation {a.howtos[gtype[i]].name} at "
                f"{int(roff[i]):#x} (size {width[i]}) is outside section "
                f"{doc.sections[rsec32[i]].name} (size {sizes[rsec32[i]]:#x})")
    return gtype


def _symbols_outside(sec_size: np.ndarray, ssec: np.ndarray, sval: np.ndarray) -> np.ndarray:
    """_symbols_outside marks defined symbols whose value (unsigned) is past
    the end of their section; undefined, imported and absolute ones never are."""
    limit = np.concatenate((sec_size.astype(np.uint64), [np.iinfo(np.uint64).max] * 3))
    value = sval.view(np.uint64) if sval.dtype.itemsize == 8 else sval
    return value > limit[ssec]


def bounds_ok(sec_size: np.ndarray, sec_kind: np.ndarray, widths: np.ndarray,
              sym_sec: np.ndarray, sym_value: np.ndarray,
              rel_sec: np.ndarray, rel_off: np.ndarray, rel_type: np.ndarray) -> bool:
    """bounds_ok makes, for a whole link's columns, the checks a bulk read
    left (_from_compact): symbol values inside their sections, relocations'
    bytes inside sections that have bytes. False means some object breaks
    one; reading it on its own says which and where. It goes a chunk of
    rows at a time, so that its temporaries are the same few pages over and
    over (fresh pages are what a large link's phases mostly pay for)."""
    for lo in range(0, len(sym_sec), BOUNDS_CHUNK):
        hi = lo + BOUNDS_CHUNK
        if _symbols_outside(sec_size, sym_sec[lo:hi], sym_value[lo:hi]).any():
            return False
    # A bss section's limit is -1: any relocation in it is out. Offsets are
    # int32 where every section is below 2 GiB, and so is this arithmetic
    # where offset + width cannot wrap.
    dt = rel_off.dtype if sec_size.max(initial=0) < (1 << 31) - 16 else np.dtype(np.int64)
    limit = np.where(sec_kind == KIND_ID["bss"], -1, sec_size).astype(dt)
    widths = widths.astype(dt)
    for lo in range(0, len(rel_sec), BOUNDS_CHUNK):
        hi = lo + BOUNDS_CHUNK
        end = widths[rel_type[lo:hi]]
        end += rel_off[lo:hi]
        if (end > limit[rel_sec[lo:hi]]).any():
            return False
    return True


BOUNDS_CHUNK = 1 << 16
