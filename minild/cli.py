"""cli: the `minild` command (click): link, inspect, import.

The CLI turns flags into Options, runs the pipeline, and renders what comes
back: LinkErrors as located messages on stderr with exit status 1, usage errors
with status 2 (click's), the --bench table and the -M map. No traceback reaches
the user for bad input; an InternalError is reported as a bug.
"""

from __future__ import annotations

import gc
import os
import sys

# minild uses no BLAS; one OpenBLAS thread instead of one per core spares
# every run the CPU of starting the others (measured: docs/performance.md,
# 'Figures behind the code'). Must precede the first import of numpy.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import click

from . import __version__, heap, readahead
from .errors import InternalError, LinkError, UsageError
from .workers import DEFAULT_JOBS


class _Lazy:
    """_Lazy makes a rich Console on first use: rich's import is a sizeable
    part of a small link, and a successful link prints nothing (measured:
    docs/performance.md, 'Figures behind the code')."""

    def __init__(self, **kw):
        self.kw, self.console = kw, None

    def print(self, *a, **kw):
        if self.console is None:
            from rich.console import Console
            self.console = Console(highlight=False, soft_wrap=True, **self.kw)
        self.console.print(*a, **kw)


def Table(**kw):
    from rich.table import Table as T
    return T(**kw)


err = _Lazy(stderr=True)
out = _Lazy()


class Int(click.ParamType):
    """Int accepts decimal, 0x hex, 0o octal and 0b binary numbers."""

    name = "integer"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        try:
            v = int(value, 0)
        except ValueError:
            self.fail(f"{value!r} is not a number (decimal or 0x hex)", param, ctx)
        if not 0 <= v < 1 << 64:
            self.fail(f"{value!r} is out of range: expected 0 to 0xffffffffffffffff", param, ctx)
        return v


def report(e: LinkError) -> None:
    for d in e.diags:
        lines = d.render().split("\n")
        err.print(f"[bold red]error:[/] {lines[0]}", markup=True, highlight=False)
        for line in lines[1:]:
            err.print(line, markup=False)
    if e.suppressed:
        err.print(f"[bold red]error:[/] too many errors emitted: {e.suppressed} more not shown",
                  markup=True)


