"""archive: `ar` archives of minild objects, and their lazy loading at link time.

`minild import X.a -o Y.a` reads an ELF archive (GNU ar's format: the "/"
symbol index, the "//" long-name table) and writes an archive of the same
members, each imported to a minild object, with a symbol index of the same
format, so that `ar t` lists the members and `nm -s` the index. A member
minild cannot link (TLS, GOT, an unknown relocation type: libgcc.a's unwinder)
is kept, its data a one-line JSON document {"minild-unlinkable": reason}, and
its defined symbols still in the index: loading it is an error that says why,
which happens only if a link needs one of its symbols.

`minild link` takes such archives among its inputs (and -l NAME: libNAME.a in
the -L directories). A member is loaded only when it defines a global symbol
that the objects loaded so far reference and do not define (the entry symbol
counts as referenced); this repeats, over every archive, until nothing
changes: lld's order-independent rule, so an archive may come before the
objects that need it, and archives that need each other need no
--start-group. A weak reference loads nothing (GNU ld's and lld's rule).
Reading an archive costs its index and the members loaded: members are read
by their offset, one at a time.
"""

from __future__ import annotations

import os
import struct

import numpy as np

from .errors import Diagnostics, LinkError, fail

MAGIC = b"!<arch>\n"
HDR = 60


def is_archive(path: str) -> bool:
    try:
        # O_NONBLOCK and regular files only: a FIFO must not block the open or
        # the read (docs/reliability.md); the reader then says what it is.
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), "rb") as f:
            import stat
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return False
            return f.read(8) == MAGIC
    except OSError:
        return False


def _header(name: bytes, size: int) -> bytes:
    return (name.ljust(16) + b"0".ljust(12) + b"0".ljust(6) + b"0".ljust(6)
            + b"644".ljust(8) + str(size).encode().ljust(10) + b"`\n")


def write(path: str, members: list[tuple[str, bytes, list[str]]]) -> None:
    """write writes an archive of (name, data, defined symbols) members, with a
    GNU symbol index ("/") and long-name table ("//") where names need one."""
    longnames = b""
    hdr_names = []
    for name, _, _ in members:
        n = name.encode()
        if len(n) + 1 <= 16 and b"/" not in n:
            hdr_names.append(n + b"/")
        else:
            hdr_names.append(b"/" + str(len(longnames)).encode())
            longnames += n + b"/\n"
    syms = [(s, i) for i, (_, _, defs) in enumerate(members) for s in defs]
    strtab = b"".join(s.encode() + b"\0" for s, _ in syms)
    idx_size = 4 + 4 * len(syms) + len(strtab)
    pos = len(MAGIC) + HDR + idx_size + (idx_size & 1)
    if longnames:
        pos += HDR + len(longnames) + (len(longnames) & 1)
    offsets = []
    for (_, data, _) in members:
        offsets.append(pos)
        pos += HDR + len(data) + (len(data) & 1)
    out = [MAGIC, _header(b"/", idx_size), struct.pack(">I", len(syms)),
           b"".join(struct.pack(">I", offsets[i]) for _, i in syms), strtab]
    if idx_size & 1:
        out.append(b"\n")
    if longnames:
        out += [_header(b"//", len(longnames)), longnames, b"\n" if len(longnames) & 1 else b""]
    for n, (_, data, _) in zip(hdr_names, members):
        out += [_header(n, len(data)), data, b"\n" if len(data) & 1 else b""]
    from .outfile import write_file
    write_file(path, b"".join(out), "")


