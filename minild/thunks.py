"""thunks: range-extension thunks for calls and branches that cannot reach
their targets (Go's trampolines, lld's Thunks), and the arch records' Thunk.

After dodata, the offsets of the text sections inside .text are fixed, so the
distance of every branch between two of them is known before addresses are
(and -T gives .text's address, for absolute targets). A branch of a type the
arch lists in Arch.thunks whose value would be out of its Howto's range is
retargeted at a thunk: a few instructions that load the target's absolute
address (T bit and all, on arm) and jump there. Thunks go in a new text section
placed right after the section of the branches that use it (reachable: a
section holds less code than a branch reaches), one per (target, addend) and
section.

Placement is one walk over the output section in address order, as Go's
linker places trampolines while it assigns text addresses: when the walk
reaches a section with such branches, everything before it has its final
offset, so a branch to an earlier section (or into its own, or to an absolute
address) is judged exactly. A branch forward is judged on its target's offset
now (the least it can be) and on that plus the most the thunk sections still
to come before the target can add; where either is out of reach, it gets a
thunk (Go's conservative rule for a target not yet placed: rarely, a thunk a
later look would have found unneeded). The thunk section is placed at once,
padded to a multiple of every alignment in the output section, so that
everything after it moves by exactly its size: each section's final offset is
known when the walk passes it, and no later thunk moves it (add checks this
against dodata's placement after the walk). Nothing placed moves, so one walk
is all: a second finds every branch in reach.

The most thunks can add is bounded before the walk, to leave out the branches
that reach whatever thunks do: a branch is a candidate when it is out of range
by less than the bound in the layout without thunks, and the bound is what one
thunk per candidate branch would add, shrunk to a fixed point. A link with no
candidates is not touched: its output is the same as without this pass.

The result depends only on the input: the same objects, the same thunks, in
the same places.
"""

from __future__ import annotations

import msgspec
import numpy as np

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


UNIT_CAP = 64   # the largest alignment a thunk section is padded to (the unit below)


