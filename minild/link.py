"""link: the link context and link(), the pipeline top to bottom.

    loadlib      decode and validate every input object (loader); join their
                 columns (columns); resolve symbols (resolve)
    gensections  sections the output format generates itself (if it has any)
    dodata       bin input sections into output sections by the format's plan
    address      assign virtual addresses and file offsets by the format's rule
    layout       fix section and symbol addresses; the file's size
    mmap         open a temporary file beside the output, size and map it
    asmb         write every block, relocations applied in place
    asmb2        headers, symbol and string tables (the format's)
    munmap       copy in the heap spill, unmap, rename over the output

Everything a phase needs travels in the Link context, which declares every
field it will hold, grouped by the phase that sets it; there are no globals.
The pipeline asks the Format and the Arch records; it never branches on a
format's or an arch's name.
"""

from __future__ import annotations

import os
from typing import NoReturn

import msgspec
import numpy as np

from . import arch as archreg
from . import format as formats
from . import heap
from .asmb import BLOCK_SIZE, asmb
from .bench import Bench
from .columns import Relocs, columns
from .errors import Diagnostics, InternalError, LinkError, fail, usage
from .layout import address, dodata, layout, symaddrs
from .loader import Object, bounds_ok, read_object, read_objects
from .outbuf import OutBuf
from .outfile import OutputFile
from .resolve import resolve
from .vocab import Bind, SymType
from .workers import DEFAULT_JOBS


class Options(msgspec.Struct):
    objects: list[str]
    output: str = "a.out"
    entry: str | None = None    # None: the format's (_start; _main for Mach-O)
    headtype: str | None = None   # None: elf, or the objects' arch's own format (wasm)
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
    # -H pe: FileAlignment, the subsystem, and base relocations (DYNAMIC_BASE)
    file_align: int | None = None
    subsystem: str = "console"
    dynamicbase: bool = True
    # -H macho: LC_BUILD_VERSION's minos, and the ad-hoc code signature (None: the arch's)
    macos_version: str = "11.0"
    codesign: bool | None = None
    # The largest section alignment accepted (--max-align; docs/reliability.md)
    max_align: int = 1 << 16
    # wasm: the stack's size and the memory's (None: 64 KiB; what data and stack need)
    stack_size: int | None = None
    initial_memory: int | None = None
    stack_first: bool = False     # wasm: the stack below the data (wasm-ld's --stack-first)
    log: object = None          # called with a line to show the user (-v), or None
    warn: object = None         # called with each warning's text (the CLI prints it), or None
    no_output: bool = False     # stop after layout, write nothing (minild explain)
    # A minild.readahead.ReadAhead the CLI started before importing numpy: the
    # documents it decoded are not decoded again.
    ahead: object = None


