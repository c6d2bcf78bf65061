"""readahead: objects are decoded while numpy is imported (the start of loadlib's read).

A link spends a large part of its start-up importing numpy, on one core
(measured: docs/performance.md, 'Figures behind the code'). So the CLI calls
start() as soon as it has its arguments, before that import: a forked child
decodes the objects in order (minild.schema: msgspec only, no numpy) and copies
each document's byte fields (columns, section bytes, the names' JSON text) into
an anonymous shared mapping, with a pickle of the rest. When the parent is
ready to read (loadlib), collect() tells the child to stop after the file at
hand, waits for it, and returns the documents it finished, whose byte fields
are views of the mapping; loader validates them and reads the rest as usual.

The child leaves alone whatever it cannot decode, and readable documents: the
parent reads those itself and reports what is wrong with them, so objects and
messages never depend on whether, or how far, a read-ahead ran.
"""

from __future__ import annotations

import mmap
import operator
import os
import stat

from . import shm
from .errors import LinkError
from .schema import (RELOC_COLUMNS, SYMBOL_COLUMNS, CImport, Compact, CRelocs, CSection,
                     CSymbols, WType, decode)

# Below this much input, the fork costs more than the decoding it overlaps.
AHEAD_BYTES = 1 << 20

_STOP = 0      # mapping byte: the parent sets it to 1 to stop the child
_TABLE = 8     # then per file: where its record is and how long (0: not decoded)


class ReadAhead:
    """ReadAhead is a running read-ahead: the child and the mapping it fills."""

    def __init__(self, paths: list[str], shared: mmap.mmap, pid: int):
        self.paths, self.shared, self.pid = paths, shared, pid
        self.decoded: dict[int, Compact] | None = None
        # (mapping, start, end) of each record's stretch before its section
        # bytes: only read while loadlib builds the objects (_unpack).
        self.spent: list = []

    def collect(self, wait: bool = False) -> dict[int, Compact]:
        """collect stops the child (or, with wait, lets it finish every file)
        and returns the documents it decoded, by position in paths (once;
        later calls return the same)."""
        if self.decoded is None:
            self._stop(wait)
            self.decoded = _unpack(self.shared, len(self.paths), self.spent)
        return self.decoded

    def handed_over(self) -> None:
        """handed_over drops the read-ahead's references to its documents and
        its mapping once loadlib has them: the mapping is then unmapped with
        the last view of its section bytes (after asmb), not at exit."""
        self.decoded, self.shared = {}, None

    def cancel(self) -> None:
        """cancel stops the child without reading what it did (a link that
        failed before loadlib)."""
        if self.decoded is None:
            self._stop()
            self.decoded = {}

    def _stop(self, wait: bool = False) -> None:
        if not wait:
            self.shared[_STOP] = 1
        _, status = os.waitpid(self.pid, 0)
        if status != 0:
            # A child that died may have died writing a table entry: trust
            # none of them.
            self.shared[_TABLE:_TABLE + 16 * len(self.paths)] = bytes(16 * len(self.paths))


def sizes(paths: list[str]) -> list[int | None]:
    """sizes is each path's size, None for what is not a regular file (or
    cannot be stat'ed: the parent's read says what is wrong with it). Only
    regular files are read ahead: opening a FIFO could block the child, and
    reading one would take its bytes from the parent."""
    out: list[int | None] = []
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            out.append(None)
            continue
        out.append(st.st_size if stat.S_ISREG(st.st_mode) else None)
    return out


def start(paths: list[str], jobs: int, size: list[int | None] | None = None
          ) -> ReadAhead | None:
    """start forks the read-ahead child; None where it would not pay (one
    job, little input) or cannot run (no fork, no mapping). size is
    sizes(paths), where the caller has it."""
    if jobs <= 1 or not hasattr(os, "fork"):
        return None
    if size is None:
        size = sizes(paths)
    regular = [s is not None for s in size]
    total = sum(s for s in size if s is not None)
    if total < AHEAD_BYTES:
        return None
    try:
        shared = shm.mapping(_region(total, len(paths)))
        pid = os.fork()
    except (OSError, ValueError, OverflowError):
        return None
    if pid == 0:
        code = 1
        try:
            _run([p if r else None for p, r in zip(paths, regular)], shared)
            code = 0
        finally:
            os._exit(code)
    return ReadAhead(paths, shared, pid)


