"""shm: records in an anonymous shared mapping, from forked children to their parent.

The forked readers (loader.read_objects) and the read-ahead (minild.readahead)
both hand their results to the parent this way: a record at some place in a
MAP_SHARED anonymous mapping is an 8-byte length n, a pickle of n bytes (the
small part: names, numbers, messages, and the places of the bulk), then the
bulk byte fields, each 8-aligned. The parent reads the bulk as memoryviews of
the mapping: no copy and no pickle of the bulk. No numpy here: the read-ahead
runs before numpy is imported.
"""

from __future__ import annotations

import mmap
import operator
import pickle
from array import array
from itertools import accumulate, compress, repeat

ALIGN = 8


def up(n: int) -> int:
    """up rounds n up to the record alignment."""
    return (n + ALIGN - 1) & ~(ALIGN - 1)


def mapping(size: int) -> mmap.mmap:
    """mapping is a new anonymous MAP_SHARED region: children write, the parent reads."""
    return mmap.mmap(-1, size)


def pack(shared: mmap.mmap, pos: int, limit: int, meta, fields: list) -> int | None:
    """pack writes a record at shared[pos:limit]: meta (picklable, naming the
    bulk fields by their index in fields) and fields (bytes-like, 1-D
    C-contiguous). It returns where the record ends, or None if it does not fit."""
    spans, p = [], 0           # places relative to the end of the pickle
    for b in fields:
        n = memoryview(b).nbytes
        spans.append((p, n))
        p = up(p + n)
    blob = pickle.dumps((meta, spans), protocol=pickle.HIGHEST_PROTOCOL)
    data = up(pos + 8 + len(blob))
    end = data + p
    if end > limit:
        return None
    shared[pos:pos + 8] = len(blob).to_bytes(8, "little")
    shared[pos + 8:pos + 8 + len(blob)] = blob
    for (off, n), b in zip(spans, fields):
        if n:
            shared[data + off:data + off + n] = memoryview(b).cast("B")
    return end


def unpack(shared: mmap.mmap, at: int) -> tuple[object, list[memoryview]]:
    """unpack reads the record at shared[at:]: its meta and its fields, as
    views of the mapping."""
    meta, fields, _ = unpack_placed(shared, at)
    return meta, fields


def unpack_placed(shared: mmap.mmap, at: int) -> tuple[object, list[memoryview], list[int]]:
    """unpack_placed is unpack, and where each field starts in the mapping
    (for release)."""
    view = memoryview(shared)
    size = int.from_bytes(shared[at:at + 8], "little")
    meta, spans = pickle.loads(view[at + 8:at + 8 + size])
    data = up(at + 8 + size)
    return meta, [view[data + off:data + off + n] for off, n in spans], \
        [data + off for off, _ in spans]


def release(shared: mmap.mmap, lo: int, hi: int) -> int:
    """release gives the memory of shared[lo:hi] back to the system (the
    whole pages inside it; they read as zeros afterwards) and returns how
    many bytes that was. For fields the parent has copied out and no view
    reads any more: a MAP_SHARED mapping's pages stay in the parent's RSS
    for as long as it is mapped, whatever is still read of it."""
    page = mmap.PAGESIZE
    lo, hi = -(-lo // page) * page, hi // page * page
    if hi <= lo or not hasattr(mmap, "MADV_REMOVE"):
        return 0
    try:
        shared.madvise(mmap.MADV_REMOVE, lo, hi - lo)
    except (OSError, ValueError):
        return 0   # advice only: the memory stays, nothing else changes
    return hi - lo


def put_bytes(datas: list, put) -> tuple[list[int], int, int]:
    """put_bytes ships a list of byte strings (None for some: a bss section's
    data) as two bulk fields, all of them joined and their lengths, with the
    None places in the small part. All of it in C (map, join, compress): with
    a section per function a list holds 100k+ entries, and a field or a
    Python step each would cost more than the bytes. put adds a field to the
    record and returns its index."""
    none = list(compress(range(len(datas)), map(operator.is_, datas, repeat(None))))
    if none:
        datas = list(datas)
        for i in none:
            datas[i] = b""
    return none, put(array("q", map(len, datas))), put(b"".join(datas))


def get_bytes(shipped: tuple[list[int], int, int], fields: list[memoryview]) -> list:
    """get_bytes is the list put_bytes shipped: views of the mapping (sliced
    in C), None where it had None."""
    none, lengths, blob = shipped
    ends = list(accumulate(fields[lengths].cast("q")))
    view = fields[blob]
    out = list(map(view.__getitem__, map(slice, [0, *ends[:-1]], ends)))
    for i in none:
        out[i] = None
    return out
