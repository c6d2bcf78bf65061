"""Relocation encoders, table-driven: for each amd64 and x86 type, the bytes a
given S, A, P must produce (worked out by hand from the psABI formulas), and the
values each must refuse."""

import numpy as np
import pytest

from minild import arch
from minild.reloc import apply_block


def run(archname, rtype, S, A, P, before=b"\xaa" * 8):
    a = arch.lookup(archname)
    buf = np.frombuffer(bytearray(before), np.uint8).copy()
    t = a.index[rtype]
    probs = apply_block(buf, np.array([0]), np.array([t]), np.array([S]), np.array([A]),
                        np.array([P]), a.howtos, a.order)
    return bytes(buf), probs


@pytest.mark.parametrize("archname,rtype,S,A,P,want", [
    ("amd64", "R_X86_64_64", 0x401000, 8, 0, bytes.fromhex("0810400000000000")),
    ("amd64", "R_X86_64_64", 0, -1, 0, b"\xff" * 8),  # wraps, no check
    ("amd64", "R_X86_64_PC32", 0x402000, -4, 0x401003, bytes.fromhex("f90f0000aaaaaaaa")),
    ("amd64", "R_X86_64_PLT32", 0x401000, -4, 0x401010, bytes.fromhex("ecffffffaaaaaaaa")),
    ("amd64", "R_X86_64_32", 0xfffffff0, 0xf, 0, bytes.fromhex("ffffffffaaaaaaaa")),
    ("amd64", "R_X86_64_32S", 0x400000, -0x800000, 0, bytes.fromhex("0000c0ffaaaaaaaa")),
    ("amd64", "R_X86_64_16", 0xfff0, 0, 0, bytes.fromhex("f0ffaaaaaaaaaaaa")),
    ("amd64", "R_X86_64_16", 0, -2, 0, bytes.fromhex("feffaaaaaaaaaaaa")),
    ("amd64", "R_X86_64_PC16", 0x1000, 0, 0x1010, bytes.fromhex("f0ffaaaaaaaaaaaa")),
    ("amd64", "R_X86_64_8", 0xff, 0, 0, bytes.fromhex("ffaaaaaaaaaaaaaa")),
    ("amd64", "R_X86_64_PC8", 0x1000, 0, 0x1080, bytes.fromhex("80aaaaaaaaaaaaaa")),  # -128
    ("amd64", "R_X86_64_PC8", 0x107f, 0, 0x1000, bytes.fromhex("7faaaaaaaaaaaaaa")),  # 127
    ("amd64", "R_X86_64_PC8", 0x1010, -3, 0x1000, bytes.fromhex("0daaaaaaaaaaaaaa")),
    ("amd64", "R_X86_64_PC64", 0x1000, 0, 0x2000, bytes.fromhex("00f0ffffffffffff")),
    ("amd64", "R_X86_64_NONE", 0x1000, 0, 0x2000, b"\xaa" * 8),
    ("x86", "R_386_32", 0x8049000, 4, 0, bytes.fromhex("04900408aaaaaaaa")),
    ("x86", "R_386_PC32", 0x8049000, -4, 0x8049010, bytes.fromhex("ecffffffaaaaaaaa")),
    ("x86", "R_386_PLT32", 0x8049100, -4, 0x8049000, bytes.fromhex("fc000000aaaaaaaa")),
    ("x86", "R_386_16", 0x1234, 0, 0, bytes.fromhex("3412aaaaaaaaaaaa")),
    ("x86", "R_386_PC16", 0x1000, 2, 0x1000, bytes.fromhex("0200aaaaaaaaaaaa")),
    ("x86", "R_386_8", 0x7f, 0, 0, bytes.fromhex("7faaaaaaaaaaaaaa")),
    ("x86", "R_386_PC8", 0x1000, 0, 0x1001, bytes.fromhex("ffaaaaaaaaaaaaaa")),
])
def test_encode(archname, rtype, S, A, P, want):
    got, probs = run(archname, rtype, S, A, P)
    assert probs == []
    if want is not None:
        assert got == want


