"""heap.tune: the link's heap, as the kernel reports it (/proc/PID/smaps).

tune changes the process for good, so each check runs in a fresh interpreter.
"""

import platform
import subprocess
import sys

import pytest

from minild import heap

GLIBC_LINUX = sys.platform == "linux" and platform.libc_ver()[0] == "glibc"


@pytest.mark.parametrize("input_bytes,pad", [
    (0, heap.PAD_MIN),
    (1 << 20, heap.PAD_MIN),
    (16 << 20, heap.PAD_MIN),
    (20 << 20, 80 << 20),
    (83 << 20, 332 << 20),
    (256 << 20, heap.PAD_MAX),
    (10 << 30, heap.PAD_MAX),
])
def test_pad_for(input_bytes, pad):
    assert heap.pad_for(input_bytes) == pad


PROBE = r"""
import sys
from minild import heap
ok = heap.tune(int(sys.argv[1]))
lo, hi = heap._heap_range()
flags, inside = None, False
for line in open("/proc/self/smaps"):
    if "-" in line.split(" ", 1)[0] and not line.startswith("VmFlags"):
        a, b = (int(x, 16) for x in line.split()[0].split("-"))
        inside = a <= lo < b
    elif inside and line.startswith("VmFlags:"):
        flags = line.split()[1:]
        break
print(ok, hi - lo, " ".join(flags))
"""


@pytest.mark.skipif(not GLIBC_LINUX, reason="tune changes glibc's malloc on Linux only")
def test_tune_grows_the_heap_and_advises_huge_pages():
    input_bytes = 30 << 20
    out = subprocess.run([sys.executable, "-c", PROBE, str(input_bytes)], check=True,
                         capture_output=True, text=True).stdout.split()
    ok, size, flags = out[0], int(out[1]), out[2:]
    assert ok == "True"
    # Grown by the pad at once, and advised: the kernel shows MADV_HUGEPAGE
    # as "hg" among the mapping's flags.
    assert size >= heap.pad_for(input_bytes)
    assert "hg" in flags, flags


def test_tune_without_glibc_changes_nothing(monkeypatch):
    """Where the C library has no mallopt, tune says so and does nothing."""
    import ctypes

    class NoMallopt:
        def __init__(self, name):
            pass

        def __getattr__(self, name):
            raise AttributeError(name)

    monkeypatch.setattr(ctypes, "CDLL", NoMallopt)
    assert heap.tune(1 << 20) is False


GIVE_BACK = r"""
import sys
from minild import heap

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) << 10

heap.tune(0)
keep = bytearray(1 << 20)                 # live above the freed block: no top trim
blocks = [bytearray(b"x" * (1 << 20)) for _ in range(48)]
keep2 = bytearray(b"y" * (1 << 20))
del blocks                                # freed, but kept resident (tune's trim threshold)
before = rss()
heap.give_back()
print(before, rss())
"""


@pytest.mark.skipif(not GLIBC_LINUX, reason="malloc_trim is glibc's")
def test_give_back_returns_freed_heap_memory():
    """What a phase freed stays in a tuned heap until give_back, which hands
    it back to the system: the kernel's VmRSS falls by about its size, though
    the freed memory lies below live allocations."""
    before, after = map(int, subprocess.run([sys.executable, "-c", GIVE_BACK], check=True,
                                            capture_output=True, text=True).stdout.split())
    assert before - after > 40 << 20, (before >> 20, after >> 20)
