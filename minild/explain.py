"""explain: why a symbol is what it is in a link (`minild explain SYM OBJECTS`).

Like lld's --why-live or Go's -dumpdep, but for one symbol: the link runs up
to layout (nothing is written), then explain says where SYM is defined and
which definitions lost (weak ones to a strong one, later weak ones to the
first), who refers to it (object, section, offset and the function holding
the place, with the relocation's type and addend), and where it ended up
(output section, address, size). explain() returns plain data (the --json
form); render() is the text.
"""

from __future__ import annotations

import numpy as np

from .vocab import ABS, IMPORT, UNDEF, Bind, SymType

BINDS = ("local", "global", "weak")
TYPES = ("notype", "object", "func", "section")


def _where(ctx, i: int) -> dict:
    s = int(ctx.sym_sec[i])
    d = {"object": ctx.objects[ctx.sym_obj[i]].path,
         "section": ctx.sec_name[s] if s >= 0 else {UNDEF: "UND", ABS: "*ABS*",
                                                      IMPORT: "IMPORT"}.get(s, str(s)),
         "value": int(ctx.sym_value[i]) % (1 << 64), "size": int(ctx.sym_size[i]),
         "binding": BINDS[ctx.sym_bind[i]], "type": TYPES[ctx.sym_type[i]]}
    if i in ctx.imports:
        d["import"] = {"module": ctx.imports[i][0], "name": ctx.imports[i][1]}
    return d


def explain(ctx, name: str) -> dict:
    """explain returns what the link knows of name (see the module doc)."""
    allnames = ctx.names.tolist()
    ids = [i for i, x in enumerate(allnames) if x == name]
    winner = ctx.global_sym(name)
    locals_ = [i for i in ids if ctx.sym_bind[i] == Bind.LOCAL and ctx.sym_sec[i] != UNDEF]
    if winner is None and locals_:
        winner = locals_[0]      # a local (static) symbol: the first of the name
    out: dict = {"symbol": name, "defined": winner is not None}
    if winner is not None:
        if name in ctx.linker_defined:
            w = {"object": "<linker>", "section": "*ABS*", "value": int(ctx.sym_addr[winner]),
                 "size": 0, "binding": "global", "type": "notype", "linker_defined": True}
        else:
            w = _where(ctx, winner)
        out["definition"] = w
        out["entry"] = winner == ctx.entry_sym
        sec = int(ctx.sym_sec[winner])
        out["address"] = int(ctx.sym_addr[winner]) % (1 << 64)
        out["size"] = int(ctx.sym_size[winner])
        if sec >= 0 and ctx.sec_out is not None and int(ctx.sec_out[sec]) >= 0:
            o = ctx.outsections[int(ctx.sec_out[sec])]
            out["output_section"] = {"name": o.name, "address": o.addr, "size": o.size}
            seg = next((s for s in ctx.segments if any(x is o for x in s.sections)), None)
            if seg is not None:
                out["segment"] = seg.name
    lost, local = [], []
    wb = ctx.sym_bind[winner] if winner is not None else None
    for i in ids:
        if i == winner or ctx.sym_sec[i] == UNDEF:
            continue
        d = _where(ctx, i)
        if ctx.sym_bind[i] == Bind.LOCAL:
            local.append(d)
            continue
        if ctx.sym_bind[i] == Bind.WEAK and wb == Bind.GLOBAL:
            d["why"] = "weak: a strong definition wins"
        elif ctx.sym_bind[i] == Bind.WEAK:
            d["why"] = "weak: the first weak definition wins"
        elif i in ctx.imports:
            d["why"] = "import: a definition in an object wins"
        else:
            d["why"] = "duplicate"
        lost.append(d)
    out["lost"] = lost
    if local:
        out["locals"] = local      # same-named local symbols: not this one, said to avoid confusion
    # References: relocations whose symbol resolves to the winner, or (undefined)
    # is an entry of that name.
    r = ctx.relocs
    if winner is not None:
        hits = ctx.sym_res[r.sym] == winner
    else:
        named = np.zeros(len(ctx.sym_sec), bool)
        named[np.array(ids, np.int64)] = True
        hits = named[r.sym]
    refs = []
    howtos = ctx.arch.howtos
    for k in np.flatnonzero(hits).tolist():
        sec, off = int(r.sec[k]), int(r.off[k])
        f = ctx.enclosing(sec, off)
        ref = {"object": ctx.objects[ctx.sec_obj[sec]].path, "section": ctx.sec_name[sec],
               "offset": off, "function": ctx.names[f] if f is not None else None,
               "function_offset": off - int(ctx.sym_value[f]) if f is not None else None,
               "type": howtos[int(r.type[k])].name, "addend": int(r.add[k])}
        if ctx.sec_addr is not None:
            ref["place"] = int(ctx.sec_addr[sec]) + off
        refs.append(ref)
    out["references"] = refs
    if winner is None:
        from .suggest import closest
        defined = np.flatnonzero(ctx.sym_sec != UNDEF).tolist()
        c = closest(name, [x for x in {allnames[i] for i in defined} if x])
        if c:
            out["did_you_mean"] = c
    return out


def render(e: dict) -> str:
    """render is explain's text form."""
    L = [f"symbol {e['symbol']}"]
    if e["defined"]:
        d = e["definition"]
        where = (f"{d['object']}:({d['section']}+{d['value']:#x})" if d["section"] not in
                 ("*ABS*", "IMPORT", "UND") else f"{d['object']} ({d['section']})")
        L.append(f"  defined in {where}: {d['binding']} {d['type']}, size {d['size']}"
                 + (" (the entry point)" if e.get("entry") else ""))
        if "import" in d:
            L.append(f"  imported from {d['import']['module']} as {d['import']['name']}")
        o = e.get("output_section")
        if "address" in e:
            L.append(f"  address {e['address']:#x}, size {e['size']}"
                     + (f", in output section {o['name']} [{o['address']:#x}, "
                        f"{o['address'] + o['size']:#x})" if o else "")
                     + (f", segment {e['segment']}" if e.get("segment") else ""))
    else:
        L.append("  not defined by any object"
                 + (f" (did you mean {e['did_you_mean']}?)" if e.get("did_you_mean") else ""))
    for d in e["lost"]:
        L.append(f"  lost: {d['object']}:({d['section']}+{d['value']:#x}) {d['binding']} "
                 f"({d['why']})")
    for d in e.get("locals", []):
        L.append(f"  a local of the same name (another symbol): "
                 f"{d['object']}:({d['section']}+{d['value']:#x})")
    refs = e["references"]
    L.append(f"  referenced {len(refs)} time{'s' if len(refs) != 1 else ''}"
             + (":" if refs else ""))
    for x in refs:
        fn = (f"{x['function']}+{x['function_offset']:#x}" if x["function"] is not None
              else f"{x['section']}+{x['offset']:#x}")
        place = f" at {x['place']:#x}" if "place" in x else ""
        L.append(f"    {x['object']}:({fn}) in {x['section']}+{x['offset']:#x}{place}: "
                 f"{x['type']}, addend {x['addend']}")
    if e.get("link_errors"):
        L.append(f"  the link fails ({len(e['link_errors'])} error"
                 f"{'s' if len(e['link_errors']) != 1 else ''}; addresses not known):")
        L += ["    " + x.replace("\n", "\n    ") for x in e["link_errors"]]
    return "\n".join(L)
