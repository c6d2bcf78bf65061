"""relocations.py writes docs/relocations.md, the table of the relocation types
each arch applies, from the arch modules' Howtos (tests/test_relocations_doc.py
keeps the file in sync): python3 scripts/relocations.py > docs/relocations.md"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from minild import arch as archreg  # noqa: E402
from minild.reloc import NO_ELF  # noqa: E402


def _range(h) -> str:
    if h.range is None:
        return "unchecked" if h.size else "-"
    lo, hi = h.range
    return f"[{lo}, {hi}]"


def render() -> str:
    out = ["# Relocation types, per arch", "",
           "Generated from the Howtos in `minild/arch/*.py` by `scripts/relocations.py`; "
           "`tests/test_relocations_doc.py` fails when it is out of date. *value* is the "
           "Howto's expression of S (the symbol's address), A (the addend) and P (the "
           "place); *range* the values the field takes (an error in lld's words "
           "outside), *align* what the value must be a multiple of; *thunk*: a branch "
           "out of range goes through a range-extension thunk (minild/thunks.py).", ""]
    seen = set()
    for name in archreg.available():
        a = archreg.lookup(name)
        key = id(a.howtos)
        if key in seen:
            continue
        seen.add(key)
        same = [n for n in archreg.available() if archreg.lookup(n).howtos is a.howtos]
        out += [f"## {', '.join(same)}", "",
                "| type | ELF number | bytes | value | range | align | insert | thunk |",
                "|---|---|---|---|---|---|---|---|"]
        thunks = a.thunks or {}
        for h in sorted(a.howtos, key=lambda h: (h.code == NO_ELF, h.code, h.name)):
            code = "-" if h.code == NO_ELF else str(h.code)
            insert = h.insert.__name__ if h.insert else "word"
            out.append(f"| `{h.name}` | {code} | {h.size} | `{h.calc.__name__}` | {_range(h)} "
                       f"| {h.align} | {insert} | {'yes' if h.name in thunks else ''} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(render())
