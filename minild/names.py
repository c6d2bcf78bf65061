"""names: symbol names as one byte blob, and the hash table loadlib resolves with.

loadlib sees a name per symbol entry, and on a large link most entries are
references to the far fewer names some object defines. As Python strings
that costs twice: msgspec creating a str per name, then one dict lookup per
reference, each a cache miss (measured: docs/performance.md, 'Figures behind
the code').
Here names stay bytes: a Names table is a blob of UTF-8 text with a start and a
length per name, and resolution is numpy work over whole columns:

* hash: a 64-bit hash per name from 8-byte words read at the name's offset
  (one gather per 8 bytes of the longest name, not a loop per name);
* SymbolTable: open addressing over the definitions' hashes, probed for all
  references at once;
* equal: every match is checked byte for byte, so a hash only ever narrows
  the search. A reference whose hash meets a definition with another name is
  not defined: the definitions in a SymbolTable have distinct hashes (where
  two defined names share one, link.definitions resolves by dict instead).

Strings are made only for the few names a message or a map shows.
"""

from __future__ import annotations

import numpy as np

PAD = b"\0" * 8  # 8 spare bytes after a blob: a word read at any name's start is in bounds

# 0..8 low bytes of a little-endian word
_MASK = np.array([(1 << (8 * i)) - 1 for i in range(8)] + [(1 << 64) - 1], np.uint64)
_C1, _C2 = np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _fmix(x: np.ndarray) -> np.ndarray:
    """_fmix is MurmurHash3's 64-bit finalizer (a bijection), in place."""
    x ^= x >> _S33
    x *= _C1
    x ^= x >> _S33
    x *= _C2
    x ^= x >> _S33
    return x


def _words(buf) -> np.ndarray:
    """_words views buf (bytes-like, at least 8 bytes) as a little-endian
    uint64 at every byte offset but the last 7."""
    return np.ndarray((len(buf) - 7,), "<u8", buf, 0, (1,))


def _offset_type(blob_size: int) -> np.dtype:
    return np.dtype(np.int32 if blob_size < 1 << 31 else np.int64)


