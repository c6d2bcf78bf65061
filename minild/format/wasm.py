"""wasm: WebAssembly modules (wasm32), as wasm-ld writes them for WASI.

wasm is the odd arch out (Go's wasm Asmb/Asmb2/AssignAddress; wasm-ld after
WebAssembly's tool conventions): functions are numbered, data lives in a
linear memory. The module:

  type      every distinct signature of the link, in first-seen order
  import    the imported functions the program uses (their indices come first)
  function  each defined function's type (one text section per function)
  table     funcref, slot 0 null, then every function whose address is taken
  memory    one, exported as "memory": 1024 (the global base, -T) .. data,
            bss, then the stack (--stack-size, 64 KiB): __heap_base is its top;
            or, with --stack-first, the stack at 0 and the data after it
  global    __stack_pointer (mutable i32, after any imported globals) = the top of
            the stack, then the globals objects define (absolute symbols with a
            "global" type: their value is the initial value, their address the index)
  export    the entry (-e, _start), memory, and every symbol an object exports
  elem      the table's contents
  code      the function bodies, each after its size (a ULEB128)
  data      .rodata and .data as active segments at their addresses
  name      the functions' names (not with -s)

The layout phases do the work: address lays the module out (every section
before the code is built then, and each body's and each data byte's place
in the file is fixed), assign gives each function its index as its address,
asmb writes the bodies and data with their relocations applied (the buffered
path: a module is not mapped), and asmb2 writes the rest around them.
"""

from __future__ import annotations

import msgspec
import numpy as np

from ..errors import Diagnostics, fail, usage
from ..vocab import ABS, Kind, SegmentPlan, align_up
from .leb import sleb, uleb
from . import Format, rules

SEGMENTS = (
    SegmentPlan("code", "rx", ((Kind.TEXT, ".text"),)),
    SegmentPlan("memory", "rw", ((Kind.RODATA, ".rodata"), (Kind.DATA, ".data"),
                                 (Kind.BSS, ".bss"))),
)
PAGE = 1 << 16
VALTYPE = {"i32": 0x7F, "i64": 0x7E, "f32": 0x7D, "f64": 0x7C}
GLOBAL_BASE = 1024          # wasm-ld's default --global-base
STACK_SIZE = 1 << 16        # wasm-ld's default stack size


def name(s: str) -> bytes:
    b = s.encode()
    return uleb(len(b)) + b


def section(sid: int, body: bytes) -> bytes:
    return bytes([sid]) + uleb(len(body)) + body


def vec(items: list[bytes]) -> bytes:
    return uleb(len(items)) + b"".join(items)


class State(msgspec.Struct):
    """State is wasm's private part of the link (Link.fmt)."""

    funcs: list = msgspec.field(default_factory=list)     # defined: (text section, type)
    imported: list = msgspec.field(default_factory=list)  # (import entry, module, name, type)
    gimported: list = msgspec.field(default_factory=list)  # (entry, module, name, type, mutable)
    gdefined: list = msgspec.field(default_factory=list)   # (entry, type, mutable, initial value)
    sp_index: int = 0            # __stack_pointer's global index
    head: bytes = b""            # the module up to the code section
    code_at: int = 0             # where the code section starts
    code_head: bytes = b""       # its id, size and count
    sizes: list = msgspec.field(default_factory=list)     # per function: (prefix at, size)
    data_at: int = 0
    data_head: bytes = b""
    segs: list = msgspec.field(default_factory=list)      # per segment: (header at, header)
    end: int = 0
    table: list = msgspec.field(default_factory=list)     # function indices in slots 1..
    stack_top: int = 0
    data_end: int = 0


def defaults(arch) -> tuple[int, int]:
    return GLOBAL_BASE, 16


# --- gensections: functions, their types, the imports used -------------------

