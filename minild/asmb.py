"""asmb: write every block of every segment, relocations applied in place.

The sections with file bytes are cut into blocks of at least `block_size`
bytes (Go's writeBlocks: 1 MB) at input-section boundaries. Each block is filled
(code padding for text, then the input sections' bytes) and its relocations are
applied, all with numpy, through an OutBuf view at the block's offset. With
-jN, N-1 forked children (minild.workers) each write a contiguous share of the
blocks straight into the shared mapping, while the parent writes the first;
with -j1 they run in order in the parent. Either way each block is computed
from the same inputs by the same code, so the bytes never depend on the number
of workers. On the buffered path a block is written to the file only
after its relocations are applied, since there is no mapping to edit later.
"""

from __future__ import annotations

import operator
import os
from itertools import repeat

import msgspec
import numpy as np

from . import workers
from .errors import Diagnostics
from .reloc import Problem, apply_block

# MINILD_BLOCK_SIZE and MINILD_FORK_BLOCKS lower these two for the tests: a
# small link forked from the CLI (docs/testing.md).
BLOCK_SIZE = int(os.environ.get("MINILD_BLOCK_SIZE", 1 << 20))
# Fewer blocks than this are written in-process: a fork costs more than
# writing a few MB of blocks takes, so a medium-sized output gains nothing
# from it (measured: docs/performance.md, 'Figures behind the code').
FORK_BLOCKS = int(os.environ.get("MINILD_FORK_BLOCKS", 16))
# The parent writes this many times a child's share of the blocks. A child's
# first write to each page of the heap it inherited is a copy-on-write fault,
# and its numpy temporaries reuse that heap, so a child takes longer per
# block than the parent; this ratio evens out their times, where equal
# shares leave the parent waiting (measured: docs/performance.md, 'Figures
# behind the code').
PARENT_SHARE = 1.35


class Block(msgspec.Struct):
    fileoff: int
    size: int
    va: int
    inputs: np.ndarray      # global input section ids
    pad: bytes | None       # code padding, or None for zero fill


def cut_blocks(ctx, block_size: int) -> tuple[list[Block], np.ndarray]:
    """cut_blocks returns the blocks and, per input section, its block (-1: none)."""
    blocks: list[Block] = []
    sec_block = np.full(len(ctx.sec_kind), -1, np.int32)
    for os_ in ctx.outsections:
        if os_.nobits or os_.size == 0 or len(os_.inputs) == 0:
            continue
        rel = ctx.sec_off[os_.inputs]
        # Non-decreasing, so repeats are neighbours (np.unique would import
        # numpy.ma, a noticeable part of a small link's start-up; measured:
        # docs/performance.md, 'Figures behind the code').
        cuts = np.searchsorted(rel, np.arange(block_size, os_.size, block_size))
        cuts = cuts[np.diff(cuts, prepend=-1) != 0]
        cuts = cuts[(cuts > 0) & (cuts < len(rel))]
        bounds = [0] + cuts.tolist() + [len(rel)]
        pad = ctx.arch.pad if os_.kind == 0 else None
        for lo, hi in zip(bounds, bounds[1:]):
            start = 0 if lo == 0 else int(rel[lo])
            end = os_.size if hi == len(rel) else int(rel[hi])
            sec_block[os_.inputs[lo:hi]] = len(blocks)
            blocks.append(Block(os_.fileoff + start, end - start, os_.addr + start,
                                os_.inputs[lo:hi], pad))
    return blocks, sec_block


