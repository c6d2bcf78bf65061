"""link: the link context and link(), the pipeline top to bottom.

    loadlib   decode and validate every input object; resolve symbols
    dodata    bin input sections into output sections by kind
    address   assign virtual addresses per segment
    layout    assign file offsets; the file's size
    mmap      open a temporary file beside the output, size and map it
    asmb      write every block, relocations applied in place
    asmb2     headers, symbol and string tables (per output format)
    munmap    copy in the heap spill, unmap, rename over the output

Everything a phase needs travels in the Link context; there are no globals.
"""

from __future__ import annotations

import itertools
import os
from typing import NoReturn

import msgspec
import numpy as np

from . import arch as archreg
from . import format as formats
from .asmb import BLOCK_SIZE, asmb
from .bench import Bench
from .errors import Diagnostics, InternalError, LinkError, fail
from .layout import address, dodata, layout
from .loader import (ABS, GLOBAL, LOCAL, SECTION_TYPE, UNDEF, WEAK, Object, bounds_ok,
                     read_object, read_objects)
from .names import Names, SymbolTable
from .outbuf import OutBuf
from .workers import DEFAULT_JOBS


class Options(msgspec.Struct):
    objects: list[str]
    output: str = "a.out"
    entry: str = "_start"
    headtype: str = "elf"
    text_addr: int | None = None
    round: int | None = None
    strip: bool = False
    jobs: int = DEFAULT_JOBS
    mmap: bool = True
    block_size: int = BLOCK_SIZE
    # --externallink: write an ELF relocatable object, let another linker finish
    externallink: bool = False
    extld: str | None = None
    extldflags: str = ""
    tmpdir: str | None = None
    libc: bool = False
    log: object = None          # called with a line to show the user (-v), or None
    # A minild.readahead.ReadAhead the CLI started before importing numpy: the
    # documents it decoded are not decoded again.
    ahead: object = None


class Relocs(msgspec.Struct):
    """Relocs: every relocation of the link as columns (global ids)."""

    sec: np.ndarray
    off: np.ndarray
    type: np.ndarray
    sym: np.ndarray
    add: np.ndarray
    # after layout (P and S only where needed as whole columns; see symaddrs):
    P: np.ndarray | None = None
    S: np.ndarray | None = None
    A: np.ndarray | None = None


class Link:
    """Link is the context of one link: options, inputs, layout, output. The
    phases add what they compute as attributes (sec_addr, names, relocs, ...)."""

    def __init__(self, opts: Options):
        self.opts = opts
        self.bench = Bench()
        self.objects: list[Object] = []

    phase = property(lambda self: self.bench.phase)

    # --- locations for diagnostics ------------------------------------------

    def section_site(self, sec: int, off: int) -> str:
        return f"{self.objects[self.sec_obj[sec]].path}:({self.sec_name[sec]}+{off:#x})"

    def reloc_site(self, k: int) -> str:
        r = self.relocs
        return self.section_site(int(r.sec[k]), int(r.off[k]))

    def reloc_target(self, k: int) -> str:
        s = int(self.relocs.sym[k])
        if self.sym_type[s] == SECTION_TYPE:
            return f"section '{self.sec_name[self.sym_sec[s]]}'"
        return self.names[s]

    def global_sym(self, name: str) -> int | None:
        """global_sym returns the entry that defines global name, or None."""
        i = self.linker_defined.get(name)
        return i if i is not None else self.globals.get(name)

    def defined_in(self, k: int) -> list[str]:
        d = int(self.sym_res[self.relocs.sym[k]])
        return [f"defined in {self.objects[self.sym_obj[d]].path}"] if d >= 0 else []