def gensections(ctx) -> None:
    """gensections finds each defined function's type (its symbol's
    signature), the imported functions the program uses, and checks that
    every reference to a function agrees with its definition's signature."""
    st = ctx.fmt = State()
    d = Diagnostics()
    sec, sig = ctx.sym_sec, ctx.signatures
    fn_type: dict[int, int] = {}
    for i, t in sig.items():
        s = int(sec[i])
        if s >= 0 and ctx.sec_kind[s] == Kind.TEXT and int(ctx.sym_value[i]) == 0:
            fn_type.setdefault(s, t)
    for s in np.flatnonzero(ctx.sec_kind == Kind.TEXT).tolist():
        if s not in fn_type:
            d.error(f"{ctx.objects[ctx.sec_obj[s]].path}: section {ctx.sec_name[s]}: a wasm "
                    "function needs a symbol at its start with a signature")
        else:
            st.funcs.append((s, fn_type[s]))
    # References and definitions must agree on the signature.
    res = ctx.sym_res
    for i, t in sorted(sig.items()):
        j = int(res[i])
        if j >= 0 and j != i and j in sig and sig[j] != t:
            d.error(f"function {ctx.names[i]}: signature mismatch: "
                    f"{_show(ctx.types[t])} in {ctx.objects[ctx.sym_obj[i]].path}, "
                    f"{_show(ctx.types[sig[j]])} in {ctx.objects[ctx.sym_obj[j]].path}")
    _check_leb_places(ctx, d)
    glob = ctx.wasm_globals
    for i in sorted(ctx.imports_used):
        module, field = ctx.imports[i]
        if i in glob:
            st.gimported.append((i, module, field, *glob[i]))
        elif i not in sig:
            d.error(f"imported function {ctx.names[i]} ({module}.{field}) has no signature")
        else:
            st.imported.append((i, module, field, sig[i]))
    # Globals: the winning definitions (absolute symbols: their value is the
    # initial value), and references that must agree with them.
    for i, (vt, mut) in sorted(glob.items()):
        j = int(res[i])
        if j == i and int(sec[i]) == ABS:
            st.gdefined.append((i, vt, mut, int(ctx.sym_value[i])))
        elif j >= 0 and j != i and j in glob and glob[j] != (vt, mut):
            d.error(f"global {ctx.names[i]}: type mismatch: {_showg(vt, mut)} in "
                    f"{ctx.objects[ctx.sym_obj[i]].path}, {_showg(*glob[j])} in "
                    f"{ctx.objects[ctx.sym_obj[j]].path}")
    st.sp_index = len(st.gimported)
    d.check()


def _check_leb_places(ctx, d: Diagnostics) -> None:
    """_check_leb_places: a LEB relocation's place must hold a 5-byte padded
    LEB128 (four bytes with the continuation bit, a fifth without), or the
    rewritten number would not end where the instruction's next byte starts."""
    r, a = ctx.relocs, ctx.arch
    leb = [i for i, h in enumerate(a.howtos) if h.name.endswith("LEB")]
    for k in np.flatnonzero(np.isin(r.type, leb)).tolist():
        data = ctx.sec_data[int(r.sec[k])]
        off = int(r.off[k])
        b = bytes(data[off:off + 5]) if data is not None else b""
        if len(b) < 5 or any(x < 0x80 for x in b[:4]) or b[4] >= 0x80:
            d.error(f"{ctx.reloc_site(k)}: relocation {a.howtos[int(r.type[k])].name}: the place "
                    f"holds {b.hex(' ')}, not a 5-byte padded LEB128 (e.g. 80 80 80 80 00)",
                    f"references {ctx.reloc_target(k)}")


def _showg(vt: str, mut: bool) -> str:
    return f"{'mutable ' if mut else ''}{vt}"


def _show(t) -> str:
    return f"({', '.join(t[0])}) -> ({', '.join(t[1])})"


# --- address, assign, layout -----------------------------------------------------

