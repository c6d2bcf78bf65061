"""imports: what every format that links imports does with them in gensections.

resolve left, for each used import, its symbol entry (NAME, defined by import)
and possibly a slot entry (__imp_NAME, where the program referred to it). A
format lays out its own table of slots (PE's IAT inside its import table,
Mach-O's __got) and calls `place` with each import's slot: place adds the
thunks (one per import called by name: `jmp *slot`, the arch's code and
relocations), gives every slot entry its place, and makes each called
import's symbol its thunk. The tables' own formats stay in pe.py and macho.py.
"""

from __future__ import annotations

from ..vocab import Kind


def used_by_module(ctx) -> list[tuple[str, list[tuple[int, str]]]]:
    """used_by_module groups the used imports by module (compared without
    case; the first spelling kept), each module's by name: the order of the
    tables, the same for the same input."""
    bymod: dict[str, list] = {}
    spelling: dict[str, str] = {}
    for i in sorted(ctx.imports_used):
        module, name = ctx.imports[i]
        spelling.setdefault(module.lower(), module)
        bymod.setdefault(module.lower(), []).append((i, name))
    return [(spelling[k], sorted(v, key=lambda e: e[1])) for k, v in sorted(bymod.items())]


def place(ctx, obj: int, slot_sec: int, slots: dict[int, int], thunk: bytes,
          thunk_relocs, thunk_name: str, thunk_align: int) -> int:
    """place gives every used import's slot entry its place (slot_sec + slots[i])
    and every import called by name a thunk in a new text section of obj
    (returned; -1 when none is called)."""
    order = list(slots)
    slot_of = {imp: s for s, imp in ctx.import_slots.items()}
    missing = [i for i in order if i not in slot_of]
    if missing:   # called only by name: its thunk still needs a slot entry to jump through
        new = ctx.add_symbols(obj, ["__imp_" + ctx.names[i] for i in missing], slot_sec, 0)
        slot_of.update(zip(missing, new.tolist()))
    for i in order:
        s = slot_of[i]
        ctx.sym_sec[s], ctx.sym_value[s] = slot_sec, slots[i]
        ctx.import_slot_of[i] = s
    called = [i for i in order if i in ctx.imports_called]
    if not called:
        return -1
    (sec,) = ctx.add_sections(obj, [thunk_name], [Kind.TEXT], [thunk_align],
                              [len(thunk) * len(called)], [thunk * len(called)])
    sec = int(sec)
    for j, i in enumerate(called):
        ctx.sym_sec[i], ctx.sym_value[i] = sec, j * len(thunk)
    index = ctx.arch.index
    recs = [(sec, j * len(thunk) + off, index[h], slot_of[i], add)
            for j, i in enumerate(called) for off, h, add in thunk_relocs]
    ctx.add_relocs(*zip(*recs))
    return sec