def add(ctx) -> None:
    """add gives every branch that cannot reach its target a thunk, in one walk
    over each output section in address order (the module docstring)."""
    from .errors import InternalError
    from .layout import dodata
    from .vocab import ABS, Bind, Kind, SymType, align_up

    spec = ctx.arch.thunks
    if not spec or ctx.opts.externallink:
        return
    a = ctx.arch
    kinds = list(dict.fromkeys(spec.values()))         # distinct thunks, in spec order
    types = {a.index[n]: t for n, t in spec.items() if n in a.index}
    kind_of = {t: kinds.index(th) for t, th in types.items()}
    r = ctx.relocs
    k = np.flatnonzero(np.isin(r.type, list(types)))
    d = ctx.sym_res[r.sym[k]]
    k, d = k[d >= 0], d[d >= 0]
    src, tsec = r.sec[k].astype(np.int64), ctx.sym_sec[d]
    out = ctx.sec_out[src]
    same = (tsec >= 0) & (out >= 0) & (ctx.sec_out[np.maximum(tsec, 0)] == out)
    known = same | ((tsec == ABS) & (out >= 0))   # else: another output section's
    k, d, src, tsec, out, same = (x[known] for x in (k, d, src, tsec, out, same))
    if not len(k):
        return
    base = ctx.text_addr
    off0 = ctx.sec_off.copy()                  # every offset without thunks
    typ, A = r.type[k], r.add[k]
    kind = np.array([kind_of[t] for t in typ.tolist()], np.int64)
    value = ctx.sym_value[d]
    tsec = np.maximum(tsec, 0)
    S0 = np.where(same, base + off0[tsec], 0) + value
    P0 = base + off0[src] + r.off[k]
    geo = {o: _Geometry(ctx, o, kinds) for o in np.unique(out).tolist()}
    tsize = np.array([len(th.code) for th in kinds], np.int64)
    talign = np.array([th.align for th in kinds], np.int64)

    # One group per (caller section, thunk kind): one thunk section at most.
    gkey, ginv = np.unique(src * len(kinds) + kind, return_inverse=True)
    gkind, gsec = gkey % len(kinds), gkey // len(kinds)
    gunit = np.array([geo[int(ctx.sec_out[s])].unit for s in gsec.tolist()], np.int64)

    def grows(sel: np.ndarray) -> np.ndarray:
        """grows: per group, the most its thunk section can add (a thunk for
        each of its relocations in sel, the padding included)."""
        n = np.bincount(ginv[sel], minlength=len(gkey))
        most = -(-(talign[gkind] - 1 + n * tsize[gkind]) // gunit) * gunit
        return np.where(n > 0, most, 0)

    # The candidates, shrunk to the fixed point (the module docstring). A
    # branch into its own section moves with its target: no slack.
    v0, lo, hi = _values(a, typ, S0, A, P0)
    inside = same & (tsec == src)
    cand = np.ones(len(k), bool)
    while True:
        most = grows(cand)
        slack = max(g.slack(gsec, most) for g in geo.values())
        sl = np.where(inside, 0, slack)
        new = cand & ((v0 - sl < lo) | (v0 + sl > hi))
        if (new == cand).all():
            break
        cand = new
    if not cand.any():
        return
    most = grows(cand)

    obj = ctx.add_object("<thunks>")
    if ctx.sec_rank is None:
        ctx.sec_rank = np.arange(len(ctx.sec_name), dtype=np.float64)
    expect: dict[int, np.ndarray] = {}     # output section -> its inputs' final offsets
    placed: list[tuple[int, int]] = []     # (thunk section, its offset when placed)
    for o in np.unique(out[cand]).tolist():
        g = geo[o]
        pos = g.pos
        js_all = np.flatnonzero(cand & (out == o))
        js_all = js_all[np.argsort(pos[src[js_all]], kind="stable")]
        callers = np.unique(pos[src[js_all]])                 # positions, in order
        bounds = np.searchsorted(pos[src[js_all]], callers.tolist() + [len(g.inputs)])
        g.callers(gsec, most)
        D = 0                       # the shift in effect (offset now - offset without thunks)
        bi = 0                      # the next aligned section (g.big) to pass
        for i, p in enumerate(callers.tolist()):
            while bi < len(g.big) and g.big[bi] <= p:
                D = g.through(bi, D)
                g.changed(2 * int(g.big[bi]), D)
                bi += 1
            s = int(g.inputs[p])
            js = js_all[bounds[i]:bounds[i + 1]]
            P = base + off0[s] + D + r.off[k[js]]
            t = tsec[js]
            tp = np.where(same[js], pos[t], -1)
            back = same[js] & (tp <= p)
            fwd = same[js] & (tp > p)
            # Placed (this section and those before): the shift there is known.
            # Ahead: between the shift with no more thunks and with all of them.
            dlo = np.where(back, g.shift_at(tp), 0)
            dhi = dlo.copy()
            if fwd.any():
                f = np.flatnonzero(fwd)
                dlo[f], dhi[f] = g.ahead(bi, p, tp[f], D)
            S = np.where(same[js], base + off0[t], 0) + value[js]
            need = np.zeros(len(js), bool)
            for shift in (dlo, dhi):
                v, vlo, vhi = _values(a, typ[js], S + shift, A[js], P)
                need |= (v < vlo) | (v > vhi)
            end = int(off0[s]) + D + int(ctx.sec_size[s])       # s's end, final
            cur = end
            js, kd = js[need], kind[js[need]]
            for n_th, kd_ in enumerate(np.unique(kd).tolist()):
                th = kinds[kd_]
                jk = js[kd == kd_]
                dests = (A[jk] + th.pc).tolist()
                targets = d[jk].tolist()
                keys = sorted(set(zip(targets, dests)),
                              key=lambda e: (ctx.names[e[0]], e[1], e[0]))
                n, size = len(keys), len(th.code)
                start = align_up(cur, th.align)
                # Padded: what follows moves by a multiple of the unit.
                length = align_up(start - cur + n * size, g.unit) - (start - cur)
                data = th.code * n + (a.pad * length)[:length - n * size]
                (ts,) = ctx.add_sections(obj, [".text.thunk"], [Kind.TEXT], [th.align],
                                         [length], [data])
                ts = int(ts)
                placed.append((ts, start))
                cur = start + length
                rank = ctx.sec_rank[s] + (n_th + 1) / 64     # right after s, in order
                ctx.sec_rank = np.concatenate((ctx.sec_rank, [rank]))
                at = np.arange(n) * size
                names = [th.prefix + ctx.names[tg] + (f"+{x:#x}" if x else "") for tg, x in keys]
                syms = ctx.add_symbols(obj, names, ts, at + th.tbit, Bind.LOCAL, SymType.FUNC)
                if th.maps:
                    ctx.add_symbols(obj, [m for m, _ in th.maps] * n, ts,
                                    (at[:, None] + np.array([x for _, x in th.maps])).ravel(),
                                    Bind.LOCAL, SymType.NOTYPE)
                for off, how in th.relocs:
                    ctx.add_relocs(np.full(n, ts), at + off, np.full(n, a.index[how]),
                                   [tg for tg, _ in keys], [x for _, x in keys])
                sym_of = dict(zip(keys, syms.tolist()))
                r = ctx.relocs
                for j, tg, x in zip(jk.tolist(), targets, dests):
                    r.sym[k[j]] = sym_of[(tg, x)]
                    r.add[k[j]] = -th.pc
            if cur - end > g.most[i]:
                raise InternalError(f"thunks: {ctx.sec_name[s]}'s thunks outgrew their bound")
            D += cur - end
            g.changed(2 * p + 1, D)
        while bi < len(g.big):
            D = g.through(bi, D)
            g.changed(2 * int(g.big[bi]), D)
            bi += 1
        # Every section's offset: as without thunks, moved by what is before it.
        expect[o] = off0[g.inputs] + g.shift_at(np.arange(len(g.inputs)))
    dodata(ctx)
    # Nothing placed has moved: every section sits where the walk put it.
    for o, offs in expect.items():
        inputs = ctx.outsections[o].inputs
        if not (ctx.sec_off[inputs[inputs < len(off0)]] == offs).all():
            raise InternalError(f"thunks: a section of {ctx.outsections[o].name} moved")
    for ts, start in placed:
        if ctx.sec_off[ts] != start:
            raise InternalError(f"thunks: {ctx.sec_name[ts]} moved")


class _Geometry:
    """_Geometry is one output section as the walk sees it: each input
    section's position, the unit (the largest alignment up to UNIT_CAP, and
    the thunks'), and the sections aligned beyond it (big), where a shift
    changes: such a section at offset align_up(e, a) without thunks is at
    align_up(e + D, a) with a shift D before it (none, a whole multiple of a)."""

    def __init__(self, ctx, o: int, kinds: list):
        from .vocab import align_up
        self.inputs = ctx.outsections[o].inputs
        self.pos = np.full(len(ctx.sec_off), -1, np.int64)
        self.pos[self.inputs] = np.arange(len(self.inputs))
        al = ctx.sec_align[self.inputs]
        small = al[al <= UNIT_CAP]
        self.unit = max([int(small.max()) if len(small) else 1] + [th.align for th in kinds])
        big = np.flatnonzero(al > self.unit)
        self.big = big[big > 0]      # (the first section is at 0 whatever comes)
        self.big_align = al[self.big]
        prev = self.inputs[self.big - 1]
        self.big_end = ctx.sec_off[prev] + ctx.sec_size[prev]   # what precedes it ends there
        self.big_off = np.array([align_up(int(e), int(x)) for e, x in
                                 zip(self.big_end.tolist(), self.big_align.tolist())], np.int64)
        self.keys: list[int] = []    # where the shift changes: 2 * position (+1: after it)
        self.shifts: list[int] = []

    def through(self, i: int, D):
        """through: the shift after big section i, with D before it."""
        al = int(self.big_align[i])
        return -(-(int(self.big_end[i]) + D) // al) * al - int(self.big_off[i])

    def changed(self, key: int, D: int) -> None:
        self.keys.append(key)
        self.shifts.append(D)

    def shift_at(self, positions: np.ndarray) -> np.ndarray:
        """shift_at: the shift of sections already passed, by position."""
        i = np.searchsorted(np.array(self.keys, np.int64), 2 * positions, side="right") - 1
        return np.concatenate(([0], np.array(self.shifts, np.int64)))[i + 1]

    def callers(self, gsec: np.ndarray, most: np.ndarray) -> None:
        """callers takes each caller section's most (its groups')."""
        mine = (most > 0) & (self.pos[gsec] >= 0)
        self.cpos, inv = np.unique(self.pos[gsec[mine]], return_inverse=True)
        self.most = np.bincount(inv, most[mine]).astype(np.int64)
        self.cum = np.concatenate(([0], np.cumsum(self.most)))

    def between(self, x, y):
        """between: the most the callers at positions [x, y) can add."""
        return self.cum[np.searchsorted(self.cpos, y)] - self.cum[np.searchsorted(self.cpos, x)]

    def ahead(self, bi: int, p: int, tp: np.ndarray, D: int):
        """ahead: the least and the most shift at positions tp ahead of p, from
        D at p (before p's own thunks), through big sections bi on."""
        lo = np.full(len(tp), D, np.int64)
        hi = lo.copy()
        last = np.full(len(tp), p, np.int64)
        for j in range(bi, len(self.big)):
            q = int(self.big[j])
            on = tp >= q
            if not on.any():
                break
            hi[on] += self.between(last[on], q)
            lo[on], hi[on] = self.through(j, lo[on]), self.through(j, hi[on])
            last[on] = q
        return lo, hi + self.between(last, tp)

    def slack(self, gsec: np.ndarray, most: np.ndarray) -> int:
        """slack: the most any section of this output section can move."""
        self.callers(gsec, most)
        B = best = 0
        last = 0
        for j, q in enumerate(self.big.tolist()):
            B += int(self.between(last, q))
            best = max(best, B)
            B, last = self.through(j, B), q
        return max(best, B + int(self.between(last, len(self.inputs))))


def _values(a, typ: np.ndarray, S: np.ndarray, A: np.ndarray, P: np.ndarray):
    """_values returns each branch's value and its Howto's range (lo, hi)."""
    v = np.zeros(len(S), np.int64)
    lo = np.full(len(S), np.iinfo(np.int64).min // 2, np.int64)
    hi = np.full(len(S), np.iinfo(np.int64).max // 2, np.int64)
    for t in np.unique(typ).tolist():
        h = a.howtos[t]
        sel = typ == t
        if h.range is None:
            continue
        if getattr(h.calc, "linkwide", False):   # (ppc64's call_local: + its 8 at most)
            v[sel] = S[sel] + A[sel] - P[sel]
        else:
            v[sel] = h.calc(S[sel], A[sel], P[sel])
        lo[sel], hi[sel] = h.range
    return v, lo, hi