class Link:
    """Link is the context of one link: every field any phase sets, declared
    here and grouped by that phase; `fmt` is the output format's own."""

    def __init__(self, opts: Options):
        self.opts = opts
        self.bench = Bench()
        # link(): what to make.
        self.format: formats.Format | None = None
        self.arch: archreg.Arch | None = None
        self.entry_name = ""              # -e, or the format's
        self.text_addr = 0                # -T, or the (format, arch) default
        self.round = 0                    # -R, or the (format, arch) default
        self.warnings: list[str] = []     # what warn() said (the CLI prints each as it comes)
        # loadlib/read: the objects (and "<internal>" for linker-defined symbols).
        self.objects: list[Object] = []
        # loadlib/archive.pull: each member loaded, (archive, member, symbol, referenced by).
        self.archive_loads: list[tuple[str, str, str, str]] = []
        # loadlib/columns: the link's columns, global ids (columns.columns).
        self.sec_obj = self.sec_kind = self.sec_align = self.sec_size = None  # np.ndarray
        self.sec_name: list[str] = []
        self.sec_data: list[bytes | None] = []
        self.sym_obj = self.sym_sec = self.sym_value = self.sym_size = None   # np.ndarray
        self.sym_bind = self.sym_type = None                                  # np.ndarray
        self.names = None                 # minild.names.Names of every symbol entry
        self.relocs: Relocs | None = None
        self.imports: dict[int, tuple[str, str]] = {}   # entry -> (module, its name there)
        self.types: list = []             # wasm: the link's function types, each once
        self.signatures: dict[int, int] = {}   # wasm: entry -> index into types
        self.exports: dict[int, str] = {}      # wasm: entry -> export name
        self.wasm_globals: dict[int, tuple[str, bool]] = {}   # wasm: entry -> (type, mutable)
        # loadlib/resolve (resolve.resolve).
        self.sym_res = None               # per entry: the defining entry, -1 none
        self.globals = None               # defined global names -> entry (lookup)
        self.linker_symbols: dict = {}    # name -> fn(ctx) -> address
        self.linker_defined: dict[str, int] = {}   # name -> its entry
        self.entry_sym: int | None = None
        self.import_slots: dict[int, int] = {}   # __imp_NAME's entry -> NAME's import entry
        self.imports_used: set[int] = set()      # imports referenced by name or by slot
        self.imports_called: set[int] = set()    # imports referenced by name (thunks)
        # gensections (formats with imports): each used import's slot entry.
        self.import_slot_of: dict[int, int] = {}
        # gensections (the arch's): e_flags other than the arch's (ppc64 ELFv1: 1), or None.
        self.elf_flags: int | None = None
        # thunks (range-extension thunks): each input section's place in its
        # output section's order, where thunk sections sit between; None: index order.
        self.sec_rank = None
        # dodata.
        self.sec_off = self.sec_out = None    # per input section: offset in, index of its output section
        self.segments: list = []          # vocab.Segment
        self.outsections: list = []       # vocab.OutSection
        # layout (and symaddrs).
        self.sec_addr = self.sec_fileoff = None   # per input section
        self.filesize = 0                 # the mapped size: the segments (and what format.layout adds)
        self.image_base: int | None = None   # set by formats that have one (PE's ImageBase)
        self.sym_addr = None              # per entry: its address (0: undefined)
        self.defaddr = None               # per entry: its definition's address (S)
        self.entry_addr = 0
        self.reloc_env = None             # reloc.Env: link-wide values of expressions
        # The output format's private state (e.g. elfrel.State).
        self.fmt = None

    phase = property(lambda self: self.bench.phase)

    # --- locations for diagnostics ------------------------------------------

    def section_site(self, sec: int, off: int) -> str:
        return f"{self.objects[self.sec_obj[sec]].path}:({self.sec_name[sec]}+{off:#x})"

    def reloc_site(self, k: int) -> str:
        r = self.relocs
        return self.section_site(int(r.sec[k]), int(r.off[k]))

    def ref_site(self, k: int) -> str:
        """ref_site is where relocation k is, naming the function (or other
        symbol) that holds the place, as lld's `>>> referenced by
        a.obj:(_start+0x1)` does; the section and offset when none does."""
        r = self.relocs
        sec, off = int(r.sec[k]), int(r.off[k])
        f = self.enclosing(sec, off)
        if f is None:
            return self.section_site(sec, off)
        path = self.objects[self.sec_obj[sec]].path
        return f"{path}:({self.names[f]}+{off - int(self.sym_value[f]):#x})"

    def enclosing(self, sec: int, off: int) -> int | None:
        """enclosing is the symbol entry that holds offset off of input section
        sec: one whose [value, value+size) holds it (functions first), else
        the nearest function or untyped symbol at or before it (GNU ld's "in
        function"); None when there is none. The index is built on first use
        (only errors and explain ask)."""
        if getattr(self, "_enclosing", None) is None:
            t = self.sym_type
            ids = np.flatnonzero((self.sym_sec >= 0) & (t != SymType.SECTION))
            order = np.lexsort((ids, self.sym_value[ids], self.sym_sec[ids]))
            self._enclosing = ids[order]
        ids = self._enclosing
        secs = self.sym_sec[ids]
        lo, hi = np.searchsorted(secs, sec, "left"), np.searchsorted(secs, sec, "right")
        cand = ids[lo:hi]
        if not len(cand):
            return None
        vals = self.sym_value[cand].astype(np.uint64)
        upto = cand[:int(np.searchsorted(vals, np.uint64(off), "right"))]
        if not len(upto):
            return None
        v, z = self.sym_value[upto].astype(np.int64), self.sym_size[upto].astype(np.int64)
        inside = upto[(v <= off) & (off < v + z)]
        if len(inside):
            funcs = inside[self.sym_type[inside] == SymType.FUNC]
            return int((funcs if len(funcs) else inside)[-1])
        near = upto[np.isin(self.sym_type[upto], (SymType.FUNC, SymType.NOTYPE))]
        return int(near[-1]) if len(near) else None

    def reloc_target(self, k: int) -> str:
        s = int(self.relocs.sym[k])
        if self.sym_type[s] == SymType.SECTION:
            return f"section '{self.sec_name[self.sym_sec[s]]}'"
        return self.names[s]

    # --- what the linker adds: its own objects, sections, symbols, relocations ---
    # (linker-defined symbols in resolve; a format's generated sections in
    # gensections, before dodata). Few rows: concatenation is cheap enough.

    def add_object(self, path: str) -> int:
        """add_object adds an object of the linker's own ("<internal>", "<pe
        imports>") and returns its index."""
        self.objects.append(Object.empty(path, self.arch.name))
        return len(self.objects) - 1

    def add_sections(self, obj: int, names: list[str], kinds: list[int], aligns: list[int],
                     sizes: list[int], datas: list) -> np.ndarray:
        """add_sections adds input sections to the link and returns their ids."""
        n, m = len(self.sec_name), len(names)
        self.sec_obj = np.concatenate((self.sec_obj, np.full(m, obj, np.int32)))
        self.sec_name = self.sec_name + list(names)
        self.sec_kind = np.concatenate((self.sec_kind, np.array(kinds, np.uint8)))
        self.sec_align = np.concatenate((self.sec_align, np.array(aligns, np.int64)))
        self.sec_size = np.concatenate((self.sec_size, np.array(sizes, np.int64)))
        self.sec_data = self.sec_data + list(datas)
        return np.arange(n, n + m)

    def add_symbols(self, obj: int, names: list[str], sec, value, bind=Bind.GLOBAL,
                    typ=SymType.NOTYPE) -> np.ndarray:
        """add_symbols adds defined symbol entries, each its own definition,
        and returns their ids. sec and value: one each, or one per name."""
        n, m = len(self.names), len(names)
        self.names = self.names.extend(list(names))
        self.sym_obj = np.concatenate((self.sym_obj, np.full(m, obj, np.int32)))
        self.sym_sec = np.concatenate((self.sym_sec, np.broadcast_to(sec, m).astype(np.int64)))
        self.sym_value = np.concatenate((self.sym_value,
                                         np.broadcast_to(value, m).astype(np.int64)))
        self.sym_size = np.concatenate((self.sym_size, np.zeros(m, np.int64)))
        self.sym_bind = np.concatenate((self.sym_bind, np.full(m, bind, np.uint8)))
        self.sym_type = np.concatenate((self.sym_type, np.full(m, typ, np.uint8)))
        if self.sym_res is not None:
            self.sym_res = np.concatenate((self.sym_res, np.arange(n, n + m)))
        return np.arange(n, n + m)

    def add_relocs(self, sec, off, types, sym, add) -> None:
        """add_relocs adds relocations (columns of equal length)."""
        r = self.relocs
        cat = lambda col, new: np.concatenate((col, np.asarray(new).astype(col.dtype)))  # noqa: E731
        self.relocs = Relocs(sec=cat(r.sec, sec), off=cat(r.off, off), type=cat(r.type, types),
                             sym=cat(r.sym, sym), add=cat(r.add, add))

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
    if headtype is not None:      # (else loadlib picks the arch's, once it knows it)
        try:
            ctx.format = formats.lookup(headtype)
        except KeyError:
            from .suggest import did_you_mean
            raise usage(f"-H {opts.headtype}: unknown output format; expected one of: "
                        + ", ".join(formats.names())
                        + did_you_mean(opts.headtype, formats.names()))
    with ctx.phase("loadlib"):
        loadlib(ctx)
    fmt = ctx.format
    T, R = fmt.defaults(ctx.arch)
    ctx.text_addr = T if opts.text_addr is None else opts.text_addr
    ctx.round = R if opts.round is None else opts.round
    if ctx.round < 1 or ctx.round & (ctx.round - 1):
        raise usage(f"-R {ctx.round:#x}: the rounding must be a power of two")
    refuse_small_round(ctx, R)
    if fmt.gensections is not None:
        with ctx.phase("gensections"):
            fmt.gensections(ctx)
    if ctx.arch.gensections is not None:
        with ctx.phase("gensections"):
            ctx.arch.gensections(ctx)
    with ctx.phase("dodata"):
        dodata(ctx)
    if ctx.arch.thunks:
        with ctx.phase("thunks"):
            from .thunks import add as add_thunks
            add_thunks(ctx)
    if opts.log and fmt.notes is not None:
        for line in fmt.notes(ctx):
            opts.log(f"minild: {line}")
    with ctx.phase("address"), addresses_fit(ctx):
        address(ctx)
    with ctx.phase("layout"), addresses_fit(ctx):
        ctx.filesize = layout(ctx)
        symaddrs(ctx)
        if fmt.layout is not None:
            ctx.filesize = fmt.layout(ctx, ctx.filesize)
        heap.give_back()
    warn_moved_text(ctx)
    # At this point, memory layout is fixed: addresses, file offsets, the file size.
    if opts.no_output:
        return ctx
    if not opts.externallink:
        write_output(ctx, opts.output)
        return ctx
    # tempfile and shutil (with bz2, lzma, random, ...) would cost every
    # start their imports (measured: docs/performance.md, 'Figures behind the
    # code'): imported only for this path.
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