class ByBlock:
    """ByBlock gives each block's relocations (block -1: none, left out), in
    relocation order: ByBlock(rblock, n)(i) for block i.

    Relocations come in runs of one block (an object's relocations for one
    section, usually together), so this sorts the runs, not the relocations:
    a stable sort of a few thousand run keys. A block's relocation ids are laid
    out from its runs when it is written, by whichever worker writes it. The
    result is that of a stable argsort, which is the fallback when the runs
    are short."""

    def __init__(self, rblock: np.ndarray, nblocks: int):
        n = len(rblock)
        starts = np.flatnonzero(rblock[1:] != rblock[:-1]) + 1
        starts = np.concatenate(([0], starts)) if n else starts
        self.order = None
        if len(starts) > n // 16:
            kept = np.flatnonzero(rblock >= 0)
            rb = rblock[kept]
            self.order = kept[np.argsort(rb, kind="stable")]
            counts = np.bincount(rb, minlength=nblocks)
        else:
            lens = np.diff(starts, append=n)
            keys = rblock[starts]
            runs = np.argsort(keys, kind="stable")
            runs = runs[keys[runs] >= 0]                   # drop the left-out runs
            self.run_start, self.run_len = starts[runs], lens[runs]
            counts = np.bincount(keys[runs], minlength=nblocks)   # runs per block
        self.bounds = np.concatenate(([0], np.cumsum(counts)))

    def __call__(self, i: int) -> np.ndarray:
        lo, hi = int(self.bounds[i]), int(self.bounds[i + 1])
        if self.order is not None:
            return self.order[lo:hi]
        start, length = self.run_start[lo:hi], self.run_len[lo:hi]
        # Each position: its run's start plus its distance into the run.
        first = np.cumsum(length) - length
        return np.arange(int(length.sum()), dtype=np.int64) + np.repeat(start - first, length)

    def take(self, i: int, *cols: np.ndarray) -> list[np.ndarray]:
        """take returns each column's values at block i's relocations (in the
        order of self(i)). Where the block's runs are long, it copies them
        as slices: a memcpy per run instead of an index array and a gather
        per column, a visible cut in asmb's time (measured:
        docs/performance.md, 'Figures behind the code')."""
        lo, hi = int(self.bounds[i]), int(self.bounds[i + 1])
        if self.order is None and hi - lo <= 1:
            s, n = (int(self.run_start[lo]), int(self.run_len[lo])) if hi > lo else (0, 0)
            return [c[s:s + n] for c in cols]     # one run (or none): views
        if self.order is None and int(self.run_len[lo:hi].sum()) >= LONG_RUNS * (hi - lo):
            runs = list(zip(self.run_start[lo:hi].tolist(),
                            (self.run_start[lo:hi] + self.run_len[lo:hi]).tolist()))
            return [np.concatenate([c[s:e] for s, e in runs]) for c in cols]
        k = self(i)
        return [c[k] for c in cols]


# Runs at least this long on average are copied as slices (ByBlock.take).
LONG_RUNS = 256


# A block of at least this many inputs (a section per function) is written
# by join: one copy, not one numpy view and copy per input.
JOIN_INPUTS = 64


def join(buf: np.ndarray, offs: list[int], datas: list) -> None:
    """join writes datas at offs (ascending, not overlapping) into buf with
    one copy: the bytes and the gaps between them (buf's padding, as fill
    left it) interleaved and joined in C (map and slices: no Python step
    per input)."""
    if any(map(operator.is_, datas, repeat(None))):   # by identity: no == per input
        datas = [b"" if x is None else x for x in datas]
    ends = np.asarray(offs, np.int64) + np.fromiter(map(len, datas), np.int64, len(datas))
    starts = [0, *ends[:-1].tolist()]
    gaps = buf.tobytes()
    parts: list = [None] * (2 * len(datas))
    parts[0::2] = map(gaps.__getitem__, map(slice, starts, offs))
    parts[1::2] = datas
    at = int(ends[-1])
    buf[:at] = np.frombuffer(b"".join(parts), np.uint8)


def fill(buf: np.ndarray, pad: bytes, va: int) -> None:
    """fill covers buf with the padding pattern, phased to the block's address."""
    if len(pad) == 1:
        buf.fill(pad[0])
        return
    p = np.frombuffer(pad, np.uint8)
    if (p == p[0]).all():
        buf.fill(p[0])
        return
    # The pattern, then doubling copies within buf: no temporary as big as the
    # block (a 128 MiB alignment gap once cost a second of np.resize and 1 GB).
    p = np.roll(p, -(va % len(p)))
    n = min(len(p), len(buf))
    buf[:n] = p[:n]
    while n < len(buf):
        m = min(n, len(buf) - n)
        buf[n:n + m] = buf[:m]
        n += m