class Names:
    """Names is a table of names: blob[start[i] : start[i] + length[i]] is name i,
    UTF-8 without NUL (the loader checks). The blob is bytes or a memoryview
    (an object's names are the JSON text they came in, a view of the
    read-ahead's mapping, not a copy); words() gives it its PAD, once, when
    names are hashed or compared."""

    __slots__ = ("blob", "start", "length", "_words", "_hashes")

    def __init__(self, blob: bytes | memoryview, start: np.ndarray, length: np.ndarray,
                 hashes: np.ndarray | None = None):
        self.blob = blob
        # int32 offsets below 2 GiB of names: half the memory of 1M+ rows.
        dt = _offset_type(len(blob))
        self.start = start.astype(dt, copy=False)
        self.length = length.astype(dt, copy=False)
        self._words = None
        self._hashes = hashes   # of every name, once computed (hashes())

    # --- building ------------------------------------------------------------

    @classmethod
    def from_list(cls, names: list[str]) -> "Names":
        text = "\0".join(names)
        if text.isascii():  # one character per byte: lengths without encoding each name
            length = np.fromiter(map(len, names), np.int64, len(names))
        else:
            length = np.fromiter((len(n.encode()) for n in names), np.int64, len(names))
        start = np.cumsum(length + 1) - (length + 1)
        return cls(text.encode() + PAD, start, length)

    @classmethod
    def from_json_array(cls, raw: bytes | memoryview) -> "Names | None":
        """from_json_array reads a JSON array of strings straight from its text
        when every name is printable ASCII with no escapes (what minild and most
        generators write): the quotes delimit the names. Anything else, or any
        doubt, returns None and the caller decodes the array as JSON."""
        u = np.frombuffer(raw, np.uint8)
        if len(u) < 2 or u[0] != 0x5B or u[-1] != 0x5D:  # [ ... ]
            return None
        body = u[1:-1]
        if len(body) == 0:
            return cls(PAD, np.zeros(0, np.int64), np.zeros(0, np.int64))
        # ASCII, no escapes (\), no control characters: a name is its bytes.
        if body.min() < 0x20 or body.max() >= 0x80 or (body == 0x5C).any():
            return None
        q = np.flatnonzero(body == 0x22) + 1
        if len(q) % 2 or len(q) == 0:
            return None
        start, end = q[0::2] + 1, q[1::2]
        # Exactly `["a","b",...]`: nothing but one comma between names (msgspec
        # checked that the text is JSON; whitespace or other values fall back).
        if q[0] != 1 or q[-1] != len(u) - 2 or not (start[1:] - end[:-1] == 3).all() \
                or not (u[end[:-1] + 1] == 0x2C).all():
            return None
        return cls(raw, start, end - start)

    @staticmethod
    def concat(tables: list["Names"]) -> "Names":
        sizes = [len(t.blob) for t in tables]
        dt = _offset_type(sum(sizes))
        base = np.cumsum([0] + sizes[:-1])
        start = np.concatenate([t.start + b for t, b in zip(tables, base)], dtype=dt) \
            if tables else np.zeros(0, dt)
        length = np.concatenate([t.length for t in tables], dtype=dt) if tables \
            else np.zeros(0, dt)
        hashes = None
        if tables and all(t._hashes is not None for t in tables):
            hashes = np.concatenate([t._hashes for t in tables])
        return Names(b"".join([*(t.blob for t in tables), PAD]), start, length, hashes)

    def extend(self, names: list[str]) -> "Names":
        more = Names.from_list(names)
        return Names.concat([self, more])

    # --- reading -------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.start)

    def __getitem__(self, i) -> str:
        s = int(self.start[i])
        return bytes(self.blob[s:s + int(self.length[i])]).decode()

    def __iter__(self):
        return iter(self.tolist())

    def tolist(self, idx=None) -> list[str]:
        b, st, ln = bytes(self.blob), self.start, self.length
        if idx is not None:
            st, ln = st[idx], ln[idx]
        return [b[s:s + n].decode() for s, n in zip(st.tolist(), ln.tolist())]

    def words(self) -> np.ndarray:
        """words is a uint64 view of the blob at every byte offset (little-endian)."""
        if self._words is None:
            if not (isinstance(self.blob, bytes) and self.blob.endswith(PAD)):
                self.blob = bytes(self.blob) + PAD
            self._words = _words(self.blob)
        return self._words

    def hashes(self) -> np.ndarray:
        """hashes returns the hash of every name (computed once; forked readers
        compute their objects' and ship them with the names)."""
        if self._hashes is None:
            self._hashes = self.hash(np.arange(len(self)))
        return self._hashes

    def forget_hashes(self) -> None:
        """forget_hashes drops the hash column (8 bytes a name): resolve is
        its one reader, and it would otherwise stay to the end of the link."""
        self._hashes = None

    def hash(self, idx: np.ndarray) -> np.ndarray:
        """hash returns a 64-bit hash of each name idx[k]. For names of up to 8
        bytes it is a bijection of the name's bytes."""
        W, st, ln = self.words(), self.start[idx], self.length[idx]
        h = _fmix(W[st] & _MASK[np.minimum(ln, 8)])
        longer = np.flatnonzero(ln > 8)
        k = 8
        while len(longer):
            x = h[longer] * _GOLDEN
            x ^= W[st[longer] + k] & _MASK[np.minimum(ln[longer] - k, 8)]
            h[longer] = _fmix(x)
            longer = longer[ln[longer] > k + 8]
            k += 8
        return h

    def equal(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """equal says, for each k, whether name a[k] is name b[k], byte for byte."""
        W, ln = self.words(), self.length
        la = ln[a]
        ok = la == ln[b]
        todo = np.flatnonzero(ok)
        sa, sb = self.start[a[todo]], self.start[b[todo]]
        la = la[todo]
        pos = np.arange(len(todo))
        k = 0
        while len(pos):   # pos: into todo, the pairs equal so far
            rest = la[pos] - k
            pos = pos[rest > 0]
            if not len(pos):
                break
            diff = (W[sa[pos] + k] ^ W[sb[pos] + k]) & _MASK[np.minimum(rest[rest > 0], 8)]
            ok[todo[pos[diff != 0]]] = False
            pos = pos[diff == 0]
            k += 8
        return ok

    def strtab(self, idx: np.ndarray) -> tuple[bytes | bytearray, np.ndarray]:
        """strtab returns names idx, each followed by a NUL, as one blob, and the
        offset of each in it (an ELF string table's layout)."""
        ln = self.length[idx].astype(np.int64)
        size = ln + 1
        offs = np.cumsum(size) - size
        total = int(size.sum()) if len(idx) else 0
        if len(idx) and int(ln.max()) > STRTAB_WORDS_MAX:
            # Long names (C++'s, 40-200 bytes): a pass per 8 bytes of the
            # longest would cost 25 scatters over every name; slices joined in
            # C cost one step per name instead. A chunk of names at a time,
            # into a zeroed table (the NULs): the slices of every name at once,
            # and their join, would be twice the table again at asmb2, when
            # the link is at its peak.
            st = self.start[idx].astype(np.int64)
            en = st + ln
            out = bytearray(total)
            for lo in range(0, len(idx), STRTAB_CHUNK):
                hi = lo + STRTAB_CHUNK
                part = b"\0".join(map(self.blob.__getitem__,
                                      map(slice, st[lo:hi].tolist(), en[lo:hi].tolist())))
                at = int(offs[lo])
                out[at:at + len(part)] = part
            return out, offs
        # Each name goes in 8-byte words, through a view of the output with a
        # word at every byte offset. A word may run past its name into the
        # next names' places: the passes go from the last words to the first,
        # each in name order, so every name's own words come after any spill
        # into them. Then the NULs.
        W, st = self.words(), self.start[idx].astype(np.int64)
        out = np.zeros(total + 8, np.uint8)
        fields = _words(out)
        for k in range(8 * ((int(ln.max()) - 1) // 8) if len(idx) else -1, -1, -8):
            sel = np.flatnonzero(ln > k) if k else slice(None)
            fields[offs[sel] + k] = W[st[sel] + k]
        out[offs + ln] = 0
        return out[:total].tobytes(), offs


LOOKUP_CHUNK = 1 << 16
# strtab writes names of up to this many bytes by word passes, longer ones by a
# join of slices (measured: docs/performance.md, "Program shapes").
STRTAB_WORDS_MAX = 32
STRTAB_CHUNK = 1 << 14


class SymbolTable:
    """SymbolTable maps names to symbol entries: open addressing over the
    64-bit hashes of the entries it holds, probed for many names at once."""

    def __init__(self, names: Names, ids: np.ndarray, hashes: np.ndarray):
        """ids are entries with pairwise distinct names and hashes (the caller
        has checked both), hashes their hashes."""
        self.names = names
        ids = ids.astype(np.int64, copy=False)
        self.ids = ids
        # Load factor <= 1/4: most probes end at their first slot. A slot is one
        # 16-byte record (hash, entry, name length), so a probe is one random
        # read: the cost of a lookup is its cache misses.
        bits = max(4, (4 * len(ids)).bit_length())
        self.mask = (1 << bits) - 1
        self.shift = np.uint64(64 - bits)
        wide = len(names) >= 1 << 31 or (len(ids) and int(names.length.max()) >= 1 << 31)
        i = np.int64 if wide else np.int32
        # A slot's "entry" is the entry plus one: a zeroed table is empty, and
        # its pages are touched only by the inserts (no pass to mark them free).
        self.slots = np.zeros(1 << bits, [("hash", "<u8"), ("entry", i), ("length", i)])
        entry = self.slots["entry"]
        slot = (hashes >> self.shift).astype(np.int64)
        pending = np.arange(len(ids))
        while len(pending):
            s = slot[pending]
            free = entry[s] == 0
            cand, cs = pending[free], s[free]
            entry[cs] = cand + 1             # of several for one slot, one wins
            won = entry[cs] == cand + 1
            pending = np.concatenate((pending[~free], cand[~won]))
            slot[pending] = (slot[pending] + 1) & self.mask
        used = np.flatnonzero(entry)
        k = entry[used] - 1                  # until here, an index into ids
        self.slots["hash"][used] = hashes[k]
        entry[used] = ids[k] + 1
        self.slots["length"][used] = names.length[ids[k]]

    def __len__(self) -> int:
        return len(self.ids)

    def lookup(self, names: Names, idx: np.ndarray, hashes: np.ndarray) -> np.ndarray:
        """lookup returns the entry defining each name names[idx[k]] (whose hash
        is hashes[k]), or -1. names must be the table's own Names."""
        assert names is self.names
        if not len(self.ids):
            return np.full(len(idx), -1, np.int64)
        # In chunks: the temporaries of a chunk (~40 bytes a name) are reused
        # by the next, where those of one pass over 1M names would be fresh
        # memory, a page fault per 4 KiB.
        out = np.empty(len(idx), self.slots.dtype["entry"])
        for lo in range(0, len(idx), LOOKUP_CHUNK):
            hi = lo + LOOKUP_CHUNK
            out[lo:hi] = self._lookup(names, idx[lo:hi], hashes[lo:hi])
        return out

    def _lookup(self, names: Names, idx: np.ndarray, hashes: np.ndarray) -> np.ndarray:
        slot = (hashes >> self.shift).astype(np.intp)
        rec = self.slots[slot]           # the first probe, for every name at once
        out, length = rec["entry"] - 1, rec["length"]
        used = out >= 0
        hit = rec["hash"] == hashes
        hit &= used
        pending = np.flatnonzero(used & ~hit)   # an empty slot ends a search
        out[~hit] = -1
        while len(pending):
            slot[pending] = (slot[pending] + 1) & self.mask
            rec = self.slots[slot[pending]]
            e = rec["entry"] - 1
            h = (rec["hash"] == hashes[pending]) & (e >= 0)
            out[pending[h]] = e[h]
            length[pending[h]] = rec["length"][h]
            pending = pending[~h & (e >= 0)]
        # Distinct hashes among the entries: a name whose hash matches one that
        # is not its own is defined nowhere. Up to 8 bytes, a hash is a
        # bijection of the bytes: equal hashes and lengths are equal names.
        ln = names.length[idx]
        same = length == ln
        same &= out >= 0
        longer = np.flatnonzero(same & (ln > 8))
        if len(longer):
            same[longer] = names.equal(idx[longer], out[longer])
        out[~same] = -1
        return out

    def get(self, name: str) -> int | None:
        """get returns the entry defining name, or None."""
        # A hash depends on the bytes alone: hash the name in a table of its own.
        h = Names.from_list([name]).hash(np.zeros(1, np.int64))[0]
        slot = int(h >> self.shift)
        while len(self.ids):
            rec = self.slots[slot]
            if rec["entry"] == 0:
                return None
            if rec["hash"] == h:
                i = int(rec["entry"]) - 1
                return i if self.names[i] == name else None
            slot = (slot + 1) & self.mask
        return None