def link(opts: Options) -> Link:
    """link runs the whole pipeline; raises LinkError on bad input."""
    ctx = Link(opts)
    headtype = "elfrel" if opts.externallink else opts.headtype
    try:
        ctx.format = formats.lookup(headtype)
    except KeyError:
        raise fail(f"unknown header type {opts.headtype!r}; expected one of: "
                   + ", ".join(formats.names()))
    with ctx.phase("loadlib"):
        loadlib(ctx)
    ctx.text_addr = ctx.arch.text_addr if opts.text_addr is None else opts.text_addr
    ctx.round = ctx.arch.page_size if opts.round is None else opts.round
    if ctx.round < 1 or ctx.round & (ctx.round - 1):
        raise fail(f"-R {ctx.round:#x}: the rounding must be a power of two")
    with ctx.phase("dodata"):
        dodata(ctx)
    with ctx.phase("address"):
        getattr(ctx.format, "address", address)(ctx)
    with ctx.phase("layout"):
        ctx.filesize = layout(ctx)
        symaddrs(ctx)
        more = getattr(ctx.format, "layout", None)
        if more is not None:
            ctx.filesize = more(ctx, ctx.filesize)
    # At this point, memory layout is fixed: addresses, file offsets, the file size.
    if not opts.externallink:
        write_output(ctx, opts.output)
        return ctx
    # tempfile and shutil (with bz2, lzma, random, ...): ~3 ms of every
    # start, imported only for this path.
    import shutil
    import tempfile

    tmpdir = opts.tmpdir or tempfile.mkdtemp(prefix="minild-")
    try:
        if opts.tmpdir:
            os.makedirs(tmpdir, exist_ok=True)
        obj = os.path.join(tmpdir, "minild.o")
        write_output(ctx, obj)
        with ctx.phase("extld"):
            final = OutputFile(opts.output)
            with final:  # the external linker writes the temporary file by name
                # Remove the empty file OutputFile made (the name stays ours for
                # the moment), so that a linker that writes nothing is caught.
                os.unlink(final.name)
                from . import extld  # subprocess and shutil: only for this path
                extld.run(ctx, obj, final.name, opts.log)
    finally:
        if not opts.tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)
    return ctx


def write_output(ctx: Link, path: str) -> None:
    """write_output runs mmap, asmb, asmb2 and munmap into path (atomically)."""
    opts = ctx.opts
    use_mmap = opts.mmap and ctx.format.USE_MMAP
    with OutputFile(path) as fd:
        with ctx.phase("mmap"):
            out = OutBuf(fd, "mmap" if use_mmap else "buffered")
            if use_mmap:
                try:
                    out.mmap(ctx.filesize)
                except OSError as e:
                    raise fail(f"cannot map output file {path}: {e.strerror}")
            else:
                os.ftruncate(fd, ctx.filesize)
        try:
            with ctx.phase("asmb"):
                asmb(ctx, out, opts.jobs, opts.block_size)
            with ctx.phase("asmb2"):
                ctx.format.asmb2(ctx, out)
        finally:
            with ctx.phase("munmap"):
                if out.mode == "mmap":
                    out.munmap()


class OutputFile:
    """OutputFile is a temporary file beside the output, renamed over it only
    when the link succeeds; on any failure it is removed and the previous
    output is left as it was."""

    def __init__(self, path: str):
        self.path = path
        self.tmp = None
        self.fd = -1

    def __enter__(self) -> int:
        d = os.path.dirname(os.path.abspath(self.path))
        # As tempfile.mkstemp does (without its import): a new file, private
        # to us, under a name no one can guess; O_EXCL never follows a link.
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        for _ in range(100):
            tmp = os.path.join(d, f".{os.path.basename(self.path)}.{os.urandom(6).hex()}.tmp")
            try:
                self.fd = os.open(tmp, flags, 0o600)
            except FileExistsError:
                continue
            except OSError as e:
                raise fail(f"cannot create output file {self.path}: {e.strerror} ({d})")
            self.tmp = tmp
            return self.fd
        raise fail(f"cannot create output file {self.path}: no unused temporary name in {d}")

    @property
    def name(self) -> str:
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> bool:
        ok = exc_type is None
        try:
            if ok:
                mask = os.umask(0)
                os.umask(mask)
                os.fchmod(self.fd, 0o777 & ~mask)
        finally:
            os.close(self.fd)
        if ok:
            try:
                os.replace(self.tmp, self.path)
                return False
            except OSError as e:
                os.unlink(self.tmp)
                raise fail(f"cannot write output file {self.path}: {e.strerror}")
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass  # an external linker that failed may have removed it already
        return False


# --- loadlib -------------------------------------------------------------

