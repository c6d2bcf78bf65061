"""resolve: loadlib's symbol resolution, names matched as columns.

Every non-local symbol entry is bound to its definition (sym_res): a strong
definition wins over weak ones, the first weak one among weaks, two strong
ones are an error (lld's words). An import (a symbol an object declares as
coming from a DLL, a dylib or a wasm module) defines its name after those, as
an import library's member would; a reference to `__imp_NAME` resolves to
NAME's import slot, an entry of its own that the format places (PE's IAT). Names referred to and defined by no object
may be linker-defined: the format's symbols (_etext, _end, ...) and the
arch's (.TOC.). Undefined references are reported with where they are made,
as lld reports them.
"""

from __future__ import annotations

import itertools

import numpy as np

from .errors import Diagnostics
from .names import Names, SymbolTable
from .vocab import ABS, IMPORT, UNDEF, Bind


def resolve(ctx) -> None:
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
    strong = np.flatnonzero((bind == Bind.GLOBAL) & defined)
    weak = np.flatnonzero((bind == Bind.WEAK) & defined)
    # Entries that may not be their own definition: undefined ones, weak ones
    # and imports.
    look = np.flatnonzero((bind != Bind.LOCAL) & ((sec == UNDEF) | (bind == Bind.WEAK)))
    if ctx.imports:
        imported = np.array(sorted(ctx.imports), np.int64)
        strong = strong[sec[strong] != IMPORT]
        weak = np.concatenate((weak, imported))   # after every real definition
        look = np.union1d(look, imported)
        _check_imports(ctx, d)
    table, dups = definitions(names, names.hashes(), strong, weak)
    for ids in dups:
        d.error(f"duplicate symbol: {names[ids[0]]}",
                *[f"defined at {ctx.section_site(int(sec[i]), int(ctx.sym_value[i]))}"
                  if sec[i] >= 0 else f"defined at {ctx.objects[ctx.sym_obj[i]].path}"
                  for i in ids])
        res[ids[1:]] = ids[0]  # a strong duplicate resolves to the first definition
    res[look] = table.lookup(look)
    table.forget_hashes()

    # Linker-defined symbols, for names referred to and defined by no object:
    # the format's and the arch's. (Not when another linker finishes the
    # link: it defines them itself.)
    external = ctx.format.allow_undefined
    ctx.linker_symbols = {}
    if not external:
        ctx.linker_symbols.update(ctx.format.linker_symbols)
        ctx.linker_symbols.update(ctx.arch.linker_symbols or {})
    unresolved = look[res[look] < 0]
    unresolved_names = names.tolist(unresolved)
    extra = sorted({x for x in unresolved_names if x in ctx.linker_symbols})
    # References to __imp_NAME, where NAME resolves to an import: its slot.
    slots = {}
    if ctx.imports:
        for x in sorted(set(unresolved_names)):
            if x.startswith("__imp_"):
                i = table.get(x[len("__imp_"):])
                if i is not None and i in ctx.imports:
                    slots[x] = i
        extra += list(slots)
    added = {name: n + j for j, name in enumerate(extra)}
    ctx.linker_defined = {x: added[x] for x in extra if x not in slots}
    ctx.import_slots = {added[x]: i for x, i in slots.items()}
    if extra:
        # sym_res is not the link's yet: add_symbols leaves it alone.
        k = ctx.add_object("<internal>")
        ctx.add_symbols(k, extra, ABS, 0)
        names, bind, sec = ctx.names, ctx.sym_bind, ctx.sym_sec
        res = np.concatenate((res, np.arange(n, n + len(extra))))
        res[unresolved] = [added.get(x, -1) for x in unresolved_names]
    ctx.sym_res = res
    ctx.globals = table
    if ctx.imports:
        _imports_used(ctx, d)

    r = ctx.relocs
    # Per symbol entry first: only a link with undefined symbols looks at its
    # (millions of) relocations to find the referencing places.
    unresolved_strong = (res < 0) & (bind == Bind.GLOBAL)
    if unresolved_strong.any() and not external:
        missing = unresolved_strong[r.sym]
        refs: dict[str, list[int]] = {}
        for k in np.flatnonzero(missing).tolist():
            refs.setdefault(names[r.sym[k]], []).append(k)
        for name, ks in refs.items():
            shown = ks[:UNDEF_REFS]
            notes = [f"referenced by {ctx.ref_site(k)}" for k in shown]
            if len(ks) > len(shown):
                notes.append(f"referenced {len(ks) - len(shown)} more times")
            d.error(f"undefined symbol: {name}", *notes, *_did_you_mean(ctx, name))
    e = ctx.global_sym(ctx.entry_name)
    if e is None and not external:
        d.error(f"undefined entry symbol: {ctx.entry_name} (no object defines it; "
                "choose another with -e/--entry)")
    ctx.entry_sym = e
    d.check()


