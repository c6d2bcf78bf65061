"""minild: a small, strict linker for a documented JSON object format.

The pipeline lives in `minild.link`; the command line in `minild.cli`. From
Python (README.md, 'Using minild from Python'):

    import minild
    ctx = minild.link_objects(["a.obj", "b.obj"], output="prog", entry="_start")
    info = minild.explain_symbol("printf", ["a.obj", "b.obj"])

(Not minild.link and minild.explain: those names are the modules minild.link
and minild.explain once they are imported.)

Bad input raises minild.LinkError (exit status 1 on the command line), a
command line that asks for what cannot be minild.UsageError (status 2); each
has .diags, the located messages (Diag.render() is the CLI's text).
Importing minild costs nothing: numpy and the linker load on the first call.
"""

__version__ = "0.1.0"

__all__ = ["link_objects", "explain_symbol", "LinkError", "UsageError", "Options"]


def link_objects(objects, output="a.out", **options):
    """link_objects links objects (paths of minild objects) into output and returns
    the link's context: ctx.entry_addr, ctx.outsections (name, addr, size),
    ctx.segments, ctx.warnings, ... options are minild.link.Options' fields:
    entry, headtype ("elf", "pe", "macho", "plan9", "wasm"), text_addr, round,
    strip, jobs, mmap, externallink, libc, max_align, ..."""
    from .link import Options, link as run
    return run(Options(objects=[str(o) for o in objects], output=str(output), **options))


def explain_symbol(symbol, objects, **options) -> dict:
    """explain_symbol is `minild explain --json`: where symbol is defined, which
    definitions lost, who refers to it, where it went. Nothing is written."""
    from .explain import explain as why
    from .link import Options, link as run
    ctx = run(Options(objects=[str(o) for o in objects], output="/dev/null", no_output=True,
                      **options))
    return why(ctx, symbol)


def __getattr__(name):
    # The error types and Options, loaded when first asked for.
    if name in ("LinkError", "UsageError"):
        from . import errors
        return getattr(errors, name)
    if name == "Options":
        from .link import Options
        return Options
    raise AttributeError(f"module 'minild' has no attribute {name!r}")
