"""outfile: the one way minild writes a file: atomically, beside its final name.

The link's output (mmap, asmb, asmb2, munmap write into its descriptor), the
-M map and `minild import`'s objects are all written to a temporary file in
the output's directory and renamed over the output only when complete; on any
failure the temporary file is removed and a previous output is left as it was.
"""

from __future__ import annotations

import os

from .errors import fail


class OutputFile:
    """OutputFile is a temporary file beside the output, renamed over it only
    when the link succeeds; on any failure it is removed and the previous
    output is left as it was."""

    def __init__(self, path: str, mode: int = 0o777, what: str = "output file "):
        self.path = path
        self.what = what            # names the file in messages
        self.mode = mode            # before the umask: executables 0o777, data 0o666
        self.tmp = None
        self.fd = -1

    def __enter__(self) -> int:
        d = os.path.dirname(os.path.abspath(self.path))
        # As tempfile.mkstemp does (without its import): a new file, private
        # to us, under a name no one can guess; O_EXCL never follows a link.
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        for _ in range(100):
            tmp = os.path.join(d, f".{os.path.basename(self.path)}.{os.urandom(6).hex()}.tmp")
            try:
                self.fd = os.open(tmp, flags, 0o600)
            except FileExistsError:
                continue
            except OSError as e:
                raise fail(f"cannot create {self.what}{self.path}: {e.strerror} ({d})")
            self.tmp = tmp
            return self.fd
        raise fail(f"cannot create {self.what}{self.path}: no unused temporary name in {d}")

    @property
    def name(self) -> str:
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> bool:
        ok = exc_type is None
        try:
            if ok:
                mask = os.umask(0)
                os.umask(mask)
                os.fchmod(self.fd, self.mode & ~mask)
        finally:
            os.close(self.fd)
        if ok:
            try:
                os.replace(self.tmp, self.path)
                return False
            except OSError as e:
                os.unlink(self.tmp)
                raise fail(f"cannot write {self.what}{self.path}: {e.strerror}")
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass  # an external linker that failed may have removed it already
        return False


def write_file(path: str, data: bytes, what: str) -> None:
    """write_file writes a small whole file (a map, an imported object)
    atomically through OutputFile. Raises a LinkError naming `what` and the path."""
    with OutputFile(path, 0o666, what or "file ") as fd:
        view = memoryview(data)
        while view:
            try:
                n = os.write(fd, view)
            except OSError as e:
                raise fail(f"cannot write {what}{path}: {e.strerror}")
            view = view[n:]
