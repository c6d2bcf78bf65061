"""Reading objects in forked children (loader.read_objects): the same objects,
errors and output as reading them in the parent, whatever -j is and whatever
becomes of a child."""

import os

import numpy as np
import pytest

from conftest import EXAMPLES, run_output
from minild import arch, encode, loader, workers
from minild.errors import LinkError

MULTI = [EXAMPLES / "multi" / n for n in ("main.obj", "greet.obj", "ops.obj")]


def compact_copies(tmp_path, k=4):
    """MULTI, several times over, in both encodings: enough files for shares."""
    paths = []
    for i in range(k):
        for p in MULTI:
            if i % 2:
                q = tmp_path / f"c{i}-{p.name}"
                o = loader.read_object(str(p))
                q.write_bytes(encode.encode_compact(o, arch.lookup(o.arch)))
                paths.append(str(q))
            else:
                paths.append(str(p))
    return paths


def generated_program(tmp_path) -> tuple[list[str], dict]:
    """generated_program writes the benchmark's program (benchmarks/gen_compact)
    at 2,400 functions in 6 compact objects and a main: columns of more than
    a page per object. It returns the objects' paths and the manifest (the
    checksum the program prints, its exit status)."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import gen_compact
    from program import build

    m = gen_compact.write(build(2400, 6, seed=3, table_reps=1), str(tmp_path), 3)
    return [str(tmp_path / n) for n in m["inputs"]], m


def same(a, b) -> None:
    assert (a.path, a.arch, a.sec_name) == (b.path, b.arch, b.sec_name)
    for f in loader._ARRAYS:
        x, y = getattr(a, f), getattr(b, f)
        assert x.dtype == y.dtype and np.array_equal(x, y), f
    assert a.sym_name.tolist() == b.sym_name.tolist()
    assert [None if d is None else bytes(d) for d in a.sec_data] == \
        [None if d is None else bytes(d) for d in b.sec_data]


def same_results(a: list, b: list) -> None:
    """same_results: the same objects, and the same errors, in the same places."""
    assert len(a) == len(b)
    for x, y in zip(a, b):
        if isinstance(x, LinkError):
            assert isinstance(y, LinkError) and str(x) == str(y)
        else:
            same(x, y)


@pytest.mark.parametrize("jobs", [2, 3, 5])
def test_forked_reading_gives_the_same_objects(tmp_path, monkeypatch, jobs):
    paths = compact_copies(tmp_path)
    bad = tmp_path / "bad.obj"
    bad.write_text('{"version": 1, "encoding": "readable", "arch": "amd64", "sections": 7}')
    paths.insert(5, str(bad))
    paths.append(str(tmp_path / "missing.obj"))
    serial = loader.read_objects(paths, 1)
    monkeypatch.setattr(loader, "FORK_LOAD_BYTES", 0)
    forked = loader.read_objects(paths, jobs)
    assert len(serial) == len(paths)
    same_results(serial, forked)


def test_a_child_that_dies_leaves_its_share_to_the_parent(tmp_path, monkeypatch):
    paths = compact_copies(tmp_path)
    serial = loader.read_objects(paths, 1)
    monkeypatch.setattr(loader, "FORK_LOAD_BYTES", 0)
    parent = os.getpid()
    real = loader._read_or_error

    def flaky(path, doc=None):
        if os.getpid() != parent:
            os._exit(9)
        return real(path, doc)

    monkeypatch.setattr(loader, "_read_or_error", flaky)
    for a, b in zip(serial, loader.read_objects(paths, 3)):
        same(a, b)


def test_a_share_too_big_for_its_region_is_redone(tmp_path, monkeypatch):
    paths = compact_copies(tmp_path)
    serial = loader.read_objects(paths, 1)
    monkeypatch.setattr(loader, "FORK_LOAD_BYTES", 0)
    real = loader._ship
    monkeypatch.setattr(loader, "_ship", lambda objs, shared, lo, hi: real(objs, shared, lo, lo + 64))
    for a, b in zip(serial, loader.read_objects(paths, 2)):
        same(a, b)


def test_weighted_shares():
    assert workers.weighted_shares([1] * 10, 2) == [(0, 5), (5, 10)]
    assert workers.weighted_shares([1] * 10, 2, first=1.5) == [(0, 6), (6, 10)]
    assert workers.weighted_shares([10, 1, 1, 1], 2) == [(0, 1), (1, 4)]
    assert workers.weighted_shares([5, 5], 3) == [(0, 1), (1, 2), (2, 2)]
    assert workers.weighted_shares([], 2) == [(0, 0), (0, 0)]


def test_forked_link_is_the_serial_link(tmp_path, monkeypatch):
    from minild.link import Options, link
    paths = compact_copies(tmp_path, k=2)[3:]   # the compact copies of MULTI
    link(Options(objects=paths, output=str(tmp_path / "serial"), jobs=1))
    monkeypatch.setattr(loader, "FORK_LOAD_BYTES", 0)
    link(Options(objects=paths, output=str(tmp_path / "forked"), jobs=2))
    assert (tmp_path / "serial").read_bytes() == (tmp_path / "forked").read_bytes()
    want = run_output("amd64", tmp_path / "serial")
    got = run_output("amd64", tmp_path / "forked")
    assert (got.returncode, got.stdout) == (want.returncode, want.stdout) and got.stdout


@pytest.mark.parametrize("dt, values, width", [
    ("<i4", [-1, -2, 0, 5], 1),
    ("<i4", [-129, 127], 2),
    ("<i8", [-4, 100], 1),
    ("<i8", [-(1 << 40), 0], 8),
    ("<u8", [0, 255], 1),
    ("<u8", [0, 256], 2),
    ("<u8", [0, (1 << 64) - 1], 8),
    ("<u4", [1 << 31], 4),
    ("<u2", [0, 3], 1),
    ("u1", [0, 2], 1),
    ("<u8", [], 8),
])
def test_columns_are_written_narrow_and_read_wide(dt, values, width):
    """A compact column's width is its byte length over count: a writer picks the
    narrowest that holds every value; the reader views it in that width, then
    sign- or zero-extends it, to the column's type or, for addends of up to 4
    bytes, to int32 (loader.NARROW)."""
    from minild.errors import Diagnostics
    full = np.dtype(dt)
    raw = encode._narrow(np.array(values, dtype=full), dt)
    assert len(raw) == width * len(values)
    group, name = next(k for k, v in loader.COLUMNS.items() if np.dtype(v) == full)
    d = Diagnostics()
    view = loader._column("x.obj", group, name, raw, len(values), d)
    assert not d and view.dtype.itemsize == width and view.tolist() == values
    col = loader._wide(view, group, name)
    narrow = loader.NARROW.get((group, name))
    want = narrow if narrow is not None and width <= narrow.itemsize else full
    assert col.dtype == want and col.tolist() == values


def test_no_shared_mapping_means_a_serial_read(tmp_path, monkeypatch):
    paths = compact_copies(tmp_path)
    serial = loader.read_objects(paths, 1)
    monkeypatch.setattr(loader, "FORK_LOAD_BYTES", 0)

    def refuse(*a, **k):
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(loader, "_shared_mapping", refuse)
    monkeypatch.setattr(os, "fork", lambda: pytest.fail("forked without a shared mapping"))
    for a, b in zip(serial, loader.read_objects(paths, 2)):
        same(a, b)


def test_int32_and_int64_columns_mix(tmp_path):
    """Readable objects carry int64 addends, compact ones with narrow columns
    int32: a link of both kinds gives the bytes of an all-readable link."""
    from minild.link import Options, link
    (tmp_path / "c").mkdir()
    compact = []
    for p in MULTI:   # the same names: .symtab lists each object's file name
        o = loader.read_object(str(p))
        q = tmp_path / "c" / p.name
        q.write_bytes(encode.encode_compact(o, arch.lookup(o.arch)))
        compact.append(str(q))
    link(Options(objects=[str(p) for p in MULTI], output=str(tmp_path / "readable")))
    ctx = link(Options(objects=[str(MULTI[0]), *compact[1:]], output=str(tmp_path / "mixed")))
    assert ctx.relocs.add.dtype == np.int64
    assert (tmp_path / "readable").read_bytes() == (tmp_path / "mixed").read_bytes()
    ctx = link(Options(objects=compact, output=str(tmp_path / "compact")))
    assert ctx.relocs.add.dtype == np.int32 and ctx.relocs.off.dtype == np.int32
    assert (tmp_path / "readable").read_bytes() == (tmp_path / "compact").read_bytes()


def test_joined_columns_leave_shared_memory(tmp_path, monkeypatch):
    """Once columns.columns has joined the objects' columns, the stretches of
    the children's shared memory that held them are given back (their pages
    read as zeros: the kernel dropped them), while the section bytes that
    follow stay until the output is written: the output is the serial
    link's, byte for byte, and runs and prints the program's checksum."""
    from minild import shm
    from minild.link import Options, link

    objs, m = generated_program(tmp_path)
    link(Options(objects=objs, output=str(tmp_path / "serial"), jobs=1))
    monkeypatch.setattr(loader, "FORK_LOAD_BYTES", 0)
    released, real = [], shm.release

    def release(shared, lo, hi):
        n = real(shared, lo, hi)
        page = shm.mmap.PAGESIZE
        a = -(-lo // page) * page
        released.append((n, bytes(shared[a:a + n])))
        return n

    monkeypatch.setattr(shm, "release", release)
    link(Options(objects=objs, output=str(tmp_path / "forked"), jobs=2))
    assert released and all(n > 0 for n, _ in released), [n for n, _ in released]
    assert all(b == bytes(len(b)) for _, b in released)
    assert (tmp_path / "forked").read_bytes() == (tmp_path / "serial").read_bytes()
    p = run_output("amd64", tmp_path / "forked")



def test_shared_memory_is_unmapped_once_the_sections_are_written(tmp_path, monkeypatch):
    """The children's shared mapping lives while its section bytes are
    needed and not to the end of the link: with the link's context still
    held, the kernel lists no more shared mappings than before the link."""
    from minild.link import Options, link

    def shared_maps() -> int:
        with open("/proc/self/maps") as f:
            return sum(" /dev/zero" in line for line in f)

    paths = compact_copies(tmp_path, k=2)[3:]
    monkeypatch.setattr(loader, "FORK_LOAD_BYTES", 0)
    mapped = []
    real = loader._shared_mapping
    monkeypatch.setattr(loader, "_shared_mapping", lambda n: mapped.append(real(n)) or mapped[-1])
    before = shared_maps()
    ctx = link(Options(objects=paths, output=str(tmp_path / "out"), jobs=2))
    assert len(mapped) == 1       # the children shipped through shared memory
    mapped.clear()
    assert ctx.relocs is not None and shared_maps() == before
