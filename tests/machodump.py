"""machodump: an independent oracle for Mach-O files.

minild's Mach-O output is checked by a reader minild did not write: Go's standard
library package debug/macho, driven by the small program in tests/go/machodump.
`machodump(path)` returns what that package sees as a dict:

    {"cpu", "cpu_name", "subcpu", "type", "flags", "ncmd", "cmdsz",
     "loads":    [{"cmd", "name", "size"}, ...],      # every load command, names from our table
     "segments": [{"name", "addr", "memsz", "offset", "filesz", "maxprot", "prot", "nsect", "flag"}, ...],
     "sections": [{"name", "seg", "addr", "size", "offset", "align", "reloff", "nreloc", "flags"}, ...],
     "symbols":  [{"name", "type", "sect", "desc", "value"}, ...],
     "indirect": [...], "dysymtab": {...} | None,
     "dylibs":   [...],                               # File.ImportedLibraries
     "imported": [...]}                               # File.ImportedSymbols

The Go program reads every segment's and section's data, so a file shorter than its
load commands claim is an error (debug/macho alone accepts a segment past EOF).

It is built once per test session, offline (GOTOOLCHAIN=local, GOPROXY=off), with the
same Go workspace as tests/plan9dump.py. Go comes from Debian's golang-go; without it
the tests fail, they never skip.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from plan9dump import go_oracle, oracle_json, oracle_run


def machodump_binary() -> Path:
    """machodump_binary builds tests/go/machodump for this machine, once per session."""
    return go_oracle("machodump")


def machodump_run(path) -> subprocess.CompletedProcess:
    """machodump_run runs the oracle on path and returns the finished process, whatever its status."""
    return oracle_run("machodump", path)


def machodump(path) -> dict:
    """machodump parses the Mach-O file at path with Go's debug/macho: the dict described
    in this module's docstring, or an AssertionError with Go's message."""
    return oracle_json("machodump", path)
