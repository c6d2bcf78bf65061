"""heap: the link process's malloc settings, made once at the start of a link.

cli.link_cmd calls tune() before numpy is imported, so that every array the
link allocates comes from a heap set up for a short batch process. glibc only
(through ctypes); elsewhere tune() does nothing and the link is the same, only
slower.

Two settings, each measured on the benchmark (docs/performance.md, 'Fourth
round'; the figures these notes rest on: 'Figures behind the code'):

* Freed memory stays in the process. A link allocates and frees numpy
  temporaries of hundreds of KB to tens of MB per block and phase; by default
  glibc maps each large one afresh and unmaps or trims it on free, so the link
  would pay page faults and munmap over and over, in system time that grows
  with the link. Keeping the memory costs nothing after the link.
* The heap is grown once, by about what the link will need, and that stretch
  is advised for transparent huge pages (MADV_HUGEPAGE). A fresh 4 KiB page
  costs a fault, and a link touches thousands of them: on the VMs here that
  is a sizeable part of a link's time. A 2 MiB page costs one fault.
  numpy advises its own arrays of 4 MiB or more the same way; this extends it
  to everything the link allocates from the heap, the many arrays below 4 MiB
  and Python's own large objects included. Where the kernel has no huge page
  to give, the fault takes a 4 KiB page as before.

The growth is sized to what the process may still allocate
(docs/reliability.md): under a virtual memory limit (RLIMIT_AS, `ulimit -v`),
a data limit (RLIMIT_DATA) or a cgroup memory limit, it is at most a quarter
of what is left under the tightest of them, and skipped when that is less
than PAD_MIN; without limits it is pad_for(input_bytes) as before.
"""

from __future__ import annotations

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
MADV_HUGEPAGE = 14

# The heap grows by PAD_PER_INPUT_BYTE times the objects' size, within
# [PAD_MIN, PAD_MAX]: enough that the benchmark's medium and large links
# never grow it a second time (measured: docs/performance.md, 'Figures behind
# the code').
PAD_MIN, PAD_MAX = 64 << 20, 1 << 30
PAD_PER_INPUT_BYTE = 4


def pad_for(input_bytes: int) -> int:
    """pad_for is the heap growth for a link of input_bytes of objects."""
    return min(max(PAD_PER_INPUT_BYTE * input_bytes, PAD_MIN), PAD_MAX)


def address_room() -> int | None:
    """address_room is how many more bytes this process may map under
    RLIMIT_AS and RLIMIT_DATA (`ulimit -v`, `ulimit -d`), the limits a
    mapping fails against (mmap says ENOMEM); None without either."""
    left = []
    try:
        import resource
        status = _status()
        for lim, key in ((resource.RLIMIT_AS, "VmSize"), (resource.RLIMIT_DATA, "VmData")):
            soft = resource.getrlimit(lim)[0]
            if soft != resource.RLIM_INFINITY:
                left.append(soft - status.get(key, 0))
    except (ImportError, OSError, ValueError):
        pass
    return max(0, min(left)) if left else None


def headroom() -> int | None:
    """headroom is how many more bytes this process may map or allocate
    under the tightest of RLIMIT_AS, RLIMIT_DATA and its cgroup's memory
    limit (v2 memory.max or v1 memory.limit_in_bytes); None without a limit."""
    room = address_room()
    left = [] if room is None else [room]
    for limit, usage in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                         ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                          "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit) as f:
                text = f.read().strip()
            if text == "max" or int(text) >= 1 << 60:
                continue
            with open(usage) as f:
                left.append(int(text) - int(f.read().strip()))
            break
        except (OSError, ValueError):
            continue
    return max(0, min(left)) if left else None


def looks_like_oom(e: BaseException) -> bool:
    """looks_like_oom: an error from loading a module that out of memory
    causes (the dynamic loader's 'failed to map segment', ENOMEM)."""
    text = str(e)
    return isinstance(e, MemoryError) or getattr(e, "errno", None) == 12 or any(
        w in text for w in ("failed to map segment", "Cannot allocate memory", "out of memory"))


def _status() -> dict[str, int]:
    """_status is /proc/self/status's Vm* sizes in bytes."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Vm"):
                k, _, v = line.partition(":")
                parts = v.split()
                if parts and parts[0].isdigit():
                    out[k] = int(parts[0]) << 10
    return out


def tune(input_bytes: int) -> bool:
    """tune sets up the heap for a link of input_bytes of objects; False where
    the C library is not glibc, or where memory is too tight to grow the heap
    ahead (nothing was changed)."""
    pad = pad_for(input_bytes)
    room = headroom()
    if room is not None:
        pad = min(pad, room // 4)
        if pad < PAD_MIN:
            return False
    try:
        import ctypes  # numpy imports it anyway
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt(M_MMAP_THRESHOLD, 256 << 20)
    mallopt(M_TRIM_THRESHOLD, 1 << 30)
    mallopt(M_TOP_PAD, pad)
    try:
        libc.malloc.restype = ctypes.c_void_p
        libc.free.argtypes = [ctypes.c_void_p]
        libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        # One allocation larger than what is left at the top of the heap
        # makes glibc grow it by the pad now; freed, it stays (the trim
        # threshold) for the link's arrays.
        libc.free(libc.malloc(1 << 20))
        span = _heap_range()
        if span is not None:
            # Advice only: a kernel without THP, or with it off, ignores it,
            # and an error changes nothing.
            libc.madvise(span[0], span[1] - span[0], MADV_HUGEPAGE)
    except (AttributeError, OSError, ValueError):
        pass
    return True


def give_back() -> None:
    """give_back returns the heap's free pages to the system (glibc's
    malloc_trim; elsewhere nothing). link calls it at the end of layout:
    resolve and layout leave tens of MB of freed temporaries (masks, index
    columns, probes) inside the heap, which tune's trim threshold would keep
    resident to the end of the link, under the output mapping and what asmb
    and asmb2 allocate, when the link is at its peak. What is allocated
    there again costs a fault per 4 KiB page (measured: docs/performance.md,
    'Program shapes': 6-10% off the peak for 1-2k more faults on a large
    link; after columns as well it cost 5-8% of the time and gained ~1%)."""
    try:
        import ctypes
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _heap_range() -> tuple[int, int] | None:
    """_heap_range is the [heap] mapping's (start, end) from /proc/self/maps."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                if line.rstrip().endswith("[heap]"):
                    lo, hi = line.split(None, 1)[0].split("-")
                    return int(lo, 16), int(hi, 16)
    except OSError:
        pass
    return None
