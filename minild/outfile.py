"""outfile: the one way minild writes a file: atomically, beside its final name.

The link's output (mmap, asmb, asmb2, munmap write into its descriptor), the
-M map and `minild import`'s objects are all written to a temporary file in
the output's directory and renamed over the output only when complete; on any
failure the temporary file is removed and a previous output is left as it was
(docs/reliability.md).

The temporary file gets a random name, `.NAME.<12 hex digits>.tmp`, and is
created with O_EXCL (which never follows a symbolic link), mode 0600, and
held under flock(LOCK_EX) while it is written. A later write of the same
output removes the temporary files that earlier, killed writers left behind:
those whose lock it can take (their writer is gone) and that are older than
STALE_AGE.

An output that names a character device (`-o /dev/null`) or a FIFO is never
replaced: the file is written to a private temporary file in the temporary
directory and then copied into the device or FIFO, from its start. Any other
existing file that is not a regular file (a directory, a socket) is refused.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import stat
import time

from .errors import fail, usage

# A killed writer's temporary file is removed by the next write of the same
# output when no one holds its lock and it is at least this old (seconds):
# the age spares the file an external linker writes by name (--externallink).
STALE_AGE = 60

_TMP = re.compile(r"\.(?P<base>.+)\.[0-9a-f]{12}\.tmp\Z")


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a regular file"


def file_kind(mode: int) -> str:
    """file_kind names what a file that is not regular is, for messages:
    'a FIFO', 'a character device', ..."""
    return _kind(mode)


class OutputFile:
    """OutputFile is a temporary file beside the output, renamed over it only
    when the link succeeds; on any failure it is removed and the previous
    output is left as it was. An OSError raised inside the `with` block
    (a full disk, a file-size limit) becomes a LinkError naming the output."""

    def __init__(self, path: str, mode: int = 0o777, what: str = "output file "):
        self.path = path
        self.what = what            # names the file in messages
        self.mode = mode            # before the umask: executables 0o777, data 0o666
        self.tmp = None
        self.fd = -1
        self.special = False        # a character device or FIFO: copied into, not replaced

    def __enter__(self) -> int:
        try:
            st = os.stat(self.path)
        except OSError:
            st = None
        if st is not None and not stat.S_ISREG(st.st_mode):
            if stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode):
                self.special = True
            else:
                raise fail(f"cannot write {self.what}{self.path}: it is {_kind(st.st_mode)}, "
                           "not a regular file")
        if self.special:
            import tempfile
            d = tempfile.gettempdir()
        else:
            d = os.path.dirname(os.path.abspath(self.path))
            remove_stale(self.path)
        base = os.path.basename(self.path)
        # As tempfile.mkstemp does (without its import): a new file, private
        # to us, under a name no one can guess; O_EXCL never follows a link.
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        for _ in range(100):
            tmp = os.path.join(d, f".{base}.{os.urandom(6).hex()}.tmp")
            try:
                fd = os.open(tmp, flags, 0o600)
            except FileExistsError:
                continue
            except OSError as e:
                raise fail(f"cannot create {self.what}{self.path}: {e.strerror} ({d})")
            # Hold the lock while writing, so that no other writer of this
            # output takes the file for a killed writer's (remove_stale).
            # Taken after the open: if a remover unlinked the name in
            # between, the name is no longer ours; try another.
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError:
                pass   # a file system without locks: remove_stale cannot lock it either
            try:
                same = os.path.samestat(os.fstat(fd), os.lstat(tmp))
            except OSError:
                same = False
            if not same:
                os.close(fd)
                continue
            self.fd, self.tmp = fd, tmp
            return self.fd
        raise fail(f"cannot create {self.what}{self.path}: no unused temporary name in {d}")

    @property
    def name(self) -> str:
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> bool:
        ok = exc_type is None
        try:
            if ok and self.special:
                self._copy_out()
            elif ok:
                mask = os.umask(0)
                os.umask(mask)
                os.fchmod(self.fd, self.mode & ~mask)
        except OSError as e:
            ok, exc = False, e
            exc_type = type(e)
        finally:
            os.close(self.fd)
        if ok and not self.special:
            try:
                os.replace(self.tmp, self.path)
                return False
            except OSError as e:
                ok, exc, exc_type = False, e, type(e)
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass  # an external linker that failed may have removed it already
        if ok:
            return False
        if exc_type is not None and issubclass(exc_type, OSError) and exc is not None:
            # A full disk (ENOSPC), a file-size limit (EFBIG; SIGXFSZ is
            # ignored, so the write fails instead of killing the process), a
            # quota, an I/O error: the environment's fault, not a bug.
            raise fail(f"cannot write {self.what}{self.path}: {exc.strerror or exc}") from None
        return False

    def _copy_out(self) -> None:
        """_copy_out writes the finished temporary file into the special file
        (a character device or a FIFO) from its start."""
        fd = os.open(self.path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            off = 0
            while True:
                chunk = os.pread(self.fd, 1 << 20, off)
                if not chunk:
                    break
                write_all(fd, chunk)
                off += len(chunk)
        finally:
            os.close(fd)


def byte_view(data) -> memoryview:
    """byte_view is data (bytes-like) as a flat memoryview of bytes."""
    view = memoryview(data)
    if view.ndim != 1 or view.itemsize != 1 or view.format not in ("B", "b", "c"):
        try:
            view = view.cast("B")
        except TypeError:   # a structured numpy array: its bytes
            view = memoryview(view.tobytes())
    return view


def write_all(fd: int, data, off: int | None = None) -> None:
    """write_all writes all of data at off (pwrite) or at the file's offset
    (write), looping over short writes; an error raises OSError. A write that
    makes no progress is ENOSPC, as a short write's retry would say."""
    view = byte_view(data)
    while view:
        try:
            n = os.write(fd, view) if off is None else os.pwrite(fd, view, off)
        except InterruptedError:
            continue
        if n <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[n:]
        if off is not None:
            off += n


