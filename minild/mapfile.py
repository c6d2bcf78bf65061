"""mapfile: the link map (-M), written after a successful link.

Lists every output section, the input sections in it (address, size, origin
object) and the symbols they define, in address order, then the import table
(each module; each function's slot and thunk): as text (lld's -Map columns)
or as JSON for tools.
"""

from __future__ import annotations

import json

import numpy as np

from .listing import listed_symbols
from .outfile import write_file


def build(ctx) -> list[dict]:
    """build returns the map as plain data: a list of output sections."""
    bind, sec = ctx.sym_bind, ctx.sym_sec
    loc, glob = listed_symbols(ctx)
    own = np.sort(np.concatenate((loc, glob)))
    named = ctx.names.length[own] > 0
    own = own[(sec[own] >= 0) & named]
    by_sec: dict[int, list[int]] = {}
    for i in own.tolist():
        by_sec.setdefault(int(sec[i]), []).append(i)
    result = []
    for o in ctx.outsections:
        inputs = []
        for s in o.inputs.tolist():
            syms = sorted(by_sec.get(s, []), key=lambda i: (int(ctx.sym_addr[i]), i))
            inputs.append({
                "object": ctx.objects[ctx.sec_obj[s]].path, "section": ctx.sec_name[s],
                "address": int(ctx.sec_addr[s]), "size": int(ctx.sec_size[s]),
                "align": int(ctx.sec_align[s]),
                "symbols": [{"name": ctx.names[i], "address": int(ctx.sym_addr[i]),
                             "size": int(ctx.sym_size[i]),
                             "binding": ("local", "global", "weak")[bind[i]]} for i in syms]})
        result.append({"name": o.name, "address": o.addr, "size": o.size, "align": o.align,
                       "fileoff": o.fileoff, "inputs": inputs})
    return result


def imports(ctx) -> list[dict]:
    """imports lists the import table the output format made: each module,
    and for each of its functions the slot and (for one called by name) the
    thunk."""
    mods: dict[str, dict] = {}
    for i, slot in sorted(ctx.import_slot_of.items(), key=lambda e: ctx.imports[e[0]]):
        module, name = ctx.imports[i]
        m = mods.setdefault(module.lower(), {"module": module, "functions": []})
        m["functions"].append({
            "symbol": ctx.names[i], "name": name, "slot": int(ctx.sym_addr[slot]),
            "thunk": int(ctx.sym_addr[i]) if i in ctx.imports_called else None})
    return list(mods.values())


def archive_members(ctx) -> list[dict]:
    """archive_members lists the archive members the link loaded, and why: the
    symbol that pulled each in and the object that referenced it (GNU ld's
    "Archive member included to satisfy reference by file (symbol)")."""
    return [{"archive": a, "member": m, "symbol": s, "referenced_by": r}
            for a, m, s, r in getattr(ctx, "archive_loads", [])]


def render_text(sections: list[dict], imported: list[dict] = (), members: list[dict] = ()
                ) -> str:
    lines = []
    if members:
        lines += ["Archive member included to satisfy reference by file (symbol)", ""]
        for m in members:
            lines += [f"{m['archive']}({m['member']})",
                      f"{'':16} {m['referenced_by']} ({m['symbol']})"]
        lines.append("")
    lines.append(f"{'VMA':>16} {'Size':>10} {'Align':>6} Out     In      Symbol")
    for o in sections:
        lines.append(f"{o['address']:16x} {o['size']:10x} {o['align']:6} {o['name']}")
        for i in o["inputs"]:
            lines.append(f"{i['address']:16x} {i['size']:10x} {i['align']:6}         "
                         f"{i['object']}:({i['section']})")
            for s in i["symbols"]:
                lines.append(f"{s['address']:16x} {s['size']:10x} {'':6}                 "
                             f"{s['name']}")
    if imported:
        lines += ["", f"{'Slot':>16} {'Thunk':>16} Module  Function (symbol)"]
        for m in imported:
            lines.append(f"{'':16} {'':16} {m['module']}")
            for f in m["functions"]:
                thunk = f"{f['thunk']:16x}" if f["thunk"] is not None else f"{'-':>16}"
                lines.append(f"{f['slot']:16x} {thunk}         {f['name']} ({f['symbol']})")
    return "\n".join(lines) + "\n"


def write_map(ctx, path: str, fmt: str) -> None:
    data, imported, members = build(ctx), imports(ctx), archive_members(ctx)
    doc = {"output": ctx.opts.output, "entry": ctx.entry_addr, "sections": data}
    if imported:
        doc["imports"] = imported
    if members:
        doc["archive_members"] = members
    if fmt == "html":
        from .maphtml import render_html
        text = render_html(ctx, data)
    else:
        text = ((json.dumps(doc, indent=1) + "\n") if fmt == "json"
                else render_text(data, imported, members))
    if path == "-":
        import sys
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    write_file(path, text.encode(), "map file ")