# The smallest page each format's loader maps segments in: Linux maps ELF
# PT_LOADs with mmap, whose offsets and addresses agree modulo the page (4 KiB
# is the smallest page of every Linux arch minild writes); plan 9 pages are 4
# KiB (BY2PG); macOS pages are 16 KiB on arm64, 4 KiB on amd64. PE's
# SectionAlignment has its own rules (format.pe), wasm has no pages.
MIN_PAGE = {"elf": ("Linux's ELF loader", lambda arch: 0x1000),
            "plan9": ("plan 9's loader", lambda arch: 0x1000),
            "macho": ("macOS's loader", lambda arch: 0x4000 if arch.name == "arm64" else 0x1000)}


def refuse_small_round(ctx: Link, default: int) -> None:
    """refuse_small_round refuses an -R below the loader's page: the output
    would be written but could not be loaded (its segments would not sit at
    their file offsets modulo the page)."""
    loader, page = MIN_PAGE.get(ctx.format.name, (None, None))
    if page is None or ctx.opts.round is None:
        return
    need = page(ctx.arch)
    if ctx.round < need:
        raise usage(f"-R {ctx.round:#x}: below the page size: {loader} maps "
                    f"segments in pages of {need:#x} bytes, so -R must be at least {need:#x} "
                    f"(the default for {ctx.arch.name} is {default:#x})")