class Archive:
    """Archive is an opened archive: its index (symbol -> member header
    offset) and the file, from which members are read on demand."""

    def __init__(self, path: str):
        self.path = path
        try:
            self.f = open(path, "rb")
        except OSError as e:
            raise fail(f"cannot open {path}: {e.strerror}")
        self.size = os.fstat(self.f.fileno()).st_size
        if self.f.read(8) != MAGIC:
            raise fail(f"{path}: not an ar archive")
        self.longnames = b""
        self.index: dict[str, int] = {}
        pos = 8
        # The index and the long names come first (GNU ar); stop at the first member.
        while pos + HDR <= self.size:
            name, size = self._hdr(pos)
            if name == b"/":
                self._read_index(self._data(pos, size))
            elif name == b"//":
                self.longnames = self._data(pos, size)
            elif name in (b"/SYM64/",):
                raise fail(f"{path}: 64-bit symbol index (/SYM64/) is not supported")
            else:
                break
            pos += HDR + size + (size & 1)
        self.first = pos

    def _hdr(self, pos: int) -> tuple[bytes, int]:
        self.f.seek(pos)
        h = self.f.read(HDR)
        if len(h) < HDR or h[58:60] != b"`\n":
            raise fail(f"{self.path}: malformed archive member header at {pos:#x}")
        try:
            size = int(h[48:58].decode().strip() or 0)
        except ValueError:
            raise fail(f"{self.path}: malformed archive member size at {pos:#x}")
        if pos + HDR + size > self.size:
            raise fail(f"{self.path}: archive member at {pos:#x} runs past the end of the file")
        return h[:16].rstrip(b" "), size

    def _data(self, pos: int, size: int) -> bytes:
        self.f.seek(pos + HDR)
        return self.f.read(size)

    def _read_index(self, data: bytes) -> None:
        if len(data) < 4:
            raise fail(f"{self.path}: malformed symbol index")
        (n,) = struct.unpack_from(">I", data)
        if 4 + 4 * n > len(data):
            raise fail(f"{self.path}: malformed symbol index: {n} entries do not fit")
        offs = np.frombuffer(data, ">u4", n, 4).astype(np.int64)
        names = data[4 + 4 * n:].split(b"\0")
        for name, off in zip(names, offs.tolist()):
            self.index.setdefault(name.decode(errors="replace"), off)

    def member_name(self, raw: bytes) -> str:
        if raw.startswith(b"/") and raw[1:].isdigit():
            at = int(raw[1:])
            end = self.longnames.find(b"\n", at)
            n = self.longnames[at:end if end >= 0 else None]
        else:
            n = raw
        return n.rstrip(b"/").decode(errors="replace")

    def member(self, pos: int) -> tuple[str, bytes]:
        raw, size = self._hdr(pos)
        return self.member_name(raw), self._data(pos, size)

    def members(self):
        """members yields (header offset, name, data) of every member, in order."""
        pos = self.first
        while pos + HDR <= self.size:
            raw, size = self._hdr(pos)
            if raw not in (b"/", b"//"):
                yield pos, self.member_name(raw), self._data(pos, size)
            pos += HDR + size + (size & 1)

    def close(self) -> None:
        self.f.close()


# --- minild import X.a -------------------------------------------------------

def import_archive(path: str, out: str, compact: bool, max_uncompressed: int) -> None:
    """import_archive imports every ELF member of the archive path into an
    archive of minild objects at out."""
    from . import arch as archreg
    from .encode import encode_compact, encode_readable
    from .importer import _header as elf_header
    from .importer import _import
    from .vocab import UNDEF, Bind

    ar = Archive(path)
    members = []
    try:
        for _, name, data in ar.members():
            where = f"{path}({name})"
            if data[:4] != b"\x7fELF":
                members.append((name, _unlinkable("not an ELF relocatable object"), []))
                continue
            try:
                obj = _import(where, elf_header(data, where), data, max_uncompressed)
            except LinkError as e:
                reason = "; ".join(d.message.replace(where + ": ", "", 1) for d in e.diags)
                members.append((name, _unlinkable(reason), _elf_defined(data)))
                continue
            except (ValueError, IndexError) as e:
                members.append((name, _unlinkable(f"malformed ELF object: {e}"),
                                _elf_defined(data)))
                continue
            a = archreg.lookup(obj.arch)
            enc = encode_compact(obj, a) if compact else encode_readable(obj, a)
            if not enc.endswith(b"\n"):
                enc += b"\n"
            glob = (obj.sym_bind != Bind.LOCAL) & (obj.sym_sec != UNDEF)
            members.append((name, enc, obj.sym_name.tolist(np.flatnonzero(glob))))
    finally:
        ar.close()
    write(out, members)


def _unlinkable(reason: str) -> bytes:
    import json
    return json.dumps({"minild-unlinkable": reason}).encode() + b"\n"


def _elf_defined(data: bytes) -> list[str]:
    """_elf_defined lists the global symbols an ELF object defines (for the
    index entry of a member minild cannot link)."""
    import io

    try:
        from elftools.elf.elffile import ELFFile
        from elftools.elf.sections import SymbolTableSection
        e = ELFFile(io.BytesIO(data))
        out = []
        for s in e.iter_sections():
            if isinstance(s, SymbolTableSection):
                for sym in s.iter_symbols():
                    if (sym["st_info"]["bind"] in ("STB_GLOBAL", "STB_WEAK")
                            and sym["st_shndx"] != "SHN_UNDEF" and sym.name):
                        out.append(sym.name)
        return out
    except Exception:   # noqa: BLE001 - a member too broken to list defines nothing
        return []