def write_file(path: str, data: bytes, what: str) -> None:
    """write_file writes a small whole file (a map, an imported object)
    atomically through OutputFile. Raises a LinkError naming `what` and the path."""
    with OutputFile(path, 0o666, what or "file ") as fd:
        write_all(fd, data)


def remove_stale(path: str, now: float | None = None) -> list[str]:
    """remove_stale removes the temporary files `.NAME.<hex>.tmp` beside path
    that killed writers of path left: those whose lock it can take and that
    are STALE_AGE seconds old. Returns the names removed; errors are ignored
    (a file another remover took, a directory we cannot list)."""
    d = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    now = time.time() if now is None else now
    removed = []
    try:
        names = os.listdir(d)
    except OSError:
        return removed
    for n in names:
        m = _TMP.match(n)
        if m is None or m.group("base") != base:
            continue
        p = os.path.join(d, n)
        try:
            fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
                         | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            continue
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or now - st.st_mtime < STALE_AGE:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue   # a live writer holds it
            if os.path.samestat(st, os.lstat(p)):
                os.unlink(p)
                removed.append(p)
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


def refuse_same(output: str, inputs: list[str], map_path: str | None = None) -> None:
    """refuse_same refuses (a usage error) an output that is one of the
    inputs, or a map that is the output, compared by device and inode (or
    by resolved path for files not made yet)."""
    def ident(p: str):
        try:
            st = os.stat(p)
            if not stat.S_ISREG(st.st_mode):
                return None   # /dev/null as output and map is fine
            return ("ino", st.st_dev, st.st_ino)
        except OSError:
            return ("path", os.path.realpath(p))

    out = ident(output)
    if out is None:
        return
    for p in inputs:
        if ident(p) == out:
            raise usage(f"output file {output} is the same file as input {p}; it would be "
                        "overwritten")
    if map_path is not None and ident(map_path) == out:
        raise usage(f"map file {map_path} is the same file as output file {output}")
