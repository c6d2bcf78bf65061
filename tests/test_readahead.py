"""The read-ahead (minild.readahead): what a child decodes while the parent
imports numpy is what the parent would have decoded, and whatever becomes of
the child (stopped early, dead, out of room), the link's objects, bytes and
messages are the same as without it."""

import base64
import json
import mmap
import os
import re

import numpy as np
import pytest

from conftest import EXAMPLES, minild, run_output
from minild import arch, encode, loader, readahead, schema, shm
from minild.link import Options, link
from test_load import generated_program, same_results

MULTI = [EXAMPLES / "multi" / n for n in ("main.obj", "greet.obj", "ops.obj")]


def compact_multi(tmp_path) -> list[str]:
    """MULTI in the compact encoding (the read-ahead decodes only those)."""
    (tmp_path / "c").mkdir(exist_ok=True)
    out = []
    for p in MULTI:
        o = loader.read_object(str(p))
        q = tmp_path / "c" / p.name
        q.write_bytes(encode.encode_compact(o, arch.lookup(o.arch)))
        out.append(str(q))
    return out


def mixed(tmp_path) -> list[str]:
    """Compact objects, a readable one, a broken one and a missing one."""
    bad = tmp_path / "bad.obj"
    bad.write_text('{"version": 1, "encoding": "compact", "arch": "amd64"}')
    c = compact_multi(tmp_path)
    return [c[0], str(MULTI[1]), c[1], str(bad), c[2], str(tmp_path / "missing.obj")]


def test_a_finished_child_decoded_every_compact_document(tmp_path, monkeypatch):
    monkeypatch.setattr(readahead, "AHEAD_BYTES", 0)
    paths = mixed(tmp_path)
    ra = readahead.start(paths, 2)
    assert ra is not None
    got = ra.collect(wait=True)
    assert sorted(got) == [0, 2, 4]   # not the readable, broken or missing file
    for i, doc in got.items():
        want = schema.decode(paths[i])
        assert (doc.version, doc.arch) == (want.version, want.arch)
        for s, t in zip(doc.sections, want.sections):
            assert (s.name, s.kind, s.align, s.size) == (t.name, t.kind, t.align, t.size)
            assert (s.data is None) == (t.data is None) and bytes(s.data or b"") == (t.data or b"")
        for group in ("symbols", "relocs"):
            g, h = getattr(doc, group), getattr(want, group)
            for f in g.__struct_fields__:
                x, y = getattr(g, f), getattr(h, f)
                assert (bytes(x) == bytes(y)) if isinstance(y, bytes) else x == y, (group, f)
    assert ra.collect() is got


@pytest.mark.parametrize("jobs", [1, 2])
def test_decoded_documents_give_the_same_objects(tmp_path, monkeypatch, jobs):
    paths = mixed(tmp_path)
    plain = loader.read_objects(paths, 1)
    monkeypatch.setattr(readahead, "AHEAD_BYTES", 0)
    monkeypatch.setattr(loader, "FORK_LOAD_BYTES", 0)   # forked readers take decoded ones too
    ra = readahead.start(paths, 2)
    same_results(plain, loader.read_objects(paths, jobs, ra.collect(wait=True)))


def test_a_child_stopped_at_once_changes_nothing(tmp_path, monkeypatch):
    paths = mixed(tmp_path)
    plain = loader.read_objects(paths, 1)
    monkeypatch.setattr(readahead, "AHEAD_BYTES", 0)
    ra = readahead.start(paths, 2)
    same_results(plain, loader.read_objects(paths, 1, ra.collect()))


def test_a_child_that_dies_leaves_everything_to_the_parent(tmp_path, monkeypatch):
    paths = compact_multi(tmp_path)
    plain = loader.read_objects(paths, 1)
    monkeypatch.setattr(readahead, "AHEAD_BYTES", 0)
    parent, real = os.getpid(), readahead.decode

    def dying(path):
        if os.getpid() != parent and path == paths[1]:
            os._exit(7)   # after the first document was written
        return real(path)

    monkeypatch.setattr(readahead, "decode", dying)
    ra = readahead.start(paths, 2)
    assert ra.collect(wait=True) == {}
    same_results(plain, loader.read_objects(paths, 1, {}))


def test_documents_that_do_not_fit_are_left_to_the_parent(tmp_path, monkeypatch):
    paths = compact_multi(tmp_path)
    monkeypatch.setattr(readahead, "AHEAD_BYTES", 0)
    # Room for the table and the first document's record only.
    first = readahead._pack(schema.decode(paths[0]), mmap.mmap(-1, 1 << 20), 0)
    monkeypatch.setattr(readahead, "_region", lambda total, files: 8 + 16 * files + first)
    got = readahead.start(paths, 2).collect(wait=True)
    assert list(got) == [0]
    same_results(loader.read_objects(paths, 1), loader.read_objects(paths, 1, got))


def test_no_read_ahead_where_it_would_not_pay(tmp_path):
    paths = compact_multi(tmp_path)
    assert readahead.start(paths, 1) is None                 # -j1
    assert readahead.start(paths, 2) is None                 # a few KB of input
    assert readahead.start([str(tmp_path / "none")], 2) is None


