"""OutBuf: table-driven tests in the spirit of Go's outbuf_test.go (TestWriteLoc,
TestIsMmapped), plus the heap spill, views, fallocate and the buffered path,
checked by reading the file back with plain os.read."""

import errno
import os

import numpy as np
import pytest

from minild.errors import InternalError
from minild.outbuf import OutBuf, fallocate


@pytest.mark.parametrize("buf_len,off,heap_len,n,want_heap_len,want_pos,in_heap", [
    (100, 0, 0, 100, 0, 0, False),     # fits the mapping exactly
    (100, 100, 0, 100, 100, 0, True),  # starts at the end of the mapping: heap
    (10, 10, 0, 100, 100, 0, True),
    (10, 20, 10, 100, 110, 10, True),  # grows an existing heap
    (0, 0, 0, 100, 100, 0, True),      # nothing mapped: all heap
    (100, 10, 0, 50, 0, 10, False),
])
def test_write_loc(buf_len, off, heap_len, n, want_heap_len, want_pos, in_heap):
    ob = OutBuf(None)
    ob.buf = bytearray(buf_len) if buf_len else None
    ob.heap = bytearray(heap_len)
    ob.off = off
    pos, b = ob.write_loc(n)
    assert pos == want_pos
    assert (b is ob.heap) == in_heap
    assert len(ob.heap) == want_heap_len


def test_write_loc_straddle_is_internal_error():
    ob = OutBuf(None)
    ob.buf = bytearray(100)
    ob.off = 90
    with pytest.raises(InternalError, match="straddles"):
        ob.write_loc(20)


@pytest.mark.parametrize("mapped,want", [(False, False), (True, True)])
def test_is_mmapped(tmp_path, mapped, want):
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
    try:
        ob = OutBuf(fd)
        if mapped:
            ob.mmap(4096)
        assert ob.is_mmapped() == want
        ob.munmap()
        assert not ob.is_mmapped()
    finally:
        os.close(fd)


def _file(tmp_path):
    return os.open(tmp_path / "out", os.O_RDWR | os.O_CREAT | os.O_TRUNC)


def _contents(tmp_path):
    return (tmp_path / "out").read_bytes()


def test_heap_spill_copied_in_at_munmap(tmp_path):
    fd = _file(tmp_path)
    ob = OutBuf(fd)
    ob.mmap(16)
    ob.write(b"A" * 16)          # fills the mapping
    ob.seek(20)
    ob.write(b"tail")            # past it: heap, with a 4-byte gap of zeros
    assert len(ob.heap) == 8 and ob.mapped_len() == 16
    ob.munmap()
    os.close(fd)
    assert _contents(tmp_path) == b"A" * 16 + b"\0" * 4 + b"tail"


def test_view_writes_into_mapping_and_cannot_grow_heap(tmp_path):
    fd = _file(tmp_path)
    ob = OutBuf(fd)
    ob.mmap(32)
    v = ob.view(8)
    v.write(b"view")
    assert v.off == 12 and ob.off == 0     # views have their own offset
    v.seek(30)
    with pytest.raises(InternalError, match="parallel writer"):
        v.write(b"toolong")
    with pytest.raises(InternalError):
        v.munmap()
    del v  # a view shares the mapping: it must be gone before the unmap
    ob.munmap()
    os.close(fd)
    assert _contents(tmp_path)[8:12] == b"view"


def test_big_heap_is_copied_into_mapping_early(tmp_path):
    fd = _file(tmp_path)
    ob = OutBuf(fd, max_heap=64)
    ob.mmap(16)
    ob.seek(16)
    ob.write(b"x" * 100)          # > max_heap: the mapping grows, heap empties
    assert ob.heap == bytearray() and ob.mapped_len() == 116
    ob.write(b"y")
    ob.munmap()
    os.close(fd)
    assert _contents(tmp_path) == b"\0" * 16 + b"x" * 100 + b"y"


@pytest.mark.parametrize("spill", [b"", b"ab"])
def test_reserve_maps_before_the_writes(tmp_path, spill):
    """reserve grows the mapping (after copying in any spill) so that the
    writes up to its end go into the mapping, none through the heap; the
    file is what the spilling writes would have made."""
    fd = _file(tmp_path)
    ob = OutBuf(fd)
    ob.mmap(16)
    ob.write(b"A" * 16)
    ob.write(spill)                           # in the heap
    ob.reserve(40)
    assert ob.heap == bytearray() and ob.mapped_len() == 40
    ob.seek(24)
    ob.write(np.frombuffer(b"0123456789abcdef", np.uint8))
    assert ob.heap == bytearray()
    ob.write(b"!")                            # past the reserve: the heap again
    assert len(ob.heap) == 1
    ob.reserve(10)                            # nothing to grow
    assert ob.mapped_len() == 40
    ob.munmap()
    os.close(fd)
    assert _contents(tmp_path) == (b"A" * 16 + spill).ljust(24, b"\0") + b"0123456789abcdef!"


def test_reserve_in_a_view_or_buffered_does_nothing(tmp_path):
    fd = _file(tmp_path)
    ob = OutBuf(fd)
    ob.mmap(16)
    v = ob.view(0)
    v.reserve(64)
    assert ob.mapped_len() == 16
    del v
    b = OutBuf(fd, "buffered")
    b.reserve(64)
    ob.munmap()
    os.close(fd)
    assert len(_contents(tmp_path)) == 16


def test_block_is_the_mapping_or_a_buffer(tmp_path):
    for mode in ("mmap", "buffered"):
        fd = _file(tmp_path)
        ob = OutBuf(fd, mode)
        if mode == "mmap":
            ob.mmap(64)
        else:
            os.ftruncate(fd, 64)
        blk = ob.block(16, 8)
        blk[:] = np.arange(8, dtype=np.uint8)
        ob.commit(16, blk)
        del blk
        if mode == "mmap":
            ob.munmap()
        os.close(fd)
        assert _contents(tmp_path)[16:24] == bytes(range(8)), mode


def test_block_past_mapping_is_internal_error(tmp_path):
    fd = _file(tmp_path)
    ob = OutBuf(fd)
    ob.mmap(16)
    with pytest.raises(InternalError):
        ob.block(8, 16)
    ob.munmap()
    os.close(fd)


def test_buffered_write_uses_pwrite(tmp_path):
    fd = _file(tmp_path)
    ob = OutBuf(fd, "buffered")
    ob.seek(4)
    ob.write(b"abc")
    os.close(fd)
    assert _contents(tmp_path) == b"\0" * 4 + b"abc"


def _fake_fallocate(results):
    calls = []

    def call(fd, off, size):
        calls.append(size)
        r = results.pop(0)
        if r is not None:
            raise r
    return call, calls


@pytest.mark.parametrize("results,ok,ncalls", [
    ([None], True, 1),
    ([InterruptedError(errno.EINTR, "x"), None], True, 2),          # retried
    ([OSError(errno.EINTR, "x"), OSError(errno.EINTR, "x"), None], True, 3),
    ([OSError(errno.EOPNOTSUPP, "x")], True, 1),                    # file system can't: fine
    ([OSError(errno.EPERM, "x")], True, 1),
    ([OSError(errno.ENOSPC, "No space left on device")], False, 1),  # a real failure
])
def test_fallocate(results, ok, ncalls):
    call, calls = _fake_fallocate(list(results))
    if ok:
        fallocate(3, 100, call)
    else:
        with pytest.raises(OSError):
            fallocate(3, 100, call)
    assert len(calls) == ncalls
