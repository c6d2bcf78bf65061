"""encode: an Object back to JSON, in either encoding of the object format.

The reverse of the loader, for `minild import`, the examples, the benchmarks'
generators and the tests: encode_compact writes base64 columns (numpy arrays
narrowed to the schema's column types), encode_readable the form a person
reads (spaced hex, one relocation and one symbol a line).
"""

from __future__ import annotations

import msgspec
import numpy as np

from . import arch as archreg
from .loader import _WIDTHS, Object  # the column widths the loader accepts
from .schema import (FORMAT_VERSION, CImport, Compact, CRelocs, CSection, CSymbols, Import, Reloc,
                     Symbol, WGlobal, WType)
from .vocab import ABS, BINDINGS, IMPORT, KINDS, TYPES, UNDEF


def encode_compact(obj: Object, a: archreg.Arch) -> bytes:
    """encode_compact renders an Object in the compact encoding."""
    b64 = _narrow  # (msgspec writes bytes fields as base64)
    names = obj.sym_name.tolist() if obj.imports else []
    used = np.unique(obj.rel_type) if len(obj.rel_type) else np.zeros(0, np.int16)
    remap = np.zeros(len(a.howtos), np.uint16)
    remap[used] = np.arange(len(used))
    # An imported symbol's section column says undefined; the list says more.
    sec = np.where(obj.sym_sec == IMPORT, UNDEF, obj.sym_sec) if obj.imports else obj.sym_sec
    doc = Compact(
        version=FORMAT_VERSION, arch=obj.arch,
        sections=[CSection(name=n, kind=KINDS[k], align=int(al),
                           data=None if data is None else bytes(data),
                           size=int(sz) if data is None else None)
                  for n, k, al, sz, data in zip(obj.sec_name, obj.sec_kind, obj.sec_align,
                                                obj.sec_size, obj.sec_data)],
        symbols=CSymbols(count=len(obj.sym_name),
                         name=msgspec.Raw(msgspec.json.encode(obj.sym_name.tolist())),
                         section=b64(sec, "<i4"),
                         value=b64(obj.sym_value.view(np.uint64), "<u8"),
                         size=b64(obj.sym_size, "<u8"), binding=b64(obj.sym_bind, "u1"),
                         type=b64(obj.sym_type, "u1"),
                         imports=[CImport(symbol=k, module=m, name=None if n == names[k] else n)
                                  for k, m, n in obj.imports],
                         signatures=sorted(obj.signatures.items()),
                         exports=sorted(obj.exports.items()),
                         globals=[(k, t, m) for k, (t, m) in sorted(obj.globals.items())]),
        types=[WType(params=list(p), results=list(r)) for p, r in obj.types],
        relocs=CRelocs(count=len(obj.rel_off), types=[a.howtos[t].name for t in used],
                       section=b64(obj.rel_sec, "<u4"), offset=b64(obj.rel_off, "<u8"),
                       type=b64(remap[obj.rel_type] if len(used) else obj.rel_type, "<u2"),
                       symbol=b64(obj.rel_sym, "<u4"), addend=b64(obj.rel_add, "<i8")))
    return msgspec.json.encode(doc)


def encode_readable(obj: Object, a: archreg.Arch) -> bytes:
    """encode_readable renders an Object in the readable encoding: one section
    field, relocation or symbol per line, section bytes as spaced hex."""
    enc = lambda v: msgspec.json.encode(v).decode()  # noqa: E731
    secs = []
    names = obj.sym_name.tolist()
    for i, (n, k, al, sz, data) in enumerate(zip(obj.sec_name, obj.sec_kind, obj.sec_align,
                                                  obj.sec_size, obj.sec_data)):
        head = [f'"name": {enc(n)}', f'"kind": "{KINDS[k]}"']
        if al != 1:
            head.append(f'"align": {int(al)}')
        lines = ["   " + ", ".join(head)]
        if data is None:
            lines.append(f'   "size": {int(sz)}')
        else:
            lines.append(f'   "data": "{data.hex(" ")}"')
        sel = np.flatnonzero(obj.rel_sec == i)
        if len(sel):
            recs = [enc(Reloc(offset=int(obj.rel_off[j]), type=a.howtos[obj.rel_type[j]].name,
                              symbol=names[obj.rel_sym[j]], addend=int(obj.rel_add[j])))
                    for j in sel]
            lines.append('   "relocs": [\n    ' + ",\n    ".join(recs) + "\n   ]")
        secs.append("  {\n" + ",\n".join(lines) + "\n  }")
    imports = {k: Import(module=m, name=None if n == names[k] else n) for k, m, n in obj.imports}
    syms = []
    for i, name in enumerate(names):
        si = int(obj.sym_sec[i])
        syms.append(enc(Symbol(
            name=name, section=None if si in (UNDEF, IMPORT) else "*ABS*" if si == ABS
            else obj.sec_name[si],
            value=int(obj.sym_value[i]), size=int(obj.sym_size[i]),
            binding=BINDINGS[obj.sym_bind[i]], type=TYPES[obj.sym_type[i]],
            import_=imports.get(i), signature=obj.signatures.get(i),
            export=obj.exports.get(i),
            global_=WGlobal(type=obj.globals[i][0], mutable=obj.globals[i][1])
            if i in obj.globals else None)))
    types = "".join(f'\n  {enc(WType(params=list(p), results=list(r)))},'
                    for p, r in obj.types).rstrip(",")
    head = f'\n "types": [{types}\n ],' if obj.types else ""
    text = ('{\n "version": %d, "encoding": "readable", "arch": %s,%s\n "sections": [\n%s\n ],\n'
            ' "symbols": [\n  %s\n ]\n}\n') % (FORMAT_VERSION, enc(obj.arch), head,
                                              ",\n".join(secs), ",\n  ".join(syms))
    return text.encode()


def _narrow(values: np.ndarray, dt: str) -> bytes:
    """_narrow packs a column in the narrowest width of its kind that holds
    every value (the reader widens it again)."""
    full = np.dtype(dt)
    a = np.ascontiguousarray(values).astype(full, copy=False)
    if len(a):
        lo, hi = int(a.min()), int(a.max())
        for w in _WIDTHS:
            t = np.dtype(f"{full.kind}{w}").newbyteorder("<")
            if w < full.itemsize and np.iinfo(t).min <= lo and hi <= np.iinfo(t).max:
                return a.astype(t).tobytes()
    return a.astype(full.newbyteorder("<")).tobytes()