def _did_you_mean(ctx, name: str) -> list[str]:
    """_did_you_mean is lld's `>>> did you mean: NAME` and `>>> defined in:
    FILE` under an undefined symbol when a defined symbol is spelled nearly
    the same (difflib); a large link compares only names of a similar length
    that start alike."""
    from .suggest import closest
    if not hasattr(ctx, "_defined_names"):
        ids = np.flatnonzero(ctx.sym_sec != -1)
        ctx._defined_names = dict(zip(ctx.names.tolist(ids), ids.tolist()))
    known = ctx._defined_names
    if len(known) > 20000:
        cand = [k for k in known
                if k[:1].lower() == name[:1].lower() and abs(len(k) - len(name)) <= 2]
    else:
        cand = list(known)
    c = closest(name, [k for k in cand if k], cutoff=0.75)
    if c is None:
        return []
    return [f"did you mean: {c}", f"defined in: {ctx.objects[ctx.sym_obj[known[c]]].path}"]


UNDEF_REFS = 50  # references listed per undefined symbol before "referenced N more times"


def _check_imports(ctx, d: Diagnostics) -> None:
    """_check_imports: one name imported from two modules is an error (which
    would the program get?); the same import declared twice (two objects
    that both list a DLL's function) is one import."""
    first: dict[str, int] = {}
    for i, (module, name) in sorted(ctx.imports.items()):
        sym = ctx.names[i]
        j = first.setdefault(sym, i)
        m2, n2 = ctx.imports[j]
        if j != i and (m2.lower(), n2) != (module.lower(), name):
            d.error(f"symbol {sym} is imported twice, differently: as {n2} from {m2} "
                    f"({ctx.objects[ctx.sym_obj[j]].path}) and as {name} from {module} "
                    f"({ctx.objects[ctx.sym_obj[i]].path})")


def _imports_used(ctx, d: Diagnostics) -> None:
    """_imports_used finds the imports the program uses: called (or taken the
    address of) by name, and through their __imp_ slot. An output format that
    links no imports refuses a used one, naming where it is used, rather than
    leaving an address of 0."""
    r = ctx.relocs
    hit = np.zeros(len(ctx.sym_res), bool)
    target = ctx.sym_res[r.sym]
    hit[target[target >= 0]] = True
    imported = np.array(sorted(ctx.imports), np.int64)
    ctx.imports_called = {int(i) for i in imported[hit[imported]]}
    ctx.imports_used = ctx.imports_called | {ctx.import_slots[s] for s in ctx.import_slots
                                             if hit[s]}
    if ctx.imports_used and not ctx.format.imports:
        for i in sorted(ctx.imports_used):
            module, name = ctx.imports[i]
            uses = [k for k in np.flatnonzero(np.isin(target, [i] + [s for s, j in
                    ctx.import_slots.items() if j == i])).tolist()[:3]]
            d.error(f"symbol {ctx.names[i]} is imported from {module} (as {name}), and the "
                    f"{ctx.format.name} format links no imports; an import needs an output "
                    "format that loads it (-H pe)",
                    *[f"referenced by {ctx.ref_site(k)}" for k in uses])


class Definitions:
    """Definitions finds, for names of a link's symbol entries, the entry that
    defines them (-1 for none): a hash table over the winning definitions."""

    def __init__(self, names: Names, ids: np.ndarray, hashes: np.ndarray):
        self.names = names
        self.hashes = hashes   # of every entry
        self.table = SymbolTable(names, ids, hashes[ids])

    def lookup(self, idx: np.ndarray) -> np.ndarray:
        return self.table.lookup(self.names, idx, self.hashes[idx])

    def forget_hashes(self) -> None:
        """forget_hashes drops every entry's hash once the references are
        looked up (get needs only the table's): 8 bytes a symbol entry."""
        self.hashes = None
        self.names.forget_hashes()

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

    def forget_hashes(self) -> None:
        self.names.forget_hashes()

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