def test_cancel_reaps_the_child(tmp_path, monkeypatch):
    monkeypatch.setattr(readahead, "AHEAD_BYTES", 0)
    ra = readahead.start(compact_multi(tmp_path), 2)
    ra.cancel()
    with pytest.raises(ChildProcessError):
        os.waitpid(ra.pid, os.WNOHANG)
    assert ra.collect() == {}


def test_link_with_a_read_ahead_is_the_same_link(tmp_path, monkeypatch):
    paths = compact_multi(tmp_path)
    link(Options(objects=paths, output=str(tmp_path / "plain"), jobs=1))
    monkeypatch.setattr(readahead, "AHEAD_BYTES", 0)
    lines = []
    link(Options(objects=paths, output=str(tmp_path / "ahead"), jobs=2, log=lines.append,
                 ahead=readahead.start(paths, 2)))
    assert (tmp_path / "plain").read_bytes() == (tmp_path / "ahead").read_bytes()
    assert any(re.fullmatch(r"minild: read ahead: decoded [0-3] of 3 objects while starting", x)
               for x in lines), lines


def test_the_cli_reads_ahead(tmp_path):
    """A link of more than AHEAD_BYTES of input, as a user runs it: the
    read-ahead runs (-v says how far it got), the output is the -j1 output
    and runs."""
    paths = compact_multi(tmp_path)
    pad = tmp_path / "pad.obj"   # a large object: 1.5 MiB of rodata, no symbols
    pad.write_text(json.dumps({
        "version": 1, "encoding": "compact", "arch": "amd64",
        "sections": [{"name": ".rodata.pad", "kind": "rodata",
                      "data": base64.b64encode(bytes(3 << 19)).decode()}],
        "symbols": {"count": 0, "name": [], "section": "", "value": "", "size": "",
                    "binding": "", "type": ""},
        "relocs": {"count": 0, "types": [], "section": "", "offset": "", "type": "",
                   "symbol": "", "addend": ""}}))
    assert sum(os.path.getsize(p) for p in [*paths, pad]) > readahead.AHEAD_BYTES
    minild("link", *paths, pad, "-o", tmp_path / "serial", "-j1")
    p = minild("link", *paths, pad, "-o", tmp_path / "ahead", "-j2", "-v")
    assert re.search(r"read ahead: decoded [0-4] of 4 objects", p.stderr), p.stderr
    assert (tmp_path / "serial").read_bytes() == (tmp_path / "ahead").read_bytes()
    want, got = run_output("amd64", tmp_path / "serial"), run_output("amd64", tmp_path / "ahead")
    assert (got.returncode, got.stdout) == (want.returncode, want.stdout) and got.stdout


def test_a_fifo_is_left_to_the_parent(tmp_path, monkeypatch):
    """The child decodes only regular files: opening a FIFO with no writer
    would block it (and the parent waiting for it)."""
    import signal
    paths = compact_multi(tmp_path)
    fifo = tmp_path / "fifo.obj"
    os.mkfifo(fifo)
    monkeypatch.setattr(readahead, "AHEAD_BYTES", 0)
    ra = readahead.start([paths[0], str(fifo), paths[1]], 2)

    def hung(*_):
        os.kill(ra.pid, signal.SIGKILL)
        raise AssertionError("the read-ahead child blocked on the FIFO")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        assert sorted(ra.collect(wait=True)) == [0, 2]
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_sizes_are_those_of_regular_files(tmp_path):
    """sizes: a regular file's size; None for a FIFO, a directory or a path
    that does not exist (left to the parent, which reports them)."""
    f = tmp_path / "a.obj"
    f.write_bytes(b"x" * 123)
    fifo = tmp_path / "fifo.obj"
    os.mkfifo(fifo)
    got = readahead.sizes([str(f), str(fifo), str(tmp_path), str(tmp_path / "missing.obj")])
    assert got == [123, None, None, None]


def test_what_the_objects_are_built_from_is_released_after_columns(tmp_path, monkeypatch):
    """Each decoded document's stretch before its section bytes is listed
    in spent; a link releases those stretches after columns (shm.release)
    and writes the same bytes as a link without the read-ahead: the section
    bytes after them are untouched."""
    paths, m = generated_program(tmp_path)
    monkeypatch.setattr(readahead, "AHEAD_BYTES", 0)
    ra = readahead.start(paths, 2)
    docs = ra.collect(wait=True)
    assert len(ra.spent) == len(docs) == len(paths)
    for (shared, lo, hi), doc in zip(ra.spent, docs.values()):
        assert shared is ra.shared and lo < hi
        for s in doc.sections:   # the bytes lie after the stretch
            if s.data is not None and len(s.data):
                start = np.frombuffer(s.data, np.uint8).ctypes.data - \
                    np.frombuffer(shared, np.uint8).ctypes.data
                assert start >= hi
    link(Options(objects=paths, output=str(tmp_path / "plain"), jobs=1))
    released, real = [], shm.release
    monkeypatch.setattr(shm, "release", lambda *a: released.append(real(*a)) or released[-1])
    link(Options(objects=paths, output=str(tmp_path / "ahead"), jobs=1, ahead=ra))
    # main.obj holds less than a page of columns: nothing whole to release.
    assert len(released) == len(paths) and sum(n > 0 for n in released) == 6, released
    assert (tmp_path / "plain").read_bytes() == (tmp_path / "ahead").read_bytes()
    p = run_output("amd64", tmp_path / "ahead")
    assert (p.stdout.decode(), p.returncode) == (m["stdout"], m["status"])