# --- minild link: lazy loading -----------------------------------------------

def split(paths: list[str]) -> tuple[list[str], list[str], list[int]]:
    """split separates archives (NAME.a that starts as an ar archive does: no
    other input costs an open) from objects: (objects, archives, the objects'
    positions in paths)."""
    objs, libs, pos = [], [], []
    for i, p in enumerate(paths):
        if p.endswith(".a") and is_archive(p):
            libs.append(p)
            continue
        objs.append(p)
        pos.append(i)
    return objs, libs, pos


def find_libs(names: list[str], dirs: list[str]) -> list[str]:
    """find_libs finds -l NAME: libNAME.a in the -L directories, in order."""
    out = []
    for n in names:
        for d in dirs:
            p = os.path.join(d, f"lib{n}.a")
            if os.path.isfile(p):
                out.append(p)
                break
        else:
            raise fail(f"unable to find library -l{n}"
                       + (f" (searched: {', '.join(dirs)})" if dirs else " (no -L directories)"))
    return out


def _refs(o) -> tuple[list[str], list[str]]:
    """_refs is what an object defines (global, weak) and references strongly."""
    from .vocab import ABS, UNDEF, Bind
    sec, bind = o.sym_sec, o.sym_bind
    defined = np.flatnonzero(((sec >= 0) | (sec == ABS)) & (bind != Bind.LOCAL))
    undef = np.flatnonzero((sec == UNDEF) & (bind != Bind.WEAK))
    return o.sym_name.tolist(defined), o.sym_name.tolist(undef)


def pull(objs: list, libs: list[str], entry: str | None, log=None) -> tuple[list, list]:
    """pull loads the archive members that the objects need, and what those
    need, until nothing changes; returns the members' Objects and, for each,
    (archive, member, symbol, referenced by)."""
    from .loader import read_object
    from .schema import _decoder

    defined: set[str] = set()
    wanted: dict[str, str] = {}     # undefined name -> the first object that references it
    if entry:
        wanted[entry] = "the entry point"

    def add(o) -> None:
        d, u = _refs(o)
        defined.update(d)
        for n in u:
            wanted.setdefault(n, o.path)

    for o in objs:
        add(o)
    ars = [Archive(p) for p in libs]
    loaded: set[tuple[int, int]] = set()
    elf: set[int] = set()   # archives of ELF objects (said once each)
    out, why = [], []
    diags = Diagnostics()
    try:
        changed = True
        while changed:
            changed = False
            for ai, ar in enumerate(ars):
                for name, off in ar.index.items():
                    if name in defined or name not in wanted or (ai, off) in loaded:
                        continue
                    loaded.add((ai, off))
                    mname, data = ar.member(off)
                    where = f"{ar.path}({mname})"
                    reason = f"{name} (referenced by {wanted[name]})"
                    if data.startswith(b'{"minild-unlinkable"'):
                        import json
                        diags.error(f"{where}: loaded to resolve {reason}, but minild cannot "
                                    f"link it: {json.loads(data)['minild-unlinkable']}")
                        defined.add(name)
                        continue
                    if data[:4] == b"\x7fELF":
                        if ai in elf:
                            continue
                        elf.add(ai)
                        diags.error(f"{where}: loaded to resolve {reason}, but it is an ELF "
                                    f"object, not a minild object; import the archive first: "
                                    f"minild import {ar.path} -o NAME.a")
                        defined.add(name)
                        continue
                    try:
                        o = read_object(where, _decoder.decode(data))
                    except LinkError as e:
                        for x in e.diags:
                            diags.error(x.message, *x.notes)
                        defined.add(name)
                        continue
                    except Exception as e:   # noqa: BLE001 - msgspec's decode errors
                        diags.error(f"{where}: not a minild object: {e}")
                        defined.add(name)
                        continue
                    if log:
                        log(f"minild: loaded {where} for {reason}")
                    out.append(o)
                    why.append((ar.path, mname, name, wanted[name]))
                    add(o)
                    changed = True
    finally:
        for ar in ars:
            ar.close()
    diags.check()
    return out, why