def warn(ctx: Link, text: str) -> None:
    """warn records a warning and hands it to the caller's opts.warn."""
    ctx.warnings.append(text)
    if ctx.opts.warn is not None:
        ctx.opts.warn(text)


def warn_moved_text(ctx: Link) -> None:
    """warn_moved_text says when -T asked for an address that the first
    section's alignment moved (formats that put .text at -T: ELF, plan 9)."""
    if ctx.opts.text_addr is None or ctx.format.name not in ("elf", "plan9", "elfrel"):
        return
    first = next((s.sections[0] for s in ctx.segments if s.loaded and s.sections), None)
    if first is None or first.addr == ctx.text_addr:
        return
    warn(ctx, f"-T {ctx.text_addr:#x}: {first.name} starts at {first.addr:#x}, not at -T: "
              f"its alignment is {first.align:#x}; say -T {first.addr:#x} (or another multiple "
              f"of {first.align:#x}) to put it where you mean")


def write_output(ctx: Link, path: str) -> None:
    """write_output runs mmap, asmb, asmb2 and munmap into path (atomically)."""
    opts = ctx.opts
    use_mmap = opts.mmap and ctx.format.use_mmap
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
                # The input sections are in the output now; their bytes (in
                # the heap and the readers' shared memory, which goes with its
                # last view) are freed before asmb2 allocates the symbol table.
                ctx.sec_data = None
            with ctx.phase("asmb2"):
                ctx.format.asmb2(ctx, out)
        finally:
            with ctx.phase("munmap"):
                if out.mode == "mmap":
                    out.munmap()


# --- loadlib -------------------------------------------------------------

