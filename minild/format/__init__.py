"""format: the registry of output formats, keyed by header type (-H).

A format module provides `headr_size(ctx)` (bytes reserved before the first
section, asked by address), `asmb2(ctx, out)` (headers, symbol and string
tables, written after the sections) and `USE_MMAP` (False where mapping the
output makes no sense). The pipeline never branches on a format name.
"""

from __future__ import annotations

import importlib
from types import ModuleType

_MODULES = {"elf": "elf"}
# Formats chosen by other flags than -H (--externallink writes "elfrel").
_INTERNAL = {"elfrel": "elfrel"}


def names() -> list[str]:
    return list(_MODULES)


def lookup(name: str) -> ModuleType:
    """lookup returns the format module for a header type; KeyError if unknown."""
    mod = _MODULES.get(name) or _INTERNAL[name]
    return importlib.import_module(f"{__name__}.{mod}")