def address(ctx, headr: int) -> None:
    """address lays out linear memory (data from -T, then bss, then the
    stack) and the module file: every section before the code is built here,
    then each function body's place (after its size) and each data segment's."""
    st = ctx.fmt
    stack = ctx.opts.stack_size if ctx.opts.stack_size is not None else STACK_SIZE
    first = ctx.opts.stack_first
    # --stack-first (wasm-ld's): the stack at the bottom of memory, [0, stack),
    # and the data from the end of it unless -T says otherwise.
    base = ctx.text_addr if ctx.opts.text_addr is not None or not first else align_up(stack, 16)
    mem = next((s for s in ctx.segments if s.name == "memory"), None)
    va = base
    if mem is not None:
        mem.vaddr = base
        va, _ = rules._sections(mem, base, 0)
        if first and mem.sections and mem.sections[0].addr < align_up(stack, 16):
            o = mem.sections[0]
            raise fail(f"wasm: data segment {o.name} at [{o.addr:#x}, {o.addr + o.size:#x}) "
                       f"overlaps the stack, [0, {align_up(stack, 16):#x}) with --stack-first "
                       "(move the data with -T, or shrink --stack-size)")
    st.data_end = align_up(va, 16)
    st.stack_top = align_up(stack, 16) if first else align_up(st.data_end + stack, 16)
    if st.stack_top >= 1 << 32:
        raise fail(f"wasm: data and stack end at {st.stack_top:#x}, past the 4 GiB of wasm32 memory")
    nimp = len(st.imported)
    index = {s: nimp + k for k, (s, _) in enumerate(st.funcs)}
    imported = {i: k for k, (i, *_) in enumerate(st.imported)}
    st.table = sorted({index[int(ctx.sym_sec[j])] if ctx.sym_sec[j] >= 0 else imported[j]
                       for j in _table_targets(ctx) if j >= 0})
    st.head = _head(ctx, index)

    # The code section: id, size, count, then per function its size and body.
    bodies = [int(ctx.sec_size[s]) for s, _ in st.funcs]
    payload = len(uleb(len(bodies))) + sum(len(uleb(n)) + n for n in bodies)
    st.code_at = len(st.head)
    st.code_head = bytes([10]) + uleb(payload) + uleb(len(bodies))
    off = st.code_at + len(st.code_head)
    code = next((s for s in ctx.segments if s.name == "code"), None)
    if code is not None:
        o = code.sections[0]
        o.addr, o.fileoff = 0, off
        code.vaddr, code.fileoff = 0, off
        for s, n in zip([s for s, _ in st.funcs], bodies):
            prefix = uleb(n)
            st.sizes.append((off, prefix))
            ctx.sec_off[s] = off + len(prefix) - o.fileoff
            off += len(prefix) + n
        o.size = off - o.fileoff
        code.length = code.filelen = o.size
    # The data section: an active segment per output section with bytes.
    segs = [o for o in (mem.sections if mem else []) if not o.nobits and o.size]
    hdrs = [b"\x00\x41" + sleb(_i32(o.addr)) + b"\x0b" + uleb(o.size) for o in segs]
    payload = len(uleb(len(segs))) + sum(len(h) + o.size for h, o in zip(hdrs, segs))
    st.data_at = off
    st.data_head = bytes([11]) + uleb(payload) + uleb(len(segs)) if segs else b""
    off += len(st.data_head)
    for h, o in zip(hdrs, segs):
        st.segs.append((off, h))
        o.fileoff = off + len(h)
        off = o.fileoff + o.size
    if mem is not None:
        mem.fileoff = st.data_at
        mem.filelen = off - st.data_at if segs else 0
    st.end = off


def _const(vt: str, v: int) -> bytes:
    """_const: the constant expression of a global's initial value (float
    values given as their bits)."""
    v &= (1 << 64) - 1
    if vt == "i32":
        return b"\x41" + sleb(_i32(v & 0xFFFFFFFF))
    if vt == "i64":
        return b"\x42" + sleb(v - (1 << 64) if v >= 1 << 63 else v)
    if vt == "f32":
        return b"\x43" + (v & 0xFFFFFFFF).to_bytes(4, "little")
    return b"\x44" + v.to_bytes(8, "little")


def _i32(v: int) -> int:
    return v - (1 << 32) if v >= 1 << 31 else v


def _table_targets(ctx) -> np.ndarray:
    """_table_targets: the definitions of the functions whose address is taken."""
    r, a = ctx.relocs, ctx.arch
    types = [a.index[n] for n in ("R_WASM_TABLE_INDEX_SLEB", "R_WASM_TABLE_INDEX_I32")]
    k = np.flatnonzero(np.isin(r.type, types))
    return np.unique(ctx.sym_res[r.sym[k]])


def assign(ctx) -> None:
    """assign: a function's address is its index (Go's AssignAddress), an
    import's too; so are S and every symbol at a function's start."""
    st = ctx.fmt
    nimp = len(st.imported)
    for k, (s, _) in enumerate(st.funcs):
        ctx.sec_addr[s] = nimp + k
    for k, (i, *_) in enumerate(st.imported):
        ctx.sym_value[i] = k            # sym_sec stays IMPORT: its address is its value
    for k, (i, *_) in enumerate(st.gimported):
        ctx.sym_value[i] = k
    for k, (i, *_) in enumerate(st.gdefined):
        ctx.sym_value[i] = st.sp_index + 1 + k   # ABS: the value is the address