def loadlib(ctx: Link) -> None:
    """loadlib reads every object and resolves symbols: each symbol entry gets
    the id of the entry that defines it (sym_res), relocations get global ids."""
    d = Diagnostics()
    with ctx.phase("read"):
        ahead = ctx.opts.ahead
        decoded = ahead.collect() if ahead is not None else {}
        if ahead is not None:
            ahead.handed_over()
        if ctx.opts.log and ahead is not None:
            ctx.opts.log(f"minild: read ahead: decoded {len(decoded)} of "
                         f"{len(ctx.opts.objects)} objects while starting")
        from . import archive   # archives among the inputs: loaded lazily (archive.py)
        paths, libs, at = archive.split(ctx.opts.objects)
        if libs:
            decoded = {j: decoded[i] for j, i in enumerate(at) if i in decoded}
        # Shared memory that holds only columns (loader._unship, readahead._unpack).
        spent: list = ahead.spent if ahead is not None else []
        read = read_objects(paths, ctx.opts.jobs, decoded,
                            ctx.bench.tally("objects read", len(paths)), spent)
    objs = [o for o in read if not isinstance(o, LinkError)]
    if len(objs) < len(read):
        report_exactly(paths)
    if libs:
        with ctx.phase("archives"):
            members, ctx.archive_loads = archive.pull(
                objs, libs, ctx.opts.entry or (ctx.format.entry if ctx.format else "_start"),
                ctx.opts.log)
            objs += members
    if not objs:
        raise fail("no input files")
    first = objs[0]
    for o in objs[1:]:
        if o.arch != first.arch:
            d.error(f"{o.path} is incompatible with {first.path}: arch {o.arch} is not "
                    f"{first.arch}")
    d.check()
    ctx.arch = archreg.lookup(first.arch)
    if ctx.format is None:
        ctx.format = formats.lookup(formats.default_for(ctx.arch))
    fmt = ctx.format
    ctx.entry_name = ctx.opts.entry or fmt.entry
    if fmt.name != "wasm" and (ctx.opts.stack_size is not None or ctx.opts.stack_first
                               or ctx.opts.initial_memory is not None):
        raise usage("--stack-size, --stack-first and --initial-memory: only for wasm output")
    if ctx.arch.part(fmt.part) is None:   # before resolution: a usage error, not the input's
        raise usage(f"-H {fmt.name}: the {fmt.name} format is not available for arch "
                    f"{ctx.arch.name} (the objects' arch); it is for: "
                    + ", ".join(formats.arches_for(fmt)))
    ctx.objects = objs

    with ctx.phase("columns"):
        columns(ctx, objs, spent)
        r = ctx.relocs
        if not bounds_ok(ctx.sec_size, ctx.sec_kind, ctx.arch.widths, ctx.sym_sec,
                         ctx.sym_value, r.sec, r.off, r.type):
            report_exactly(ctx.opts.objects)
    with ctx.phase("resolve"):
        resolve(ctx)
    refuse_big_align(ctx)
    if ctx.arch.check is not None and not ctx.format.allow_undefined:
        ctx.arch.check(ctx)


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


def refuse_big_align(ctx: Link) -> None:
    """refuse_big_align refuses sections aligned more than --max-align (64
    KiB by default): a tiny object asking for 2**31 would cost gigabytes of
    output and memory (docs/reliability.md)."""
    cap = ctx.opts.max_align
    if cap < 1 or cap & (cap - 1) or cap > 1 << 31:
        raise usage(f"--max-align {cap:#x}: expected a power of two from 1 to 0x80000000")
    big = np.flatnonzero(ctx.sec_align > cap)
    if not len(big):
        return
    d = Diagnostics()
    for g in big.tolist():
        o = int(ctx.sec_obj[g])
        first = int(np.flatnonzero(ctx.sec_obj == o)[0])
        d.error(f"{ctx.objects[o].path}: $.sections[{g - first}].align: alignment "
                f"{int(ctx.sec_align[g]):#x} of section {ctx.sec_name[g]} is larger than "
                f"{cap:#x} (--max-align raises the limit)")
    d.check()


class addresses_fit:
    """addresses_fit turns an address that overflows minild's 64-bit
    arithmetic in address and layout (a -T or -R near 2**63 or above) into
    a usage error."""

    def __init__(self, ctx: Link):
        self.ctx = ctx

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and issubclass(exc_type, OverflowError):
            raise usage(f"-T {self.ctx.text_addr:#x}, -R {self.ctx.round:#x}: the output's "
                        "addresses do not fit in 63 bits") from None
        return False