# Symbols the linker defines when an object refers to them and none defines them.
LINKER_SYMBOLS = {
    "__executable_start": lambda ctx: ctx.segments[0].vaddr,
    "_etext": lambda ctx: _end_of(ctx, ("text",)),
    "etext": lambda ctx: _end_of(ctx, ("text",)),
    "_edata": lambda ctx: _end_of(ctx, ("text", "rodata", "data"), nobits=False),
    "edata": lambda ctx: _end_of(ctx, ("text", "rodata", "data"), nobits=False),
    "__bss_start": lambda ctx: _end_of(ctx, ("text", "rodata", "data"), nobits=False),
    "_end": lambda ctx: _end_of(ctx, ("text", "rodata", "data")),
    "end": lambda ctx: _end_of(ctx, ("text", "rodata", "data")),
}


def _end_of(ctx, segs, nobits=True) -> int:
    end = 0
    for s in ctx.segments:
        if s.name in segs:
            for o in s.sections:
                if nobits or not o.nobits:
                    end = max(end, o.addr + o.size)
    return end


def loadlib(ctx: Link) -> None:
    """loadlib reads every object and resolves symbols: each symbol entry gets
    the id of the entry that defines it (sym_res), relocations get global ids."""
    d = Diagnostics()
    with ctx.phase("read"):
        ahead = ctx.opts.ahead
        decoded = ahead.collect() if ahead is not None else {}
        if ctx.opts.log and ahead is not None:
            ctx.opts.log(f"minild: read ahead: decoded {len(decoded)} of "
                         f"{len(ctx.opts.objects)} objects while starting")
        read = read_objects(ctx.opts.objects, ctx.opts.jobs, decoded)
    objs = [o for o in read if not isinstance(o, LinkError)]
    if len(objs) < len(read):
        report_exactly(ctx.opts.objects)
    if not objs:
        raise fail("no input files")
    first = objs[0]
    for o in objs[1:]:
        if o.arch != first.arch:
            d.error(f"{o.path} is incompatible with {first.path}: arch {o.arch} is not "
                    f"{first.arch}")
    d.check()
    ctx.arch = archreg.lookup(first.arch)
    ctx.objects = objs

    with ctx.phase("columns"):
        columns(ctx, objs)
        r = ctx.relocs
        if not bounds_ok(ctx.sec_size, ctx.sec_kind, ctx.arch.widths, ctx.sym_sec,
                         ctx.sym_value, r.sec, r.off, r.type):
            report_exactly(ctx.opts.objects)
    with ctx.phase("resolve"):
        resolve(ctx)


def report_exactly(paths: list[str]) -> NoReturn:
    """report_exactly raises the errors of reading every object on its own,
    with every check (loader.read_object). A link's read leaves some checks
    to be made link-wide and may stop at an object's first error; when
    something is wrong, this says all of it, in the same words whatever -j
    and the read-ahead did."""
    d = Diagnostics()
    for p in paths:
        try:
            read_object(p)
        except LinkError as e:
            for x in e.diags:
                d.error(x.message, *x.notes)
            d.suppressed += e.suppressed
    d.check()
    raise InternalError("the link's checks of its objects failed, but no object's own checks do")


