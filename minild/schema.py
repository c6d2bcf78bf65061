"""schema: the object format's JSON schema and its decoding (the first step of loadlib's read).

The msgspec Structs below are the two encodings of docs/object-format.md;
decode() turns one file into one of them, with the file and the JSON path in
every message. This module imports no numpy, so that the CLI can start
decoding (minild.readahead) while numpy is still being imported; loader turns
the decoded documents into validated columns.
"""

from __future__ import annotations

import mmap
import os
import stat
from typing import Literal, Union

import msgspec

from .suggest import did_you_mean
from .errors import fail
from .vocab import BINDINGS, KINDS, TYPES  # noqa: F401 (the schema's words)

FORMAT_VERSION = 1

# The words objects use for kinds, bindings and types (minild.vocab).

Kind = Literal["text", "rodata", "data", "bss", "dwarf"]


# --- the schema (readable) -------------------------------------------------

class Reloc(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    offset: int
    type: str
    symbol: str = ""               # "": the object's empty-named local at 0 (wasm's type index)
    addend: int = 0


ValType = Literal["i32", "i64", "f32", "f64"]


class WType(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """WType: a wasm function signature."""

    params: list[ValType] = []
    results: list[ValType] = []


class Section(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    name: str
    kind: Kind
    align: int = 1
    data: str | None = None        # hex; whitespace allowed between bytes
    size: int | None = None        # bss only
    relocs: list[Reloc] = []


class Import(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    module: str                    # a DLL (PE), a dylib's install path (Mach-O), a wasm module
    name: str | None = None        # the name the module exports it by; default: the symbol's


class WGlobal(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """WGlobal: a wasm global's value type and mutability."""

    type: ValType
    mutable: bool = False


class Symbol(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    name: str
    section: str | None = None     # None: undefined (or imported); "*ABS*": absolute
    value: int = 0
    size: int = 0
    binding: Literal["local", "global", "weak"] = "global"
    type: Literal["notype", "object", "func", "section"] = "notype"
    import_: Import | None = msgspec.field(default=None, name="import")
    signature: int | None = None   # wasm: an index into the object's types
    export: str | None = None      # wasm: exported under this name
    global_: WGlobal | None = msgspec.field(default=None, name="global")   # wasm: a global


class Readable(msgspec.Struct, tag_field="encoding", tag="readable", forbid_unknown_fields=True):
    version: int
    arch: str
    sections: list[Section]
    symbols: list[Symbol] = []
    types: list[WType] = []        # wasm


# --- the schema (compact) --------------------------------------------------

class CSection(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    name: str
    kind: Kind
    align: int = 1
    data: bytes | None = None      # base64 in JSON; msgspec decodes it in its parse
    size: int | None = None        # bss only


class CImport(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    symbol: int                    # index into symbols; its section column says -1
    module: str
    name: str | None = None


class CSymbols(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    count: int
    # A JSON array of strings, kept as its text: minild.names reads the names
    # from it without a str object per name (or decodes it when it must).
    name: msgspec.Raw
    # Columns: base64 in JSON, decoded by msgspec during the parse (faster
    # than a str field and binascii afterwards; measured: docs/performance.md,
    # 'Figures behind the code').
    section: bytes  # int32 LE: section index, -1 undefined, -2 absolute
    value: bytes    # uint64 LE
    size: bytes     # uint64 LE
    binding: bytes  # uint8: 0 local, 1 global, 2 weak
    type: bytes     # uint8: 0 notype, 1 object, 2 func, 3 section
    imports: list[CImport] = []    # the imported symbols among them
    signatures: list[tuple[int, int]] = []   # wasm: (symbol, type index)
    exports: list[tuple[int, str]] = []      # wasm: (symbol, export name)
    globals: list[tuple[int, ValType, bool]] = []   # wasm: (symbol, value type, mutable)


class CRelocs(msgspec.Struct, forbid_unknown_fields=True):
    count: int
    types: list[str]  # psABI names; the type column indexes this list
    section: bytes  # uint32 LE
    offset: bytes   # uint64 LE
    type: bytes     # uint16 LE
    symbol: bytes   # uint32 LE: index into symbols
    addend: bytes   # int64 LE


class Compact(msgspec.Struct, tag_field="encoding", tag="compact", forbid_unknown_fields=True,
              omit_defaults=True):
    version: int
    arch: str
    sections: list[CSection]
    symbols: CSymbols
    relocs: CRelocs
    types: list[WType] = []        # wasm


# The compact encoding's integer columns, in their Structs' order.
SYMBOL_COLUMNS = ("section", "value", "size", "binding", "type")
RELOC_COLUMNS = ("section", "offset", "type", "symbol", "addend")

_decoder = msgspec.json.Decoder(Union[Readable, Compact])


def decode(path: str) -> Readable | Compact:
    """decode reads and decodes one object file; the result has passed the
    schema, not yet the checks that need the whole document (loader). Raises
    LinkError."""
    try:
        # O_NONBLOCK: opening a FIFO with no writer must not wait for one
        # (a regular file ignores the flag); anything else is refused below.
        f = os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)),
                      "rb")
    except OSError as e:
        raise fail(f"cannot open {path}: {e.strerror}")
    with f:
        try:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise fail(f"{path}: not a regular file ({not_regular(st.st_mode)})")
            size = st.st_size
            if not size:
                raise fail(f"{path}: not a minild object: the file is empty")
            # Decode straight from a read-only mapping: no copy of the file in the heap.
            buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        except (OSError, ValueError) as e:
            raise fail(f"cannot read {path}: {e}")
        try:
            doc = _decoder.decode(buf)
            if isinstance(doc, Compact):
                # A Raw holds on to the buffer it came from: copy it out before
                # the mapping closes.
                doc.symbols.name = bytes(doc.symbols.name)
        except msgspec.ValidationError as e:
            m = msgspec_message(e)
            if "Missing required field `encoding`" in m or "Invalid value" in m and "encoding" in m:
                m += ' (expected "encoding": "readable" or "compact")'
            more = every_problem(buf)
            if len(more) > 1:
                from .errors import ERROR_LIMIT, Diag, LinkError
                diags = [Diag(f"{path}: invalid object: {x}") for x in more[:ERROR_LIMIT]]
                raise LinkError(diags, max(0, len(more) - ERROR_LIMIT)) from None
            raise fail(f"{path}: invalid object: {m}") from None
        except msgspec.DecodeError as e:
            what = sniff(bytes(buf[:64]), path)
            if what:
                raise fail(f"{path}: {what}") from None
            raise fail(f"{path}: not a minild object: {e}")
        except RecursionError:
            # msgspec recurses once per level of nesting: a tiny file nested a
            # thousand levels deep would otherwise be an internal error.
            raise fail(f"{path}: invalid object: {too_deep(buf)}") from None
        finally:
            if isinstance(buf, mmap.mmap):
                buf.close()
    if doc.version != FORMAT_VERSION:
        raise fail(f"{path}: $.version: unsupported object format version {doc.version}; "
                   f"expected {FORMAT_VERSION}")
    return doc


ELF_TYPES = {1: "an ELF relocatable object", 2: "an ELF executable", 3: "an ELF shared object",
             4: "an ELF core file"}
ELF_MACHINES = {3: "x86", 8: "mips", 20: "ppc", 21: "ppc64", 22: "s390x", 40: "arm",
                62: "amd64", 183: "arm64", 243: "riscv"}


def sniff(head: bytes, path: str) -> str | None:
    """sniff names a file that is not JSON by its magic number (an ELF .o,
    an ar archive, a shared object, ...) and says what to do with it; None
    when it is nothing minild knows."""
    base = os.path.basename(path)
    stem = os.path.splitext(path)[0] + ".obj"
    imp = f"convert it first: minild import {path} -o {stem}"
    if head.startswith(b"\x7fELF") and len(head) >= 20:
        little = head[5] != 2
        etype = int.from_bytes(head[16:18], "little" if little else "big")
        mach = int.from_bytes(head[18:20], "little" if little else "big")
        what = ELF_TYPES.get(etype, "an ELF file")
        arch = ELF_MACHINES.get(mach, f"e_machine {mach}")
        what = f"{what} ({arch}), not a minild object"
        if etype == 1:
            return f"{what}; {imp}"
        if etype == 3:
            return (f"{what}; minild makes static executables and cannot link against a shared "
                    f"object (--externallink --extldflags {base} lets GNU ld or cc do that)")
        if etype == 2:
            return f"{what}: it is the output of a link, not an input"
        return what
    if head.startswith(b"!<arch>\n") or head.startswith(b"!<thin>\n"):
        return (f"an ar archive (a static library), not a minild object; extract its members "
                f"with `ar x {base}` and convert them with `minild import *.o -o objs/`")
    if head.startswith(b"\0asm"):
        return (f"a WebAssembly module or object, not a minild object; if it is clang's "
                f"object, {imp}")
    if head[:4] in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf",
                    b"\xfe\xed\xfa\xce", b"\xca\xfe\xba\xbe"):
        return "a Mach-O file, not a minild object (minild does not import Mach-O objects)"
    if head.startswith(b"MZ"):
        return ("a PE executable or DLL, not a minild object: it is the output of a link, "
                "not an input")
    if head[:2] in (b"\x64\x86", b"\x4c\x01", b"\x64\xaa") and len(head) >= 20:
        return f"a COFF object, not a minild object; {imp}"
    return None


def every_problem(buf) -> list[str]:
    """every_problem finds every schema problem in an object, in either
    encoding (msgspec stops at the first): each top-level field, section,
    relocation, symbol, import, column and type is checked on its own, in the
    order of the Structs' fields. [] when the document is not an object's
    JSON with a known encoding (the first problem is all that is said then)."""
    try:
        raw = msgspec.json.decode(buf)
    except (msgspec.DecodeError, RecursionError):
        return []
    enc = raw.get("encoding") if isinstance(raw, dict) else None
    top = {"readable": Readable, "compact": Compact}.get(enc) if isinstance(enc, str) else None
    if top is None:
        return []
    found: list[str] = []

    def check(value, typ, where: str) -> None:
        try:
            msgspec.convert(value, typ)
        except msgspec.ValidationError as e:
            m = str(e)
            m = (m.replace(" - at `$", " - at `" + where, 1) if " - at `$" in m
                 else f"{m} - at `{where}`")
            found.append(msgspec_message(m))

    def is_struct(typ) -> bool:
        return isinstance(typ, type) and issubclass(typ, msgspec.Struct)

    def field(value, typ, where: str) -> None:
        """field checks one value: a Struct field by field, a list of Structs
        item by item, anything else (numbers, words, base64 columns, tuples)
        whole."""
        item = getattr(typ, "__args__", (None,))[0]
        if is_struct(typ) and isinstance(value, dict):
            struct(value, typ, where)
        elif getattr(typ, "__origin__", None) is list and is_struct(item) \
                and isinstance(value, list):
            for j, sub in enumerate(value):
                field(sub, item, f"{where}[{j}]")
        elif typ is not msgspec.Raw:   # a Raw (the names' JSON text) takes any JSON
            check(value, typ, where)

    def struct(item: dict, typ, where: str) -> None:
        fs = {f.encode_name: f for f in msgspec.structs.fields(typ)}
        tag = typ.__struct_config__.tag_field
        for k in item:
            if k not in fs and k != tag:
                found.append(f"{where}: Object contains unknown field `{k}`")
        for name, f in fs.items():
            if name not in item:
                if f.required:
                    found.append(f"{where}: Object missing required field `{name}`")
            else:
                field(item[name], f.type, f"{where}.{name}")

    struct(raw, top, "$")
    return found


def not_regular(mode: int) -> str:
    """not_regular names what a file that is not a regular file is."""
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


# Objects nest a few levels deep (docs/object-format.md); a document nested
# deeper than this is refused where it passes the limit.
MAX_DEPTH = 64


def too_deep(buf) -> str:
    """too_deep locates where a document nests more than MAX_DEPTH levels
    (called only after msgspec gave up on its nesting)."""
    depth, instr, esc = 0, False, False
    for i, c in enumerate(bytes(buf)):
        if instr:
            if esc:
                esc = False
            elif c == 0x5C:    # backslash
                esc = True
            elif c == 0x22:
                instr = False
        elif c == 0x22:
            instr = True
        elif c in (0x5B, 0x7B):   # [ {
            depth += 1
            if depth > MAX_DEPTH:
                line = bytes(buf[:i]).count(b"\n") + 1
                return (f"JSON nested more than {MAX_DEPTH} levels deep, at byte {i} "
                        f"(line {line}); objects nest a few levels")
        elif c in (0x5D, 0x7D):
            depth -= 1
    return "JSON nested too deeply"


def msgspec_message(e: msgspec.ValidationError | str) -> str:
    # msgspec says "Expected `int`, got `str` - at `$.sections[0].align`": put the path first.
    msg = str(e)
    if " - at `" in msg:
        text, _, where = msg.rpartition(" - at `")
        where = where.rstrip("`")
        if text.startswith("Invalid enum value"):
            # msgspec names the bad value; say which ones are good.
            field = where.rpartition(".")[2]
            allowed = {"kind": KINDS, "binding": BINDINGS, "type": TYPES}.get(field)
            if allowed and not where.startswith("$.relocs"):
                text += "; expected one of: " + ", ".join(allowed)
                bad = text.removeprefix("Invalid enum value").split(";")[0].strip().strip("'\"`")
                if bad:
                    text += did_you_mean(bad, allowed)
        return f"{where}: {text}"
    return msg
