"""suggest: "did you mean" for a name that is not one of the known ones.

lld says `did you mean: foo` under an undefined symbol when a close spelling
exists; minild says it for unknown relocation types, arches, section kinds,
output formats and undefined symbols. difflib's ratio picks the closest;
nothing is suggested when nothing is close.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: str, known: Iterable[str], cutoff: float = 0.6) -> str | None:
    """closest returns the known name nearest to name, or None. Case is
    compared last: a name that differs only in case is always close."""
    known = list(known)
    low = {k.lower(): k for k in known}
    if name.lower() in low and low[name.lower()] != name:
        return low[name.lower()]
    m = difflib.get_close_matches(name, known, n=1, cutoff=cutoff)
    if not m:
        m = difflib.get_close_matches(name.lower(), list(low), n=1, cutoff=cutoff)
        m = [low[m[0]]] if m else []
    return m[0] if m and m[0] != name else None


def did_you_mean(name: str, known: Iterable[str], cutoff: float = 0.6) -> str:
    """did_you_mean is "; did you mean 'x'?" or "" (to end a message with)."""
    c = closest(name, known, cutoff)
    return f"; did you mean {c!r}?" if c else ""