def asmb(ctx, out, jobs: int, block_size: int = BLOCK_SIZE) -> None:
    """asmb writes all section bytes and applies all relocations."""
    blocks, sec_block = cut_blocks(ctx, block_size)
    r = ctx.relocs
    block_relocs = ByBlock(sec_block[r.sec], len(blocks))
    howtos, byteorder, env = ctx.arch.howtos, ctx.arch.order, ctx.reloc_env
    # A format that leaves relocation to another linker says what to do instead.
    apply = ctx.format.apply_relocs

    def write(i: int) -> list[tuple[Problem, np.ndarray]]:
        b = blocks[i]
        view = out.view(b.fileoff)
        buf = view.block(b.fileoff, b.size)
        if b.pad:
            fill(buf, b.pad, b.va)
        offs = (ctx.sec_fileoff[b.inputs] - b.fileoff).tolist()
        if len(offs) < JOIN_INPUTS:
            for s, o in zip(b.inputs.tolist(), offs):
                data = ctx.sec_data[s]
                if data:
                    buf[o:o + len(data)] = np.frombuffer(data, np.uint8)
        else:
            join(buf, offs, list(map(ctx.sec_data.__getitem__, b.inputs.tolist())))
        # This block's relocations, gathered here rather than all at once: the
        # link never holds a second, sorted copy of every relocation column,
        # nor whole P and S columns.
        sec, roff, types, A, sym = block_relocs.take(i, r.sec, r.off, r.type, r.add, r.sym)
        off = ctx.sec_fileoff[sec] + roff - b.fileoff
        # A block lies in one output section, whose inputs are as far apart
        # in memory as in the file: a place's address is the block's plus
        # its offset in the block (no second gather by section).
        P, S = off + b.va, ctx.defaddr[sym]
        if apply is None:
            probs = apply_block(buf, off, types, S, A, P, howtos, byteorder, env)
        else:
            probs = apply(ctx, buf, off, types, S, A, P, block_relocs(i))
        view.commit(b.fileoff, buf)
        if not probs:
            return []
        k = block_relocs(i)
        return [(p, k[p.index]) for p in probs]

    results: dict[int, list] = {}
    tally = ctx.bench.tally("blocks written", len(blocks))   # None unless shown

    def run(lo: int, hi: int) -> bool:
        """run writes blocks lo..hi-1; False if any had a relocation problem
        (then the parent writes them again and collects the problems)."""
        ok = True
        for i in range(lo, hi):
            results[i] = write(i)
            ok = ok and not results[i]
            if tally is not None:
                tally.done(i)
        return ok

    if jobs <= 1 or len(blocks) < FORK_BLOCKS:
        run(0, len(blocks))
    else:
        # Forked children write their blocks straight into the shared mapping
        # (or, buffered, into the file): no bytes come back to the parent.
        cuts = workers.weighted_shares([1] * len(blocks), min(jobs, len(blocks)),
                                       first=PARENT_SHARE)
        for lo, hi in workers.fork_map(len(blocks), jobs, run, cuts):
            run(lo, hi)

    d = Diagnostics()
    for i in sorted(results):
        for p, idx in results[i]:
            for k, v in zip(idx.tolist(), p.values.tolist()):
                report(ctx, d, p, k, v)
    d.check()


def report(ctx, d: Diagnostics, p: Problem, k: int, v: int) -> None:
    """report renders one failed relocation in lld's words."""
    h = p.howto
    where = ctx.reloc_site(k)
    target = ctx.reloc_target(k)
    if p.kind == "range":
        lo, hi = h.range
        if lo >= 0:
            # An unsigned range: the value is unsigned too, as lld prints it
            # (a symbol at 2**64-1 is 18446744073709551615, not -1).
            v &= 0xFFFFFFFFFFFFFFFF
        d.error(f"{where}: relocation {h.name} out of range: {v} is not in [{lo}, {hi}]; "
                f"references {target}", *ctx.defined_in(k))
    else:
        # lld prints the value as a 64-bit unsigned hex number (a branch back is 0xFFFF...).
        d.error(f"{where}: improper alignment for relocation {h.name}: "
                f"0x{v & 0xFFFFFFFFFFFFFFFF:X} is not aligned to {h.align} bytes",
                f"references {target}", *ctx.defined_in(k))  # lld's line names no symbol