def _head(ctx, index: dict) -> bytes:
    """_head builds the module up to the code section."""
    st = ctx.fmt
    out = bytearray(b"\0asm\x01\0\0\0")
    ftype = lambda t: (b"\x60" + vec([bytes([VALTYPE[v]]) for v in t[0]])  # noqa: E731
                       + vec([bytes([VALTYPE[v]]) for v in t[1]]))
    out += section(1, vec([ftype(t) for t in ctx.types]))
    if st.imported or st.gimported:
        out += section(2, vec([name(m) + name(f) + b"\x00" + uleb(t)
                               for _, m, f, t in st.imported]
                              + [name(m) + name(f) + b"\x03" + bytes([VALTYPE[vt], mut])
                                 for _, m, f, vt, mut in st.gimported]))
    out += section(3, vec([uleb(t) for _, t in st.funcs]))
    n = 1 + len(st.table)
    out += section(4, vec([b"\x70\x01" + uleb(n) + uleb(n)]))
    pages = max(1, -(-_heap_base(ctx) // PAGE))
    if ctx.opts.initial_memory is not None:
        if ctx.opts.initial_memory % PAGE:
            raise usage(f"--initial-memory {ctx.opts.initial_memory:#x}: expected a multiple of "
                        f"64 KiB (0x10000), the wasm page")
        if ctx.opts.initial_memory < pages * PAGE:
            raise fail(f"--initial-memory {ctx.opts.initial_memory:#x}: data and stack need "
                       f"{pages * PAGE:#x} bytes, in 64 KiB pages")
        pages = ctx.opts.initial_memory // PAGE
    out += section(5, vec([b"\x00" + uleb(pages)]))
    out += section(6, vec([b"\x7f\x01\x41" + sleb(_i32(st.stack_top)) + b"\x0b"]
                          + [bytes([VALTYPE[vt], mut]) + _const(vt, v) + b"\x0b"
                             for _, vt, mut, v in st.gdefined]))
    exports = []
    entry = ctx.entry_sym
    if entry is not None:
        s = int(ctx.sym_sec[entry])
        if s < 0 or ctx.sec_kind[s] != Kind.TEXT:
            raise fail(f"entry symbol {ctx.entry_name} is not a function")
        exports.append((ctx.entry_name, 0, index[s]))
    exports.append(("memory", 2, 0))
    for i, nm in sorted(ctx.exports.items(), key=lambda e: e[1]):
        j = int(ctx.sym_res[i])
        s = int(ctx.sym_sec[j])
        if s >= 0 and ctx.sec_kind[s] == Kind.TEXT and (nm, 0, index[s]) not in exports:
            exports.append((nm, 0, index[s]))
    out += section(7, vec([name(nm) + bytes([kind]) + uleb(i) for nm, kind, i in exports]))
    if st.table:
        out += section(9, vec([b"\x00\x41\x01\x0b" + vec([uleb(f) for f in st.table])]))
    return bytes(out)


def _heap_base(ctx) -> int:
    """_heap_base: where the heap starts, the top of whatever is highest, the
    stack or the data."""
    return max(ctx.fmt.stack_top, ctx.fmt.data_end)


def headr_size(ctx) -> int:
    return 0


def layout(ctx, end: int) -> int:
    return ctx.fmt.end


# --- asmb2 -------------------------------------------------------------------------

def asmb2(ctx, out) -> None:
    """asmb2 writes the module around the bodies and data asmb wrote."""
    st = ctx.fmt
    out.seek(0)
    out.write(st.head)
    out.seek(st.code_at)
    out.write(st.code_head)
    for at, prefix in st.sizes:
        out.seek(at)
        out.write(prefix)
    if st.data_head:
        out.seek(st.data_at)
        out.write(st.data_head)
        for at, h in st.segs:
            out.seek(at)
            out.write(h)
    if not ctx.opts.strip:
        nimp = len(st.imported)
        names = [(k, ctx.imports[i][1]) for k, (i, *_) in enumerate(st.imported)]
        by_sec = {}
        for i in np.flatnonzero((ctx.sym_sec >= 0) & (ctx.sym_value == 0)).tolist():
            s = int(ctx.sym_sec[i])
            if ctx.sec_kind[s] == Kind.TEXT and ctx.names.length[i]:
                by_sec.setdefault(s, ctx.names[i])
        names += [(nimp + k, by_sec.get(s, f"f{nimp + k}")) for k, (s, _) in enumerate(st.funcs)]
        sub = bytes([1]) + _sized(vec([uleb(i) + name(n) for i, n in names]))
        out.seek(st.end)
        out.write(section(0, name("name") + sub))


def _sized(b: bytes) -> bytes:
    return uleb(len(b)) + b


def notes(ctx) -> list[str]:
    dwarf = {ctx.sec_name[i] for i in np.flatnonzero(ctx.sec_kind == Kind.DWARF).tolist()}
    return [f"wasm: DWARF sections left out ({', '.join(sorted(dwarf))})"] if dwarf else []


LINKER_SYMBOLS = {
    "__stack_pointer": lambda ctx: ctx.fmt.sp_index,      # after the imported globals
    "__data_end": lambda ctx: ctx.fmt.data_end,
    "__heap_base": _heap_base,
}

FORMAT = Format(name="wasm", part="wasm", segments=SEGMENTS, defaults=defaults,
                headr_size=headr_size, address=address, assign=assign, layout=layout,
                asmb2=asmb2, gensections=gensections, linker_symbols=LINKER_SYMBOLS,
                imports=True, use_mmap=False, notes=notes)