def _region(total: int, files: int) -> int:
    """_region is the size of the mapping for files of total bytes. Decoded
    byte fields are smaller than their base64 and JSON text; the pickles add
    a little per section. A document that does not fit is left to the
    parent; untouched pages cost nothing."""
    return _TABLE + 16 * files + 2 * total + 4096 * files


def _run(paths: list[str | None], shared: mmap.mmap) -> None:
    """_run is the child: decode each file in turn (None: leave it) until
    told to stop."""
    pos = _TABLE + 16 * len(paths)
    for i, path in enumerate(paths):
        if shared[_STOP]:
            return
        if path is None:
            continue
        try:
            doc = decode(path)
        except LinkError:
            continue
        if not isinstance(doc, Compact):
            continue
        end = _pack(doc, shared, pos)
        if end is None:
            return   # the mapping is full: the parent reads the rest
        at, pos = pos, end
        shared[_TABLE + 16 * i:_TABLE + 16 * i + 16] = (
            at.to_bytes(8, "little") + (end - at).to_bytes(8, "little"))


def _pack(doc: Compact, shared: mmap.mmap, pos: int) -> int | None:
    """_pack writes one document as a shm record at shared[pos:]: the document
    without its byte fields, then the byte fields. It returns where the record
    ends, or None if it does not fit."""
    fields: list = []

    def put(b) -> int:
        fields.append(b)
        return len(fields) - 1

    sy, rl = doc.symbols, doc.relocs
    syms = (sy.count, [(i.symbol, i.module, i.name) for i in sy.imports], put(sy.name),
            *(put(getattr(sy, f)) for f in SYMBOL_COLUMNS))
    rels = (rl.count, rl.types, *(put(getattr(rl, f)) for f in RELOC_COLUMNS))
    # The section bytes last: what comes before them is only read while the
    # parent builds the object, and is released after columns (loader._unship).
    meta = (doc.version, doc.arch, _pack_sections(doc.sections, put), syms, rels,
            ([(t.params, t.results) for t in doc.types], sy.signatures, sy.exports, sy.globals))
    return shm.pack(shared, pos, len(shared), meta, fields)


_FIELDS = tuple(map(operator.attrgetter, ("name", "kind", "align", "size", "data")))


def _pack_sections(secs: list[CSection], put) -> tuple:
    """_pack_sections ships the sections as columns: lists of names, kinds,
    alignments and sizes in the pickle, their bytes by shm.put_bytes (with a
    section per function there are 100k+ sections: no Python step each)."""
    names, kinds, aligns, sizes, datas = (list(map(f, secs)) for f in _FIELDS)
    return names, kinds, aligns, sizes, shm.put_bytes(datas, put)


def _unpack_sections(secs: tuple, field: list) -> list[CSection]:
    """_unpack_sections rebuilds what _pack_sections shipped; section bytes
    are views of the mapping."""
    names, kinds, aligns, sizes, datas = secs
    return list(map(CSection, names, kinds, aligns, shm.get_bytes(datas, field), sizes))


def _unpack(shared: mmap.mmap, n: int, spent: list | None = None) -> dict[int, Compact]:
    """_unpack rebuilds the documents the child finished: byte fields are
    views of the mapping. Each record's stretch before its section bytes
    goes on spent, as loader._unship's do."""
    out = {}
    for i in range(n):
        t = _TABLE + 16 * i
        at = int.from_bytes(shared[t:t + 8], "little")
        if not int.from_bytes(shared[t + 8:t + 16], "little"):
            continue
        (version, arch, secs, syms, rels, wasm), field, place = shm.unpack_placed(shared, at)
        if spent is not None:
            spent.append((shared, at, place[secs[4][1]]))
        out[i] = Compact(
            version=version, arch=arch, sections=_unpack_sections(secs, field),
            symbols=CSymbols(syms[0], *(field[k] for k in syms[2:]),
                             imports=[CImport(*i) for i in syms[1]], signatures=wasm[1],
                             exports=wasm[2], globals=wasm[3]),
            types=[WType(params=p, results=r) for p, r in wasm[0]],
            relocs=CRelocs(rels[0], rels[1], *(field[k] for k in rels[2:])))
    return out
