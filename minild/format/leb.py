"""leb: LEB128, the variable-length integers of wasm modules and Mach-O's
__LINKEDIT opcode streams (a byte per 7 bits, low bits first, the top bit
saying whether more follow)."""

from __future__ import annotations


def uleb(v: int) -> bytes:
    """uleb encodes v >= 0 as an unsigned LEB128."""
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def sleb(v: int) -> bytes:
    """sleb encodes v as a signed LEB128 (the sign in the last byte's bit 6)."""
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        done = (v == 0 and not b & 0x40) or (v == -1 and b & 0x40)
        out.append(b | (0 if done else 0x80))
        if done:
            return bytes(out)
