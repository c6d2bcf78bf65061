"""__main__: the `minild` command's entry point (the console script, python -m minild).

A link runs with the cyclic garbage collector off (cli.link_cmd says why).
Turned off here, before click, msgspec and the rest are imported, it also
spares the collector's scans of the objects those imports leave behind,
without changing anything for a program that only imports minild.cli
(measured: docs/performance.md, 'Figures behind the code').
"""

import gc
import signal
import sys


def main() -> None:
    if sys.argv[1:2] == ["link"]:
        gc.disable()
    # A write past a file-size limit (ulimit -f) fails with EFBIG, which
    # minild reports, instead of killing the process (CPython ignores SIGXFSZ
    # already; said here so that it does not depend on it).
    if hasattr(signal, "SIGXFSZ"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        from .cli import main as cli
    except (MemoryError, ImportError, OSError) as e:
        # Under a tight memory limit (ulimit -v) even click or msgspec may
        # fail to load: that is "out of memory", not a traceback.
        if not isinstance(e, MemoryError):
            from .heap import headroom, looks_like_oom
            if not (looks_like_oom(e) or headroom() is not None):
                raise
        sys.stderr.write(f"error: out of memory (while loading the linker: {type(e).__name__})\n")
        sys.exit(1)

    cli()


if __name__ == "__main__":
    main()
