"""listing: which symbol entries an output's symbol table or the link map lists.

Shared by the output formats' symbol tables and by mapfile (-M), after
layout: it reads the link's resolved columns, nothing else.
"""

from __future__ import annotations

import numpy as np

from .vocab import IMPORT, Bind, SymType


def listed_symbols(ctx) -> tuple[np.ndarray, np.ndarray]:
    """listed_symbols returns the symbol entries a symbol table or map lists:
    named locals that are not section symbols, and the winning definition of
    each global; only those in sections the output has (-s drops DWARF) or
    absolute/undefined ones."""
    bind, typ, sec = ctx.sym_bind, ctx.sym_type, ctx.sym_sec
    # Imports not placed by the format (gensections) are not in the program.
    placed = ((sec < 0) & (sec != IMPORT)) | (ctx.sec_out[np.maximum(sec, 0)] >= 0)
    loc = np.flatnonzero((bind == Bind.LOCAL) & (typ != SymType.SECTION) & placed)
    named = ctx.names.length[loc] > 0
    glob = np.flatnonzero((bind != Bind.LOCAL) & (ctx.sym_res == np.arange(len(bind))) & placed)
    return loc[named], glob