@pytest.mark.parametrize("archname,rtype,S,A,P,bad", [
    ("amd64", "R_X86_64_PC32", 0x80401000, 0, 0x401000, 0x80000000),
    ("amd64", "R_X86_64_PC32", 0, -4, 0x80000000, -0x80000004),
    ("amd64", "R_X86_64_32", 0x100000000, 0, 0, 0x100000000),
    ("amd64", "R_X86_64_32", 0, -1, 0, -1),                 # zero-extended: no negatives
    ("amd64", "R_X86_64_32S", 0x80000000, 0, 0, 0x80000000),  # sign-extended
    ("amd64", "R_X86_64_16", 0x10000, 0, 0, 0x10000),
    ("amd64", "R_X86_64_PC16", 0x9000, 0, 0x1000, 0x8000),
    ("amd64", "R_X86_64_8", 0x100, 0, 0, 0x100),
    ("amd64", "R_X86_64_PC8", 0x1000, 0, 0x1081, -129),
    ("x86", "R_386_16", 0x10000, 0, 0, 0x10000),
    ("x86", "R_386_PC16", 0x0, 0, 0x8001, -0x8001),
    ("x86", "R_386_8", 0x1000, 0, 0, 0x1000),
])
def test_out_of_range_is_reported_not_written(archname, rtype, S, A, P, bad):
    got, probs = run(archname, rtype, S, A, P)
    assert len(probs) == 1 and probs[0].kind == "range"
    assert probs[0].values.tolist() == [bad]
    assert got == b"\xaa" * 8  # a refused value leaves the place alone


def test_many_types_in_one_block_apply_in_one_pass():
    a = arch.lookup("amd64")
    buf = np.zeros(32, np.uint8)
    names = ["R_X86_64_64", "R_X86_64_PC32", "R_X86_64_32", "R_X86_64_PC32"]
    off = np.array([0, 8, 12, 16])
    t = np.array([a.index[n] for n in names])
    S = np.array([0x1122334455667788, 0x2000, 0x1000, 0x3000])
    A = np.array([0, -4, 4, -4])
    P = 0x1000 + off
    assert apply_block(buf, off, t, S, A, P, a.howtos, a.order) == []
    want = (bytes.fromhex("8877665544332211") + (0x2000 - 4 - 0x1008).to_bytes(4, "little")
            + (0x1004).to_bytes(4, "little") + (0x3000 - 4 - 0x1010).to_bytes(4, "little"))
    assert bytes(buf[:20]) == want


@pytest.mark.parametrize("long_runs", [1, 256, 1 << 30])
@pytest.mark.parametrize("seed", range(6))
def test_by_block_is_a_stable_sort_by_block(seed, long_runs, monkeypatch):
    """asmb.ByBlock sorts runs of relocations, not relocations: block by block,
    the order of a stable argsort, with left-out relocations (block -1)
    dropped, whether the input comes in long runs (the fast path) or
    scattered (the fallback). take gives the columns at those relocations,
    whether it copies runs as slices or gathers."""
    from minild import asmb
    from minild.asmb import ByBlock
    monkeypatch.setattr(asmb, "LONG_RUNS", long_runs)
    rng = np.random.default_rng(seed)
    nblocks = int(rng.integers(1, 40))
    if seed % 2:
        rblock = rng.integers(-1, nblocks, 5000).astype(np.int32)          # scattered
    else:
        runs = rng.integers(-1, nblocks, 200)
        rblock = np.repeat(runs, rng.integers(1, 200, 200)).astype(np.int32)  # long runs
    by = ByBlock(rblock, nblocks)
    assert (by.order is None) == (seed % 2 == 0)
    cols = [np.arange(len(rblock)) * 3, rng.integers(0, 1 << 40, len(rblock))]
    for i in range(nblocks):
        want = np.flatnonzero(rblock == i)
        assert by(i).tolist() == want.tolist(), i
        got = by.take(i, *cols)
        assert [c.tolist() for c in got] == [c[want].tolist() for c in cols], i
    one = ByBlock(np.repeat(np.array([-1, 0, 1], np.int32), [10, 40, 30]), 3)
    assert one.order is None
    col = np.arange(80)
    got = one.take(0, col)[0]                  # one run: a view
    assert got.base is not None and got.tolist() == list(range(10, 50))
    assert one.take(2, col)[0].tolist() == []
    empty = ByBlock(np.zeros(0, np.int32), 3)
    assert [len(empty(i)) for i in range(3)] == [0, 0, 0]
    assert [len(empty.take(i, cols[0][:0])[0]) for i in range(3)] == [0, 0, 0]