def columns(ctx: Link, objs: list[Object]) -> None:
    """columns concatenates the objects' columns into the link's: global
    section and symbol ids (an object's ids plus its base). Each object's
    column is dropped as soon as it is copied (where it is not a view of a
    file or of shared memory, its memory can serve the next allocation):
    fresh pages cost a fault each, and this is ~100 MB on the large
    benchmark."""
    nsec = np.array([len(o.sec_name) for o in objs], np.int64)
    nsym = np.array([len(o.sym_name) for o in objs], np.int64)
    nrel = np.array([len(o.rel_off) for o in objs], np.int64)
    secbase = np.cumsum(nsec) - nsec
    symbase = np.cumsum(nsym) - nsym
    empty = np.zeros(0, np.int8)
    off_type = np.int32 if max((int(o.sec_size.max(initial=0)) for o in objs), default=0) \
        < 1 << 31 else np.int64
    add_type = np.int32 if all(o.rel_add.dtype.itemsize <= 4 for o in objs) else np.int64
    # The link's columns are carved from one allocation: large enough for
    # numpy to ask the kernel for huge pages, so that it is a few faults of
    # 2 MiB rather than one per 4 KiB page (most of this phase's time).
    S, Y, R = int(nsec.sum()), int(nsym.sum()), int(nrel.sum())
    plan = [(1, S), (8, S), (8, S), (8, Y), (8, Y), (8, Y), (1, Y), (1, Y),
            (4, R), (4, R), (np.dtype(off_type).itemsize, R), (2, R),
            (np.dtype(add_type).itemsize, R)]
    arena = np.empty(sum(-(-w * n // 8) * 8 for w, n in plan), np.uint8)
    at = 0

    def cat(f: str, dtype) -> np.ndarray:
        nonlocal at
        dtype = np.dtype(dtype)
        n = sum(len(getattr(o, f)) for o in objs)
        col = np.ndarray((n,), dtype, arena, at)
        at += -(-dtype.itemsize * n // 8) * 8
        np.concatenate([getattr(o, f) for o in objs], out=col, casting="same_kind")
        for o in objs:
            setattr(o, f, empty)
        return col

    ctx.sec_obj = np.repeat(np.arange(len(objs), dtype=np.int32), nsec)
    ctx.sec_name = [n for o in objs for n in o.sec_name]
    ctx.sec_kind, ctx.sec_align = cat("sec_kind", np.uint8), cat("sec_align", np.int64)
    ctx.sec_size = cat("sec_size", np.int64)
    ctx.sec_data = [x for o in objs for x in o.sec_data]

    ctx.sym_obj = np.repeat(np.arange(len(objs), dtype=np.int32), nsym)
    ctx.names = Names.concat([o.sym_name for o in objs])
    none = Names.from_list([])
    for o in objs:
        o.sym_name = none
    sec = ctx.sym_sec = cat("sym_sec", np.int64)
    rebase(sec, nsym, secbase, defined_only=True)  # UNDEF and ABS stay
    # An object's columns may be its file's narrow views (loader: a bulk
    # read); joining them widens them to the link's types.
    ctx.sym_value, ctx.sym_size = cat("sym_value", np.int64), cat("sym_size", np.int64)
    ctx.sym_bind, ctx.sym_type = cat("sym_bind", np.uint8), cat("sym_type", np.uint8)

    # int32 ids and int16 types: half the memory of int64 for millions of rows.
    # Offsets and addends are int32 too where every object allows it: offsets
    # are inside their sections, addends int32 where the files' columns are
    # 4 bytes or less (loader.NARROW).
    rsec, rsym = cat("rel_sec", np.int32), cat("rel_sym", np.int32)
    rebase(rsec, nrel, secbase)
    rebase(rsym, nrel, symbase)
    ctx.relocs = Relocs(sec=rsec, off=cat("rel_off", off_type), type=cat("rel_type", np.int16),
                        sym=rsym, add=cat("rel_add", add_type))


def rebase(col: np.ndarray, counts: np.ndarray, base: np.ndarray, defined_only=False) -> None:
    """rebase adds each object's base to its stretch of col, in place (a
    repeat of the bases would be one more full-size array: fresh memory)."""
    pos = 0
    for n, b in zip(counts.tolist(), base.tolist()):
        if n and b:
            v = col[pos:pos + n]
            if defined_only:
                np.add(v, b, out=v, where=v >= 0)
            else:
                v += b
        pos += n


def resolve(ctx: Link) -> None:
    """resolve binds every non-local symbol entry to its definition.

    A strong definition wins over weak ones, the first weak one wins among
    weaks, two strong ones are an error. Names are matched as columns (minild.names:
    hashes, a hash table, then byte-for-byte checks), never one Python lookup per
    reference; relocations reach definitions through sym_res by indexing.
    """
    d = Diagnostics()
    names, bind, sec = ctx.names, ctx.sym_bind, ctx.sym_sec
    n = len(names)
    res = np.arange(n, dtype=np.int64)
    defined = sec != UNDEF
    strong = np.flatnonzero((bind == GLOBAL) & defined)
    weak = np.flatnonzero((bind == WEAK) & defined)
    # Entries that may not be their own definition: undefined ones and weak ones.
    look = np.flatnonzero((bind != LOCAL) & ((sec == UNDEF) | (bind == WEAK)))
    table, dups = definitions(names, names.hashes(), strong, weak)
    for ids in dups:
        d.error(f"duplicate symbol: {names[ids[0]]}",
                *[f"defined at {ctx.section_site(int(sec[i]), int(ctx.sym_value[i]))}"
                  if sec[i] >= 0 else f"defined at {ctx.objects[ctx.sym_obj[i]].path}"
                  for i in ids])
        res[ids[1:]] = ids[0]  # a strong duplicate resolves to the first definition
    res[look] = table.lookup(look)

    # Linker-defined symbols, for names referred to and defined by no object.
    # (Not when another linker finishes the link: it defines them itself.)
    external = getattr(ctx.format, "ALLOW_UNDEFINED", False)
    ctx.linker_symbols = {} if external else dict(LINKER_SYMBOLS)
    arch_syms = ctx.arch.hook("linker_symbols")
    if arch_syms is not None and not external:
        ctx.linker_symbols.update(arch_syms())
    unresolved = look[res[look] < 0]
    unresolved_names = names.tolist(unresolved)
    extra = sorted({x for x in unresolved_names if x in ctx.linker_symbols})
    ctx.linker_defined = {name: n + j for j, name in enumerate(extra)}
    if extra:
        ctx.objects.append(Object.empty("<internal>", ctx.arch.name))
        k = len(ctx.objects) - 1
        m = len(extra)
        ctx.names = names = names.extend(extra)
        ctx.sym_obj = np.concatenate((ctx.sym_obj, np.full(m, k, np.int32)))
        ctx.sym_sec = np.concatenate((ctx.sym_sec, np.full(m, ABS)))
        ctx.sym_value = np.concatenate((ctx.sym_value, np.zeros(m, np.int64)))
        ctx.sym_size = np.concatenate((ctx.sym_size, np.zeros(m, np.int64)))
        ctx.sym_bind = np.concatenate((ctx.sym_bind, np.full(m, GLOBAL, np.uint8)))
        ctx.sym_type = np.concatenate((ctx.sym_type, np.zeros(m, np.uint8)))
        res = np.concatenate((res, np.arange(n, n + m)))
        bind, sec = ctx.sym_bind, ctx.sym_sec
        res[unresolved] = [ctx.linker_defined.get(x, -1) for x in unresolved_names]
    ctx.sym_res = res
    ctx.globals = table

    r = ctx.relocs
    # Per symbol entry first: only a link with undefined symbols looks at its
    # (millions of) relocations to find the referencing places.
    unresolved_strong = (res < 0) & (bind == GLOBAL)
    if unresolved_strong.any() and not external:
        missing = unresolved_strong[r.sym]
        refs: dict[str, list[int]] = {}
        for k in np.flatnonzero(missing).tolist():
            refs.setdefault(names[r.sym[k]], []).append(k)
        for name, ks in refs.items():
            shown = ks[:UNDEF_REFS]
            notes = [f"referenced by {ctx.reloc_site(k)}" for k in shown]
            if len(ks) > len(shown):
                notes.append(f"referenced {len(ks) - len(shown)} more times")
            d.error(f"undefined symbol: {name}", *notes)
    e = ctx.global_sym(ctx.opts.entry)
    if e is None and not external:
        d.error(f"undefined entry symbol: {ctx.opts.entry} (no object defines it; "
                "choose another with -e/--entry)")
    ctx.entry_sym = e
    d.check()


UNDEF_REFS = 50  # references listed per undefined symbol before "referenced N more times"


class Definitions:
    """Definitions finds, for names of a link's symbol entries, the entry that
    defines them (-1 for none): a hash table over the winning definitions."""

    def __init__(self, names: Names, ids: np.ndarray, hashes: np.ndarray):
        self.names = names
        self.hashes = hashes   # of every entry
        self.table = SymbolTable(names, ids, hashes[ids])

    def lookup(self, idx: np.ndarray) -> np.ndarray:
        return self.table.lookup(self.names, idx, self.hashes[idx])

    def get(self, name: str) -> int | None:
        return self.table.get(name)


class DictDefinitions:
    """DictDefinitions is Definitions by a dict of Python strings: for the (never
    yet seen) link where two different defined names share a 64-bit hash."""

    def __init__(self, names: Names, table: dict[str, int]):
        self.names, self.table = names, table

    def lookup(self, idx: np.ndarray) -> np.ndarray:
        return np.fromiter(map(self.table.get, self.names.tolist(idx), itertools.repeat(-1)),
                           np.int64, len(idx))

    def get(self, name: str) -> int | None:
        return self.table.get(name)


def definitions(names: Names, hashes: np.ndarray, strong: np.ndarray, weak: np.ndarray
                ) -> tuple[Definitions | DictDefinitions, list[np.ndarray]]:
    """definitions picks the defining entry of every defined name: the strong
    one, else the first weak one. hashes holds every entry's name hash (only
    those of non-local entries are read). It returns the lookup structure and
    the duplicate strong definitions, one array of entries per name (first one
    first), in the order of their second definitions."""
    cand = np.concatenate((strong, weak))
    hc = hashes[cand]
    order = np.argsort(hc)
    hs = hc[order]
    head = np.ones(len(order), bool)
    head[1:] = hs[1:] != hs[:-1]
    heads = np.flatnonzero(head)
    if len(heads) == len(order):          # every defined name once: no choice to make
        return Definitions(names, cand, hashes), []
    # Runs of one hash: the first position in cand wins (strong entries come
    # first, each kind in entry order).
    run = np.cumsum(head) - 1
    lead = np.minimum.reduceat(order, heads)
    member = order != lead[run]
    mpos, mlead = order[member], lead[run[member]]
    if not names.equal(cand[mpos], cand[mlead]).all():
        # Two different names with one hash: resolve by dict, exactly as ld would.
        return _dict_definitions(names, strong, weak)
    groups: dict[int, list[int]] = {}
    dup = mpos < len(strong)                 # a strong entry that is not its name's first
    for lead_k, k in sorted(zip(mlead[dup].tolist(), mpos[dup].tolist())):
        groups.setdefault(lead_k, [lead_k]).append(k)
    dups = sorted((cand[np.array(g)] for g in groups.values()), key=lambda ids: int(ids[1]))
    return Definitions(names, cand[lead], hashes), dups


def _dict_definitions(names: Names, strong: np.ndarray, weak: np.ndarray):
    first: dict[str, int] = {}
    dups: dict[str, list[int]] = {}
    for name, i in zip(names.tolist(strong), strong.tolist()):
        j = first.setdefault(name, i)
        if j != i:
            dups.setdefault(name, [j]).append(i)
    for name, i in zip(names.tolist(weak), weak.tolist()):
        first.setdefault(name, i)
    groups = sorted((np.array(ids) for ids in dups.values()), key=lambda ids: int(ids[1]))
    return DictDefinitions(names, first), groups


def symaddrs(ctx: Link) -> None:
    """symaddrs computes every symbol's address and the address each symbol
    entry resolves to; and every relocation's P and S where a hook or the
    format needs them as columns (else asmb computes them per block)."""
    for name, i in ctx.linker_defined.items():
        ctx.sym_value[i] = ctx.linker_symbols[name](ctx)
    sec = ctx.sym_sec
    # Indexed by a section id, UNDEF (-1) or ABS (-2): a section's address,
    # or 0 for both (an absolute symbol's address is its value).
    base = np.concatenate((ctx.sec_addr, [0, 0]))
    addr = ctx.sym_addr = base[sec]
    addr += ctx.sym_value
    addr[sec == UNDEF] = 0
    # Indexed by sym_res: the defining entry's address, 0 for none (-1).
    defaddr = np.concatenate((addr, [0]))[ctx.sym_res]
    ctx.entry_addr = int(ctx.sym_addr[ctx.entry_sym]) if ctx.entry_sym is not None else 0
    r = ctx.relocs
    r.A = r.add
    ctx.defaddr = defaddr
    adjust = ctx.arch.hook("adjust_relocs")
    relocates = getattr(ctx.format, "RELOCATES", True)
    if relocates and adjust is None:
        # asmb's writers compute each block's P and S, in parallel,
        # and the link holds 16 bytes a relocation less.
        return
    r.P = ctx.sec_addr[r.sec] + r.off
    r.S = defaddr[r.sym]
    if adjust is not None and relocates:
        adjust(ctx, r)
