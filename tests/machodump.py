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

import json
import subprocess
from pathlib import Path

from plan9dump import GO_MODULE, go_run, workdir

_binary: Path | None = None


def machodump_binary() -> Path:
    """machodump_binary builds tests/go/machodump for this machine, once per session."""
    global _binary
    if _binary is None:
        out = workdir() / "bin" / "machodump"
        go_run("build", "-trimpath", "-o", str(out), "./machodump", cwd=GO_MODULE)
        _binary = out
    return _binary


def machodump_run(path) -> subprocess.CompletedProcess:
    """machodump_run runs the oracle on path and returns the finished process, whatever its status."""
    return subprocess.run([str(machodump_binary()), str(path)], capture_output=True, text=True, timeout=120)


def machodump(path) -> dict:
    """machodump parses the Mach-O file at path with Go's debug/macho: the dict described
    in this module's docstring, or an AssertionError with Go's message."""
    p = machodump_run(path)
    if p.returncode != 0:
        raise AssertionError(f"machodump {path} failed ({p.returncode}):\n{p.stderr}{p.stdout}")
    return json.loads(p.stdout)