@pytest.mark.parametrize("size", [1, 2, 4, 8])
@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("layout", ["apart", "shuffled", "overlapping"])
def test_scatter_writes_places_in_order(size, order, layout):
    """reloc.scatter: places in order and apart go in one write through a view
    with a field at every byte offset, others a row of bytes per relocation;
    either way every place holds its value, and where places overlap the later
    relocation wins, as when they are applied one by one."""
    from minild.reloc import scatter
    rng = np.random.default_rng(size)
    n = 300
    off = np.cumsum(rng.integers(size, size + 5, n)).astype(np.int64)
    if layout == "shuffled":
        off = rng.permutation(off)
    elif layout == "overlapping":
        off = np.sort(rng.integers(0, n * size // 2, n)).astype(np.int64)
    vals = rng.integers(-(1 << 62), 1 << 62, n)
    buf = np.zeros(int(off.max()) + size, np.uint8)
    scatter(buf, off, size, order, vals)
    want = np.zeros_like(buf)
    for o, v in zip(off.tolist(), vals.tolist()):   # one by one: the later wins
        field = (v % (1 << (8 * size))).to_bytes(size, "little" if order == "<" else "big")
        want[o:o + size] = np.frombuffer(field, np.uint8)
    assert (buf == want).all()


@pytest.mark.parametrize("size", [1, 2, 4, 8])
@pytest.mark.parametrize("order", ["<", ">"])
def test_gather_reads_places_at_any_offset(size, order):
    from minild.reloc import gather
    rng = np.random.default_rng(size)
    buf = rng.integers(0, 256, 64).astype(np.uint8)
    off = np.array([0, 1, 3, 7, 64 - size], np.int64)
    want = [int.from_bytes(buf[o:o + size].tobytes(), "little" if order == "<" else "big")
            for o in off.tolist()]
    got = gather(buf, off, size, order)
    assert got.dtype == np.uint64 and got.tolist() == want


# Short branches and their kin at the edges of their ranges: the instruction
# word each edge must give (from the ISA manuals' field layouts, worked out by
# hand: not from minild's tables), and the values one step past each edge,
# which must be refused. (ppc64's REL14 and REL24: test_arch_ppc64.py's
# test_branch_range_edges; arm's JUMP24/CALL: test_arch_arm.py.)
P0 = 0x10000
EDGES = [
    # arch, type, bytes of the place, base word, [(value, word or None: refused)]
    ("arm64", "R_AARCH64_CONDBR19", 4, 0x54000000,      # b.eq
     [((1 << 20) - 4, 0x547FFFE0), (-(1 << 20), 0x54800000), (4, 0x54000020),
      (1 << 20, None), (-(1 << 20) - 4, None), (6, None)]),
    ("arm64", "R_AARCH64_TSTBR14", 4, 0x36000000,       # tbz w0, #0
     [((1 << 15) - 4, 0x3603FFE0), (-(1 << 15), 0x36040000), (-4, 0x3607FFE0),
      (1 << 15, None), (-(1 << 15) - 4, None), (2, None)]),
    ("arm64", "R_AARCH64_JUMP26", 4, 0x14000000,        # b
     [((1 << 27) - 4, 0x15FFFFFF), (-(1 << 27), 0x16000000), (1 << 27, None),
      (-(1 << 27) - 4, None)]),
    ("arm64", "R_AARCH64_CALL26", 4, 0x94000000,        # bl
     [((1 << 27) - 4, 0x95FFFFFF), (-(1 << 27), 0x96000000), (1 << 27, None),
      (-(1 << 27) - 4, None)]),
    ("arm64", "R_AARCH64_LD_PREL_LO19", 4, 0x58000000,  # ldr x0, literal
     [((1 << 20) - 4, 0x587FFFE0), (-(1 << 20), 0x58800000), (1 << 20, None),
      (-(1 << 20) - 4, None)]),
    ("arm64", "R_AARCH64_ADR_PREL_LO21", 4, 0x10000000,  # adr x0
     [((1 << 20) - 1, 0x707FFFE0), (-(1 << 20), 0x10800000), (1, 0x30000000),
      (1 << 20, None), (-(1 << 20) - 1, None)]),
    ("mips", "R_MIPS_PC16", 4, 0x10000000,              # beq $0, $0
     [((1 << 17) - 4, 0x10007FFF), (-(1 << 17), 0x10008000), (1 << 17, None),
      (-(1 << 17) - 4, None), (2, None)]),
    ("mips64", "R_MIPS_PC16", 4, 0x10000000,
     [((1 << 17) - 4, 0x10007FFF), (-(1 << 17), 0x10008000), (1 << 17, None),
      (-(1 << 17) - 4, None)]),
    ("riscv64", "R_RISCV_BRANCH", 4, 0x00000063,        # beq x0, x0
     [(4094, 0x7E000FE3), (-4096, 0x80000063), (8, 0x00000463), (4096, None),
      (-4098, None), (3, None)]),
    ("riscv64", "R_RISCV_JAL", 4, 0x0000006F,           # jal x0
     [((1 << 20) - 2, 0x7FFFF06F), (-(1 << 20), 0x8000006F), (1 << 20, None),
      (-(1 << 20) - 2, None)]),
    ("riscv64", "R_RISCV_RVC_BRANCH", 2, 0xC001,        # c.beqz s0
     [(254, 0xCC7D), (-256, 0xD001), (256, None), (-258, None)]),
    ("riscv64", "R_RISCV_RVC_JUMP", 2, 0xA001,          # c.j
     [(2046, 0xAFFD), (-2048, 0xB001), (2048, None), (-2050, None)]),
    ("s390x", "R_390_PC16DBL", 2, 0x0000,               # brc's halfword count
     [(65534, 0x7FFF), (-65536, 0x8000), (65536, None), (-65538, None), (3, None)]),
    ("s390x", "R_390_PLT16DBL", 2, 0x0000,
     [(65534, 0x7FFF), (-65536, 0x8000), (65536, None), (-65538, None)]),
    ("s390x", "R_390_PC16", 2, 0x0000,
     [(32767, 0x7FFF), (-32768, 0x8000), (32768, None), (-32769, None)]),
    ("amd64", "R_X86_64_PC8", 1, 0xAA,
     [(127, 0x7F), (-128, 0x80), (1, 0x01), (128, None), (-129, None)]),
    ("amd64", "R_X86_64_PC16", 2, 0xAAAA,
     [(32767, 0x7FFF), (-32768, 0x8000), (32768, None), (-32769, None)]),
    ("x86", "R_386_PC8", 1, 0xAA,
     [(127, 0x7F), (-128, 0x80), (128, None), (-129, None)]),
    ("x86", "R_386_PC16", 2, 0xAAAA,
     [(32767, 0x7FFF), (-32768, 0x8000), (32768, None), (-32769, None)]),
]


@pytest.mark.parametrize("archname,rtype,size,base,cases", EDGES,
                         ids=[f"{e[0]}-{e[1]}" for e in EDGES])
def test_short_range_edges(archname, rtype, size, base, cases):
    order = "big" if arch.lookup(archname).order == ">" else "little"
    for value, want in cases:
        before = base.to_bytes(size, order) + b"\xaa" * (8 - size)
        got, probs = run(archname, rtype, P0 + value, 0, P0, before)
        if want is None:
            assert len(probs) == 1 and got == before, f"{value}: not refused"
        else:
            assert probs == [], f"{value}: refused"
            assert got == want.to_bytes(size, order) + b"\xaa" * (8 - size), \
                f"{value}: {got[:size].hex()}, want {want:0{2 * size}x}"
