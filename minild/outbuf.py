"""outbuf: the output file, written through a shared mapping or a buffered file.

OutBuf follows Go's cmd/link OutBuf (see shared/seeds): the mmap phase sizes the
file (fallocate, ftruncate) and maps it MAP_SHARED; asmb's parallel writers each
get a View at their block's offset and write into the mapping; writes past the
mapped size (asmb2's symbol tables, whose size layout does not compute) go to a
heap area that munmap copies in after growing the file. Views may not grow the
heap: the heap is not shared between writers. Where mapping is impossible or
unwanted (--no-mmap, or a format that asks for it), the same calls go to the
file with pwrite, and asmb applies relocations to a block before writing it.
"""

from __future__ import annotations

import errno
import mmap
import os
import sys
from typing import Callable

import numpy as np

from .errors import InternalError
from .outfile import byte_view, write_all

POPULATE = getattr(mmap, "MAP_POPULATE", 0)

# Past this much heap spill, grow the mapping and copy the heap in (Go 1.16+).
MAX_HEAP = 10 << 20


def fallocate(fd: int, size: int, call: Callable[[int, int, int], None] = os.posix_fallocate) -> None:
    """fallocate reserves the file's blocks so that writes into the mapping do not
    fault on a full disk (SIGBUS) but fail here, cleanly. Interrupted calls are
    retried; file systems that cannot preallocate are fine without it."""
    while True:
        try:
            call(fd, 0, size)
            return
        except InterruptedError:
            continue
        except OSError as e:
            if e.errno == errno.EINTR:
                continue
            if e.errno in (errno.EOPNOTSUPP, errno.ENOTSUP, errno.EPERM, errno.EINVAL, errno.ENOSYS):
                return
            raise