def plural(n: int, word: str) -> str:
    """plural: "1 object", "2 objects"."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def warning(text: str) -> None:
    """warning prints one warning line on stderr (the link goes on)."""
    from rich.markup import escape
    err.print(f"[bold yellow]warning:[/] {escape(text)}", markup=True, highlight=False)


def run(fn, *args, **kw):
    """run calls fn and turns errors into messages and exit statuses: 1 for
    bad input, 2 for a command line that asks for what cannot be (click's
    usage status), 3 for a bug."""
    try:
        return fn(*args, **kw)
    except UsageError as e:
        report(e)
        sys.exit(2)
    except LinkError as e:
        report(e)
        sys.exit(1)
    except InternalError as e:
        err.print(f"minild: internal error (a bug in minild, please report it): {e}",
                  markup=False)
        sys.exit(3)
    except KeyboardInterrupt:
        sys.exit(130)
    except MemoryError:   # before Exception: not a bug (docs/reliability.md)
        out_of_memory()
    except Exception as e:  # a bug: say so in one line; MINILD_TRACEBACK=1 shows where
        if os.environ.get("MINILD_TRACEBACK"):
            raise
        err.print(f"minild: internal error (a bug in minild, please report it): "
                  f"{type(e).__name__}: {e}", markup=False)
        sys.exit(3)


def out_of_memory(detail: str = "") -> None:
    """out_of_memory says so, plainly (rich may not load), and exits 1."""
    sys.stderr.write(f"error: out of memory{detail}\n")
    sys.stderr.flush()
    os._exit(1)


def load(module: str, *names: str):
    """load imports minild.MODULE (numpy with it) inside the error handling:
    under a memory limit (ulimit -v) the import itself may fail, with a
    MemoryError, or an ImportError or other error from numpy's import
    machinery; that is "out of memory" (exit 1), not a traceback."""
    import importlib
    room = heap.address_room()
    if not loads_in_a_child(module, room):
        out_of_memory(f" (while loading the linker, under a virtual memory limit: "
                      f"{room >> 20} MiB of address space left)")
    try:
        m = importlib.import_module(f"minild.{module}")
    except MemoryError:
        out_of_memory(" (while loading the linker)")
    except Exception as e:
        if heap.looks_like_oom(e) or heap.headroom() is not None:
            # numpy's ImportError ends with the cause ("Original error was: ...").
            why = str(e).strip().rpartition("Original error was:")[2].strip().splitlines()
            out_of_memory(f" (while loading the linker, under a memory limit: "
                          f"{type(e).__name__}{': ' + why[0] if why else ''})")
        raise
    return [getattr(m, n) for n in names]


# Under this much address space left (RLIMIT_AS, RLIMIT_DATA), the linker is
# loaded in a forked child first (loads_in_a_child). Loading it maps about 82
# MiB here (numpy, its OpenBLAS and OpenBLAS's 32 MiB buffer): a sixth of this.
PROBE_BELOW = 512 << 20


def loads_in_a_child(module: str, room: int | None) -> bool:
    """loads_in_a_child imports minild.MODULE (numpy with it) in a forked
    child when little address space is left, and says whether the child
    lived. numpy's OpenBLAS maps a 32 MiB buffer as the library loads; when
    that fails it prints its own message and exits the process (exit(1) from
    C, at 70-100 MiB of `ulimit -v` here), where no handler of ours runs. The
    child has this process's mappings, so it fails where this one would, and
    this one can say "out of memory" instead. Python errors in the child are
    left for this process to meet and report (load). Without a limit, or
    with room to spare, nothing is forked (True)."""
    if room is None or room >= PROBE_BELOW or "numpy" in sys.modules:
        return True
    import importlib
    try:
        pid = os.fork()
    except OSError as e:
        return e.errno != 12   # ENOMEM: out of memory; anything else: load as usual
    if pid == 0:
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)   # OpenBLAS's words are not ours to print
            importlib.import_module(f"minild.{module}")
        except BaseException:
            pass
        os._exit(0)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="minild")
def main():
    """minild: link JSON objects into executables.

    \b
    Examples:
      minild link examples/hello/amd64.obj -o hello && ./hello
      minild import foo.o -o foo.obj
      minild inspect foo.obj
      minild explain printf *.obj

    \b
    Shell completion (bash; zsh_source and fish_source for the others):
      eval "$(_MINILD_COMPLETE=bash_source minild)"
    """


LINK_EXAMPLES = [
    ("minild link a.obj b.obj -o prog", "link two objects into an ELF executable"),
    ("minild link -T 0x400000 -e main *.obj", "choose .text's address (hex) and the entry"),
    ("minild link -H pe hello.obj -o hello.exe", "a Windows executable (kernel32 imports)"),
    ("minild link *.obj -M map.html --map-format html", "the layout, drawn to scale"),
    ("minild link *.obj --trace t.json", "phases and workers, for ui.perfetto.dev"),
    ("minild link --externallink --libc main.obj -o m", "let cc finish, against the C library"),
]


class LinkCommand(click.Command):
    """LinkCommand's help ends with the output formats and the arches of each:
    read from the registries when help is asked for, not at every start."""

    def format_epilog(self, ctx, formatter):
        from . import format as formats
        rows = []
        for name in formats.names():
            rows.append((name, ", ".join(formats.arches_for(formats.lookup(name)))))
        with formatter.section("Output formats (-H) and their arches"):
            formatter.write_dl(rows)
        with formatter.section("Examples"):
            w = max(len(c) for c, _ in LINK_EXAMPLES)
            for c, what in LINK_EXAMPLES:
                formatter.write(f"{'':{formatter.current_indent}}{c:<{w}}  # {what}\n")


@main.command("link", cls=LinkCommand,
              short_help="Link objects (JSON, or ar archives of them) into an executable.")
@click.argument("objects", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-o", "--output", default="a.out", show_default=True, metavar="FILE",
              help="Output file.")
@click.option("-e", "--entry", default=None, metavar="SYM",
              help="Entry symbol (default: _start; _main for -H macho).")
@click.option("-H", "--headtype", default=None, metavar="FMT",
              help="Output format (header type), see the list below; default elf (wasm for "
                   "wasm objects).")
@click.option("-T", "--text-addr", type=Int(), default=None, metavar="ADDR",
              help="Address of the start of .text, hex accepted (default: the format's for "
                   "the arch, e.g. 0x401000 for ELF amd64).")
@click.option("-R", "--round", "round_", type=Int(), default=None, metavar="N",
              help="Segment rounding, a power of two at least the loader's page (default: "
                   "the format's for the arch, "
                   "e.g. ELF's max page size).")
@click.option("-s", "--strip", is_flag=True, help="Omit the symbol table and DWARF.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None, metavar="N",
              help="Workers for reading objects and writing blocks (default: the cores, "
                   "up to 4); the output is the same for any N.")
@click.option("--no-mmap", is_flag=True, help="Write with a buffered file instead of mmap.")
@click.option("--max-align", type=Int(), default=1 << 16, show_default=True, metavar="N",
              help="The largest section alignment accepted (a power of two; up to 2**31).")
@click.option("--bench", is_flag=True, help="Print a table of phase times and memory.")
@click.option("-q", "--quiet", is_flag=True,
              help="No progress display and no warnings (errors are still printed).")
@click.option("--trace", "trace_path", type=click.Path(dir_okay=False), default=None,
              metavar="FILE",
              help="Write the phases and the workers' shares as Chrome trace JSON (lld's "
                   "--time-trace; load it in ui.perfetto.dev).")
@click.option("-M", "--map", "map_path", type=click.Path(dir_okay=False, allow_dash=True),
              default=None, metavar="FILE",
              help="Write a link map: output sections, input sections, symbols ('-': stdout).")
@click.option("--why", multiple=True, metavar="SYM",
              help="After the link, say why SYM is what it is (minild explain; repeatable).")
@click.option("--print-map", is_flag=True, help="Write the link map to stdout (the same as -M -).")
@click.option("--map-format", type=click.Choice(["text", "json", "html"]), default="text",
              show_default=True,
              help="The map's form: lld's text columns, JSON for tools, or one self-contained "
                   "HTML page that draws segments and sections to scale.")
@click.option("-v", "--verbose", is_flag=True,
              help="Say what the link did (and the external linker's command line).")
@click.option("--externallink", is_flag=True,
              help="Write an ELF relocatable object and let an external linker finish.")
@click.option("--extld", default=None,
              help="External linker (default: the target's GNU ld, e.g. aarch64-linux-gnu-ld; "
                   "cc with --libc).")
@click.option("--extldflags", default="", help="Extra flags for the external linker.")
@click.option("--tmpdir", type=click.Path(file_okay=False), default=None,
              help="Directory for the external link's object (kept; default: a private "
                   "temporary directory, removed afterwards).")
@click.option("--libc", is_flag=True,
              help="With --externallink: link against the C library (cc; main is the entry).")
@click.option("--image-base", type=Int(), default=None,
              help="-H pe: the image base (the same as -T for PE; default lld's: 0x140000000 "
                   "for 64-bit, 0x400000 for x86).")
@click.option("--section-alignment", type=Int(), default=None,
              help="-H pe: SectionAlignment (the same as -R for PE; default 0x1000).")
@click.option("--file-alignment", type=Int(), default=None,
              help="-H pe: FileAlignment, a power of two from 0x200 (the default) to 0x10000; "
                   "-R sets SectionAlignment (default 0x1000).")
@click.option("--subsystem", type=click.Choice(["console", "windows"]), default=None,
              help="-H pe: the subsystem (default console).")
@click.option("--no-dynamicbase", is_flag=True,
              help="-H pe: no base relocations; the image loads only at its image base.")
@click.option("--macos-version", default=None,
              help="-H macho: the minimum macOS version in LC_BUILD_VERSION (default 11.0).")
@click.option("--stack-size", type=Int(), default=None,
              help="wasm: the stack's size in bytes (default 64 KiB, after the data).")
@click.option("--stack-first", is_flag=True,
              help="wasm: the stack at the bottom of memory, the data after it.")
@click.option("--initial-memory", type=Int(), default=None,
              help="wasm: the memory's initial size in bytes, a multiple of 64 KiB (default: "
                   "what data and stack need).")
@click.option("--codesign/--no-codesign", default=None,
              help="-H macho: an ad-hoc code signature (default: on for arm64, off for amd64).")
@click.option("-L", "libdirs", multiple=True, type=click.Path(file_okay=False),
              help="A directory -l searches (repeatable, searched in order).")
@click.option("-l", "libs", multiple=True,
              help="An archive libNAME.a from the -L directories (repeatable); archives load "
                   "members lazily, in any order (minild/archive.py).")
def link_cmd(objects, output, entry, headtype, text_addr, round_, strip, jobs, no_mmap, bench,
             map_path, map_format, verbose, externallink, extld, extldflags, tmpdir, libc,
             image_base, section_alignment, file_alignment, subsystem, no_dynamicbase,
             stack_size, stack_first, initial_memory, macos_version, codesign, max_align,
             libdirs=(), libs=(), trace_path=None, print_map=False, quiet=False, why=()):
    """Link OBJECTS (minild JSON objects, any file extension; `ar` archives of them) into
    an executable."""
    if libs:
        from .archive import find_libs
        objects = tuple(objects) + tuple(run(find_libs, list(libs), list(libdirs)))
    if print_map:
        if map_path not in (None, "-"):
            raise click.UsageError("--print-map writes the map to stdout; -M names a file")
        map_path = "-"
    if (extld or extldflags or tmpdir or libc) and not externallink:
        raise click.UsageError("--extld, --extldflags, --tmpdir and --libc need --externallink")
    pe_flags = [f for f, v in (("--image-base", image_base is not None),
                                ("--section-alignment", section_alignment is not None),
                                ("--file-alignment", file_alignment is not None),
                                ("--subsystem", subsystem is not None),
                                ("--no-dynamicbase", no_dynamicbase)) if v]
    if pe_flags and headtype != "pe":
        raise click.UsageError(f"{', '.join(pe_flags)}: only for -H pe")
    if image_base is not None:
        if text_addr is not None and text_addr != image_base:
            raise click.UsageError("-T and --image-base say two image bases")
        text_addr = image_base
    if section_alignment is not None:
        if round_ is not None and round_ != section_alignment:
            raise click.UsageError("-R and --section-alignment say two section alignments")
        round_ = section_alignment
    macho_flags = [f for f, v in (("--macos-version", macos_version is not None),
                                   ("--codesign/--no-codesign", codesign is not None)) if v]
    if macho_flags and headtype != "macho":
        raise click.UsageError(f"{', '.join(macho_flags)}: only for -H macho")
    if externallink and headtype not in (None, "elf"):
        raise click.UsageError(f"--externallink writes an ELF object for an external linker; "
                               f"it cannot be used with -H {headtype}")
    # A link is a short batch process whose data are columns, not Python
    # objects: the cyclic collector finds almost nothing but keeps scanning
    # what numpy's import leaves behind; reference counting frees the rest.
    # Off, a link is faster, and this process ends with os._exit anyway
    # (measured: docs/performance.md, 'Figures behind the code').
    gc.disable()
    jobs = jobs or DEFAULT_JOBS
    # Decoding starts now, in a forked child, while this process imports
    # numpy and the rest of the linker (minild.readahead).
    size = readahead.sizes(list(objects))
    ahead = readahead.start(list(objects), jobs, size)
    try:
        run(heap.tune, sum(s for s in size if s is not None))
        Options, link = run(load, "link", "Options", "link")

        opts = Options(objects=list(objects), output=output, entry=entry, headtype=headtype,
                       text_addr=text_addr, round=round_, strip=strip, jobs=jobs,
                       mmap=not no_mmap, externallink=externallink, extld=extld,
                       extldflags=extldflags, tmpdir=tmpdir, libc=libc, ahead=ahead,
                       file_align=file_alignment, subsystem=subsystem or "console",
                       dynamicbase=not no_dynamicbase, macos_version=macos_version or "11.0",
                       codesign=codesign, max_align=max_align, stack_size=stack_size,
                       initial_memory=initial_memory, stack_first=stack_first,
                       log=(lambda line: err.print(line, markup=False)) if verbose else None,
                       warn=None if quiet else warning)

        def go():
            from .outfile import refuse_same
            refuse_same(output, list(objects), map_path if map_path != "-" else None)
            if trace_path:
                import tempfile
                from . import workers
                fd, workers.TRACE_PATH = tempfile.mkstemp(prefix="minild-trace-")
                os.close(fd)
            from . import bench as benchmod, progress
            shown = None
            if progress.wanted(quiet):
                n = len(objects)
                benchmod.LISTENER = shown = progress.Progress(
                    f"linking {n} object{'s' if n != 1 else ''} into "
                    f"{os.path.basename(output)}")
            try:
                try:
                    ctx = link(opts)
                finally:
                    if shown is not None:
                        shown.stop()
                if map_path:
                    from .mapfile import write_map  # and json: only for -M
                    write_map(ctx, map_path, map_format)
                if trace_path:
                    from .trace import write_trace
                    write_trace(trace_path, ctx.bench, workers.TRACE_PATH)
            finally:
                if trace_path:
                    os.unlink(workers.TRACE_PATH)
            return ctx

        ctx = run(go)
    finally:
        if ahead is not None:
            ahead.cancel()   # a link that failed before reading: no child left behind
    if verbose:
        fmt = ctx.format.name
        n = len(objects)
        err.print(f"minild: linked {plural(n, 'object')} ({ctx.arch.name}, {fmt}) into "
                  f"{output}: {ctx.filesize} bytes before tables, entry {ctx.entry_addr:#x}, "
                  f"{plural(len(ctx.relocs.off), 'relocation')}, "
                  f"{plural(len(ctx.names), 'symbol')}", markup=False)
    if why:
        from .explain import explain, render
        for sym in why:
            click.echo(render(explain(ctx, sym)))
    if bench:
        print_bench(ctx.bench)
    # Like lld, skip tearing down a big link's heap (freeing every array of
    # a large link takes time and buys nothing; measured: docs/performance.md,
    # 'Figures behind the code'): the output is closed and renamed, nothing is
    # left to flush but the standard streams.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def print_bench(b) -> None:
    rows = b.ordered() + [b.total()]   # before rich's import (Table) adds its time to "total"
    t = Table(title="minild phases")
    for c in ("phase", "wall ms", "cpu ms", "faults", "rss MiB", "peak MiB"):
        t.add_column(c, justify="right" if c != "phase" else "left")
    for r in rows:
        t.add_row("  " * r.depth + r.phase, f"{r.wall * 1e3:.1f}", f"{r.cpu * 1e3:.1f}",
                  str(r.faults), f"{r.rss / 2**20:.1f}", f"{r.peak / 2**20:.1f}")
    err.print(t)


@main.command("explain",
              short_help="Say where a symbol is defined, who refers to it, where it went.")
@click.argument("symbol")
@click.argument("objects", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
@click.option("-H", "--headtype", default=None, help="Output format, as for link.")
@click.option("-e", "--entry", default=None, help="Entry symbol, as for link.")
@click.option("-T", "--text-addr", type=Int(), default=None, metavar="ADDR",
              help="Address of .text, as for link (hex accepted).")
@click.option("-R", "--round", "round_", type=Int(), default=None, metavar="N",
              help="Segment rounding, as for link.")
def explain_cmd(symbol, objects, as_json, headtype, entry, text_addr, round_):
    """Say why SYMBOL is what it is in the link of OBJECTS.

    \b
    Where it is defined and which definitions lost (weak, duplicate), who
    refers to it (object, section, function) with which relocations, and
    its output section, address and size. The link runs up to layout;
    nothing is written.

    \b
    Examples:
      minild explain msg examples/hello/amd64.obj
      minild explain --json counter examples/multi/*.obj
    """
    Options, link = run(load, "link", "Options", "link")
    opts = Options(objects=list(objects), output=os.devnull, entry=entry, headtype=headtype,
                   text_addr=text_addr, round=round_, jobs=1, no_output=True, warn=warning)

    def go():
        from .explain import explain
        try:
            return explain(link(opts), symbol)
        except LinkError as e:
            # A link with undefined symbols stops at resolve; what explain
            # needs (definitions, references) is there when undefined
            # symbols are allowed, as they are in --externallink's object.
            undefined = any(d.message.startswith("undefined") for d in e.diags)
            if not undefined or headtype not in (None, "elf"):
                raise
            import msgspec
            ctx = link(msgspec.structs.replace(opts, externallink=True))
            if ctx.format.name != "elfrel":
                raise
            x = explain(ctx, symbol)
            x["link_errors"] = [d.render() for d in e.diags]
            x.pop("address", None), x.pop("output_section", None), x.pop("segment", None)
            for r in x["references"]:
                r.pop("place", None)
            return x

    from .errors import LinkError
    e = run(go)
    if as_json:
        import json
        click.echo(json.dumps(e, indent=1))
    else:
        from .explain import render
        click.echo(render(e))
    if not e["defined"] and not e["references"]:
        hint = f"; did you mean {e['did_you_mean']}?" if e.get("did_you_mean") else ""
        err.print(f"error: {symbol}: no object defines or refers to it{hint}", markup=False)
        sys.stdout.flush()
        os._exit(1)
    sys.stdout.flush()
    os._exit(0)


@main.command("inspect",
              short_help="Show objects' sections, symbols, imports and relocations.")
@click.argument("objs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True,
              help="Print the objects as JSON: a list of {path, arch, sections, symbols, "
                   "imports, relocations}.")
def inspect_cmd(objs, as_json):
    """Show objects' sections, symbols, imports and relocations.

    \b
    Tables on a terminal; plain aligned columns when piped; --json for tools.
    Every file is shown; one that cannot be read is an error (exit 1) after
    the others.

    \b
    Examples:
      minild inspect examples/multi/*.obj
      minild inspect --json a.obj | jq '.[0].symbols'
    """
    read_object, = run(load, "loader", "read_object")
    from .errors import LinkError
    docs, failed = [], []
    for p in objs:
        try:
            docs.append(object_data(p, read_object(p)))
        except LinkError as e:
            failed.append(e)
            if not as_json:
                report(e)
            continue
        if not as_json:
            run(_show_object, docs[-1], sys.stdout.isatty())
    if as_json:
        import json
        click.echo(json.dumps(docs, indent=1))
        for e in failed:
            report(e)
    sys.exit(1 if failed else 0)


INSPECT_TABLES = (
    ("sections", ("#", "name", "kind", "align", "size", "relocs")),
    ("symbols", ("#", "name", "section", "value", "size", "binding", "type")),
    ("imports", ("symbol", "module", "name in the module")),
    ("relocations", ("section", "offset", "type", "symbol", "addend")),
)


def object_data(path, o) -> dict:
    """object_data is what inspect shows of one object, as plain data."""
    from . import arch as archreg
    from .loader import BINDINGS, KINDS, TYPES

    a = archreg.lookup(o.arch)
    where = {-1: "UND", -2: "ABS", -3: "IMPORT"}
    names = o.sym_name.tolist()
    d = {"path": path, "arch": o.arch}
    d["sections"] = [{"name": n, "kind": KINDS[o.sec_kind[i]], "align": int(o.sec_align[i]),
                      "size": int(o.sec_size[i]), "relocs": int((o.rel_sec == i).sum())}
                     for i, n in enumerate(o.sec_name)]
    d["symbols"] = []
    for i, n in enumerate(names):
        s = int(o.sym_sec[i])
        d["symbols"].append({"name": n, "section": where[s] if s < 0 else o.sec_name[s],
                             "value": int(o.sym_value[i]) % (1 << 64),
                             "size": int(o.sym_size[i]), "binding": BINDINGS[o.sym_bind[i]],
                             "type": TYPES[o.sym_type[i]]})
    d["imports"] = [{"symbol": names[k], "module": m, "name": n}
                    for k, m, n in sorted(o.imports)]
    d["relocations"] = [{"section": o.sec_name[o.rel_sec[k]], "offset": int(o.rel_off[k]),
                         "type": a.howtos[o.rel_type[k]].name, "symbol": names[o.rel_sym[k]],
                         "addend": int(o.rel_add[k])} for k in range(len(o.rel_off))]
    return d


def _rows(d: dict, table: str) -> list[tuple[str, ...]]:
    if table == "sections":
        return [(str(i), s["name"], s["kind"], str(s["align"]), f"{s['size']:#x}",
                 str(s["relocs"])) for i, s in enumerate(d["sections"])]
    if table == "symbols":
        return [(str(i), s["name"], s["section"], f"{s['value']:#x}", str(s["size"]),
                 s["binding"], s["type"]) for i, s in enumerate(d["symbols"])]
    if table == "imports":
        return [(x["symbol"], x["module"], x["name"]) for x in d["imports"]]
    return [(r["section"], f"{r['offset']:#x}", r["type"], r["symbol"], str(r["addend"]))
            for r in d["relocations"]]


def _show_object(d: dict, tty: bool) -> None:
    """_show_object prints one object: rich tables on a terminal, plain aligned
    columns (no box drawing, no colour) when piped."""
    if tty:
        out.print(f"{d['path']}: arch {d['arch']}", markup=False)
    else:
        sys.stdout.write(f"{d['path']}: arch {d['arch']}\n")
    for table, cols in INSPECT_TABLES:
        rows = _rows(d, table)
        if table == "imports" and not rows:
            continue
        if tty:
            t = Table(title=table)
            for c in cols:
                t.add_column(c)
            for r in rows:
                t.add_row(*r)
            out.print(t)
            continue
        w = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(cols)]
        head = "  ".join(c.ljust(w[i]) for i, c in enumerate(cols)).rstrip()
        lines = [f"\n{table}:", "  " + head]
        lines += ["  " + "  ".join(x.ljust(w[i]) for i, x in enumerate(r)).rstrip() for r in rows]
        sys.stdout.write("\n".join(lines) + "\n")
    if not tty:
        sys.stdout.write("\n")


@main.command("import",
              short_help="Turn ELF, COFF or wasm relocatable objects into minild objects.")
@click.argument("elf_objects", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True,
              help="The minild object to write; with several inputs, a directory (created if "
                   "needed) that gets NAME.obj for each NAME.o.")
@click.option("--compact", is_flag=True, help="Write the compact encoding (base64 columns).")
@click.option("--max-uncompressed", type=Int(), default=256 << 20, show_default=True,
              help="Bytes that an object's compressed sections (gcc -gz) may decompress to.")
@click.option("-q", "--quiet", is_flag=True, help="No progress display on a terminal.")
def import_cmd(elf_objects, output, compact, max_uncompressed, quiet):
    """Turn ELF relocatable objects (.o from GNU as, gcc or clang) into minild objects."""
    import_files, = run(load, "importer", "import_files")
    from . import progress
    shown = tally = None
    n = len(elf_objects)
    if progress.wanted(quiet):
        from .bench import Tally
        shown = progress.Progress(f"importing {n} object{'s' if n != 1 else ''}")
        shown("import", True)
        tally = Tally("objects converted", n)
        shown.counting(tally)
    try:
        run(import_files, list(elf_objects), output, compact, max_uncompressed, tally)
    finally:
        if shown is not None:
            shown.stop()


if __name__ == "__main__":
    main()
