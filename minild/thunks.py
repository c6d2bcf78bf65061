"""thunks: range-extension thunks for calls and branches that cannot reach
their targets (Go's trampolines, lld's Thunks), and the arch records' Thunk.

After dodata, the offsets of the text sections inside .text are fixed, so the
distance of every branch between two of them is known before addresses are
(and -T gives .text's address, for absolute targets). For each relocation of a
type the arch lists in Arch.thunks whose value would be out of its Howto's
range, the branch is retargeted at a thunk: a few instructions that load the
target's absolute address (T bit and all, on arm) and jump there. Thunks go in
a new text section placed right after the section of the branches that use it
(reachable: a section holds less code than a branch reaches), one per
(target, addend) and section. Placing them moves what follows in .text, which
may put other branches out of reach: the pass repeats until no branch needs a
new thunk (thunks are only added, never moved or removed, as lld's), at most
MAX_PASSES times. The result depends only on the input: the same objects, the
same thunks, in the same places. Everything runs before layout: layout then
runs once, as without thunks.
"""

from __future__ import annotations

import msgspec
import numpy as np

MAX_PASSES = 8   # (thunk sections after one section: fewer than 64, the rank step)


class Thunk(msgspec.Struct, frozen=True):
    """Thunk is one arch's thunk for a branch type: its code, the absolute
    relocation that puts the target's address into it, and the branch's pc
    offset (a branch to S + A reaches S + A + pc: ARM's -8 and Thumb's -4 are
    in A, stored by the assembler)."""

    code: bytes                # the thunk, padded to a multiple of align
    relocs: tuple              # (offset in code, Howto name): what puts S + A in it
    pc: int                    # the branch's pc offset (see above)
    prefix: str                # thunk symbol names: prefix + target name (lld's)
    align: int = 4
    tbit: int = 0              # 1: the thunk is Thumb code (its symbol's value is odd)
    maps: tuple = ()           # mapping symbols: (name, offset) ($a/$t/$x, $d)


def add(ctx) -> None:
    """add adds the thunks the link needs and re-runs dodata after each pass."""
    from .layout import dodata
    from .vocab import Bind, Kind, SymType

    spec = ctx.arch.thunks
    if not spec or ctx.opts.externallink:
        return
    a = ctx.arch
    kinds = list(dict.fromkeys(spec.values()))         # distinct thunks, in spec order
    types = {a.index[n]: t for n, t in spec.items() if n in a.index}
    kind = {t: kinds.index(th) for t, th in types.items()}
    obj = None
    made: dict[tuple, int] = {}    # (section, target, dest, kind) -> thunk symbol
    after: dict[int, int] = {}                          # section -> thunk sections after it
    for _ in range(MAX_PASSES):
        r = ctx.relocs
        k = np.flatnonzero(np.isin(r.type, list(types)))
        if not len(k):
            return
        d = ctx.sym_res[r.sym[k]]
        k, d = k[d >= 0], d[d >= 0]
        text = ctx.sec_out[r.sec[k]]
        tsec = ctx.sym_sec[d]
        base = ctx.text_addr
        src_out = ctx.sec_out[r.sec[k]]
        P = base + ctx.sec_off[r.sec[k]] + r.off[k]
        known = np.ones(len(k), bool)
        S = np.zeros(len(k), np.int64)
        insec = tsec >= 0
        same = insec & (ctx.sec_out[np.maximum(tsec, 0)] == src_out)
        S[same] = base + ctx.sec_off[tsec[same]] + ctx.sym_value[d[same]]
        absolute = tsec == -2   # vocab.ABS
        S[absolute] = ctx.sym_value[d[absolute]]
        known &= same | absolute
        known &= text >= 0
        bad = np.zeros(len(k), bool)
        for t in np.unique(r.type[k]).tolist():
            h = a.howtos[t]
            sel = (r.type[k] == t) & known
            if not sel.any() or h.range is None:
                continue
            if getattr(h.calc, "linkwide", False):   # (ppc64's call_local: + its 8 at most)
                v = S[sel] + r.add[k[sel]] - P[sel]
            else:
                v = h.calc(S[sel], r.add[k[sel]], P[sel])
            lo, hi = h.range
            bad[np.flatnonzero(sel)[(v < lo) | (v > hi)]] = True
        if not bad.any():
            return
        if obj is None:
            obj = ctx.add_object("<thunks>")
            if ctx.sec_rank is None:
                ctx.sec_rank = np.arange(len(ctx.sec_name), dtype=np.float64)
        k, d = k[bad], d[bad]
        # One new section per (caller section, thunk kind), right after the caller's.
        groups: dict[tuple[int, int], list[int]] = {}
        for j, (sec, t) in enumerate(zip(r.sec[k].tolist(), r.type[k].tolist())):
            groups.setdefault((sec, kind[t]), []).append(j)
        for (sec, kd), js in sorted(groups.items()):
            th = kinds[kd]
            dest = (r.add[k[js]] + th.pc).tolist()
            targets = [int(d[j]) for j in js]
            keys = sorted({(t, x) for t, x in zip(targets, dest)
                           if (sec, t, x, kd) not in made},
                          key=lambda e: (ctx.names[e[0]], e[1], e[0]))
            if keys:
                n, size = len(keys), len(th.code)
                (ts,) = ctx.add_sections(obj, [".text.thunk"], [Kind.TEXT], [th.align],
                                         [size * n], [th.code * n])
                ts = int(ts)
                # After sec and the thunk sections already after it, before the next.
                after[sec] = after.get(sec, 0) + 1
                ctx.sec_rank = np.concatenate((ctx.sec_rank, [ctx.sec_rank[sec] + after[sec] / 64]))
                at = np.arange(n) * size
                names = [th.prefix + ctx.names[t] + (f"+{x:#x}" if x else "") for t, x in keys]
                syms = ctx.add_symbols(obj, names, ts, at + th.tbit, Bind.LOCAL, SymType.FUNC)
                if th.maps:
                    ctx.add_symbols(obj, [m for m, _ in th.maps] * n, ts,
                                    (at[:, None] + np.array([o for _, o in th.maps])).ravel(),
                                    Bind.LOCAL, SymType.NOTYPE)
                for off, how in th.relocs:
                    ctx.add_relocs(np.full(n, ts), at + off, np.full(n, a.index[how]),
                                   [t for t, _ in keys], [x for _, x in keys])
                for (t, x), s in zip(keys, syms.tolist()):
                    made[(sec, t, x, kd)] = s
            r = ctx.relocs
            for j, t, x in zip(js, targets, dest):
                r.sym[k[j]] = made[(sec, t, x, kd)]
                r.add[k[j]] = -th.pc
        dodata(ctx)