class OutBuf:
    """OutBuf is the output file being written at a current offset.

    mode "mmap": the file is mapped (mmap) and writes go to the mapping or the
    heap; mode "buffered": writes go straight to the file with pwrite.
    """

    def __init__(self, fd: int | None = None, mode: str = "mmap", *, max_heap: int = MAX_HEAP,
                 fallocate_call: Callable[[int, int, int], None] = os.posix_fallocate):
        if mode not in ("mmap", "buffered"):
            raise InternalError(f"unknown OutBuf mode {mode!r}")
        self.fd = fd
        self.mode = mode
        self.off = 0
        self.buf = None                     # the mapping (mmap.mmap), once mapped
        self._arr: np.ndarray | None = None  # uint8 view of buf for numpy writers
        self.heap = bytearray()             # writes past len(buf)
        self.is_view = False
        self.max_heap = max_heap
        self._fallocate = fallocate_call

    # --- mapping ----------------------------------------------------------

    def mmap(self, filesize: int) -> None:
        """mmap sizes the file to filesize and maps it (raises OSError)."""
        if self.mode != "mmap":
            raise InternalError("mmap of a buffered OutBuf")
        if filesize:
            fallocate(self.fd, filesize, self._fallocate)
        os.ftruncate(self.fd, filesize)
        if filesize:  # an empty file cannot be mapped: everything goes to the heap
            self._map(filesize)

    def _map(self, size: int) -> None:
        # MAP_POPULATE: fault the (fallocated) pages in with one call instead of
        # one trap per page while asmb writes.
        self.buf = mmap.mmap(self.fd, size, flags=mmap.MAP_SHARED | POPULATE,
                             prot=mmap.PROT_READ | mmap.PROT_WRITE)
        self._arr = np.frombuffer(self.buf, np.uint8)

    def is_mmapped(self) -> bool:
        return self.buf is not None

    def mapped_len(self) -> int:
        return len(self.buf) if self.buf is not None else 0

    def view(self, start: int) -> "OutBuf":
        """view returns a writer at start sharing the mapping: for parallel writers."""
        v = OutBuf.__new__(OutBuf)
        v.__dict__.update(self.__dict__)
        v.off, v.is_view = start, True
        return v

    def _copy_heap(self) -> None:
        """_copy_heap grows the file and mapping by the heap's size and copies it in."""
        if not self.heap:
            return
        if self.is_view:
            raise InternalError("cannot copy the heap from a view")
        self._grow(self.mapped_len() + len(self.heap))

    def reserve(self, end: int) -> None:
        """reserve grows the file and the mapping to end bytes (taking in any
        heap spill), so that the writes up to end go straight into the
        mapping: for asmb2, which knows its tables' sizes before it writes
        them. A view or a buffered OutBuf has nothing to grow."""
        if self.mode != "mmap" or self.is_view or end <= self.mapped_len() + len(self.heap):
            return
        self._grow(end)

    def _grow(self, size: int) -> None:
        """_grow maps the file anew at size bytes (reserved first) and moves
        the heap spill into it, where it follows the old mapping."""
        old = self.mapped_len()
        self._arr = None
        if self.buf is not None:
            self.buf.close()
        fallocate(self.fd, size, self._fallocate)
        os.ftruncate(self.fd, size)
        self._map(size)
        if self.heap:
            self.buf[old:old + len(self.heap)] = self.heap
            self.heap = bytearray()

    def munmap(self) -> None:
        """munmap copies in any heap spill and unmaps; the file keeps its contents."""
        if self.is_view:
            raise InternalError("munmap of a view")
        # Called while an error propagates (out of memory in asmb, a full
        # disk), munmap only lets go of the mapping: the output is discarded,
        # and blocks of the mapping may still be alive in the error's frames.
        failing = sys.exc_info()[0] is not None
        if not failing:
            self._copy_heap()
        self._arr = None
        if self.buf is not None:
            try:
                self.buf.close()
            except BufferError:
                if not failing:
                    raise InternalError("munmap while a view or block of the mapping is alive")
            self.buf = None

    # --- writing ----------------------------------------------------------

    def write_loc(self, n: int):
        """write_loc returns where n bytes at the current offset go, as (position,
        buffer): in the mapping if they fit, else in the heap (grown to fit)."""
        mapped = self.mapped_len()
        if self.off + n <= mapped:
            return self.off, self.buf
        if self.is_view:
            # The heap is not shared between writers: a view writing past the
            # mapping means layout sized the file wrong.
            raise InternalError(f"write of {n} bytes at {self.off:#x} past the mapped "
                                f"size {mapped:#x} from a parallel writer")
        if self.off < mapped:
            raise InternalError(f"write of {n} bytes at {self.off:#x} straddles the end of "
                                f"the mapping ({mapped:#x})")
        pos = self.off - mapped
        need = pos + n
        if need > len(self.heap):
            self.heap.extend(bytes(need - len(self.heap)))
        return pos, self.heap

    def write(self, data) -> None:
        """write puts data at the current offset and advances it."""
        data = byte_view(data)
        n = len(data)
        if self.mode == "buffered":
            write_all(self.fd, data, self.off)
        else:
            if not self.is_view and self.off == self.mapped_len() + len(self.heap):
                # At the end of the spill (asmb2's tables, in order): append,
                # one copy, where write_loc would first extend it by zeros.
                b = self.heap
                b += data
            else:
                pos, b = self.write_loc(n)
                b[pos:pos + n] = data
            if b is self.heap and len(self.heap) > self.max_heap and not self.is_view:
                # A big spill: grow the mapping once instead of the heap forever.
                self._copy_heap()
        self.off += n

    def seek(self, off: int) -> None:
        self.off = off

    def block(self, start: int, n: int) -> np.ndarray:
        """block returns n bytes at start as a uint8 array to fill: the mapping
        itself when mapped, else a fresh zeroed array to pass to `commit`."""
        if self.mode == "buffered":
            return np.zeros(n, np.uint8)
        if self._arr is None or start + n > len(self._arr):
            raise InternalError(f"block [{start:#x}, {start + n:#x}) past the mapped "
                                f"size {self.mapped_len():#x}")
        return self._arr[start:start + n]

    def commit(self, start: int, arr: np.ndarray) -> None:
        """commit writes a block filled by the caller, when it is not in the mapping."""
        if self.mode == "buffered":
            # pwrite may write less than asked (a nearly full disk, a file-size
            # limit): write_all loops until all is written or a write fails.
            write_all(self.fd, memoryview(arr), start)
