"""The emulation runner (tests/emu) on its own, without minild: plan 9 a.out files
built by hand here (a header packed with struct, code from known-good hex assembled
by GNU as from examples/plan9/hello/*.s, msg's address patched in) must print
hello, world and exit 0, and broken ones must fail with a clear error, not hang."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from emu import EmuError, LoadError
from emu import plan9

ROOT = Path(__file__).resolve().parent.parent
MSG = b"hello, world\n"

MAGIC = {"amd64": 0x8A97, "x86": 0x01EB, "arm": 0x0647}
UTZERO = {"amd64": 0x200000, "x86": 0x1000, "arm": 0x1000}
UTROUND = {"amd64": 0x200000, "x86": 0x1000, "arm": 0x1000}
HDRSIZE = {"amd64": 40, "x86": 32, "arm": 32}

# The text of examples/plan9/hello/<arch>.s (GNU as), and where msg's address goes:
# (offset, "pc32": S-4-P as R_X86_64_PC32 with addend -4, "abs32": S).
HELLO = {
    "amd64": ("48 83 e4 f0  48 83 ec 30  48 c7 44 24 08 01 00 00 00  48 8d 05 00 00 00 00"
              "  48 89 44 24 10  48 c7 44 24 18 0d 00 00 00  48 c7 44 24 20 ff ff ff ff"
              "  bd 33 00 00 00  0f 05  48 c7 44 24 08 00 00 00 00  bd 08 00 00 00  0f 05  0f 0b",
              20, "pc32"),
    "x86": ("83 e4 f0  83 ec 20  c7 44 24 04 01 00 00 00  c7 44 24 08 00 00 00 00"
            "  c7 44 24 0c 0d 00 00 00  c7 44 24 10 ff ff ff ff  c7 44 24 14 ff ff ff ff"
            "  b8 33 00 00 00  cd 40  c7 44 24 04 00 00 00 00  b8 08 00 00 00  cd 40  0f 0b",
            18, "abs32"),
    "arm": ("07 d0 cd e3  18 d0 4d e2  01 10 a0 e3  04 10 8d e5  30 10 9f e5  08 10 8d e5"
            "  0d 10 a0 e3  0c 10 8d e5  00 10 e0 e3  10 10 8d e5  14 10 8d e5  33 00 a0 e3"
            "  00 00 00 ef  00 10 a0 e3  04 10 8d e5  08 00 a0 e3  00 00 00 ef  f0 00 f0 e7"
            "  00 00 00 00",
            72, "abs32"),
}

# Small snippets (GNU as, checked with objdump).
UNKNOWN_SYSCALL = {  # open (14)
    "amd64": "bd 0e 00 00 00  0f 05",  # movl $14, %ebp; syscall
    "x86": "b8 0e 00 00 00  cd 40",  # movl $14, %eax; int $64
    "arm": "0e 00 a0 e3  00 00 00 ef",  # mov r0, #14; swi 0
}
JUMP_UNMAPPED = {
    "amd64": ("b8 78 56 34 12  ff e0", 0x12345678),  # movl $0x12345678, %eax; jmp *%rax
    "x86": ("b8 78 56 34 12  ff e0", 0x12345678),  # movl $0x12345678, %eax; jmp *%eax
    "arm": ("01 02 a0 e3  10 ff 2f e1", 0x10000000),  # mov r0, #0x10000000; bx r0
}
INVALID_INSN = {"amd64": "0f 0b", "x86": "0f 0b", "arm": "f0 00 f0 e7"}  # ud2 / udf #0
LOOP = {"amd64": "eb fe", "x86": "eb fe", "arm": "fe ff ff ea"}  # jmp . / b .

ARCHS = ["amd64", "x86", "arm"]


def h(s):
    return bytes.fromhex(s.replace(" ", ""))


def aout(arch, text, data=b"", bss=0, *, entry_off=0, syms=b"", magic=None, sizes=None):
    """A plan 9 a.out: header, text, data, symbols. `sizes` overrides the header's
    (text, data, bss, syms) to make inconsistent files."""
    hdrsize = HDRSIZE[arch]
    entry = UTZERO[arch] + hdrsize + entry_off
    t, d, b, s = sizes or (len(text), len(data), bss, len(syms))
    magic = MAGIC[arch] if magic is None else magic
    # like Go's writePlan9Header: the 32-bit field holds the entry less bit 31 on amd64
    hdr = struct.pack(">8I", magic, t, d, b, s, entry & 0x7FFFFFFF, 0, 0)
    if hdrsize == 40:
        hdr += struct.pack(">Q", entry)
    return hdr + text + data + syms


def hello(arch, where="text"):
    """The hello program with msg at the end of the text or in the data segment."""
    code, off, kind = HELLO[arch]
    code = bytearray(h(code))
    text_start = UTZERO[arch] + HDRSIZE[arch]
    if where == "text":
        code += b"\0" * (-len(code) % 4)
        msg_addr = text_start + len(code)
        text, data = bytes(code) + MSG, b""
    else:
        text_end = text_start + len(code)
        msg_addr = (text_end + UTROUND[arch] - 1) & ~(UTROUND[arch] - 1)
        text, data = None, MSG
    if kind == "pc32":
        struct.pack_into("<i", code, off, msg_addr - 4 - (text_start + off))
    else:
        struct.pack_into("<I", code, off, msg_addr)
    if text is None:
        text = bytes(code)
    else:
        text = bytes(code) + text[len(code):]
    return aout(arch, text, data)


def run(tmp_path, image, name="prog", **kw):
    p = tmp_path / name
    p.write_bytes(image)
    return plan9.run(p, **kw)


@pytest.mark.parametrize("arch", ARCHS)
def test_examples_match(arch):
    """The hex here is the text of examples/plan9/hello/<arch>.obj."""
    obj = json.loads((ROOT / "examples/plan9/hello" / f"{arch}.obj").read_text())
    assert obj["arch"] == arch
    text = next(s for s in obj["sections"] if s["name"] == ".text")
    assert h(text["data"]) == h(HELLO[arch][0])
    (rel,) = text["relocs"]
    assert rel["offset"] == HELLO[arch][1] and rel["symbol"] == "msg"


@pytest.mark.parametrize("where", ["text", "data"])
@pytest.mark.parametrize("arch", ARCHS)
def test_hello(tmp_path, arch, where):
    img = hello(arch, where)
    r = run(tmp_path, img)
    assert r.stdout == MSG
    assert r.stderr == b""
    assert r.status == 0 and r.exit_message is None
    hdrsize = HDRSIZE[arch]
    text = len(img) - hdrsize - (len(MSG) if where == "data" else 0)
    assert r.header == dict(magic=MAGIC[arch], text=text, data=len(MSG) if where == "data" else 0,
                            bss=0, syms=0, entry=UTZERO[arch] + hdrsize, spsz=0, pcsz=0,
                            hdrsize=hdrsize)


def test_hello_with_bss_and_symbols(tmp_path):
    """bss after data, a symbol table after data in the file (not loaded)."""
    code, off, _ = HELLO["x86"]
    code = bytearray(h(code))
    text_end = UTZERO["x86"] + 32 + len(code)
    data_addr = (text_end + 0xFFF) & ~0xFFF
    struct.pack_into("<I", code, off, data_addr)
    img = aout("x86", bytes(code), MSG, 0x3000, syms=b"\xff" * 100)
    r = run(tmp_path, img)
    assert r.stdout == MSG and r.status == 0
    assert r.header["bss"] == 0x3000 and r.header["syms"] == 100


def test_exits_with_message(tmp_path):
    # andq $-16,%rsp; subq $16,%rsp; leaq msg(%rip),%rax; movq %rax,8(%rsp);
    # movl $8,%ebp; syscall; ud2; msg: "boom\0"
    code = bytearray(h("48 83 e4 f0  48 83 ec 10  48 8d 05 00 00 00 00  48 89 44 24 08"
                       "  bd 08 00 00 00  0f 05  0f 0b"))
    struct.pack_into("<i", code, 11, len(code) - 15)
    r = run(tmp_path, aout("amd64", bytes(code) + b"boom\0"))
    assert r.status == 1 and r.exit_message == "boom" and r.stdout == b""


@pytest.mark.parametrize("arch", ARCHS)
def test_unknown_syscall(tmp_path, arch):
    with pytest.raises(EmuError, match=r"unknown plan 9 system call 14 \(open\)"):
        run(tmp_path, aout(arch, h(UNKNOWN_SYSCALL[arch])))


def test_linux_int80_on_386(tmp_path):
    with pytest.raises(EmuError, match=r"unexpected interrupt 0x80.*INT \$64"):
        run(tmp_path, aout("x86", h("cd 80")))


@pytest.mark.parametrize("arch", ARCHS)
def test_jump_to_unmapped(tmp_path, arch):
    code, target = JUMP_UNMAPPED[arch]
    with pytest.raises(EmuError, match=rf"(?i)unmapped.*{target:#x}") as e:
        run(tmp_path, aout(arch, h(code)))
    assert not isinstance(e.value, LoadError)


@pytest.mark.parametrize("arch", ARCHS)
def test_invalid_instruction(tmp_path, arch):
    with pytest.raises(EmuError, match="invalid instruction"):
        run(tmp_path, aout(arch, h(INVALID_INSN[arch])))


def test_write_to_text(tmp_path):
    # movl $0x200000, %eax; movl %eax, (%rax)
    with pytest.raises(EmuError, match=r"write to read-only memory at address 0x200000 \(in text"):
        run(tmp_path, aout("amd64", h("b8 00 00 20 00  89 00")))


@pytest.mark.parametrize("arch", ARCHS)
def test_instruction_limit(tmp_path, arch):
    with pytest.raises(EmuError, match="instruction limit of 100000 reached"):
        run(tmp_path, aout(arch, h(LOOP[arch])), max_insns=100_000)


def test_time_limit(tmp_path):
    with pytest.raises(EmuError, match="time limit of 0.5 s reached"):
        run(tmp_path, aout("amd64", h(LOOP["amd64"])), timeout=0.5, max_insns=0)


def test_bad_magic(tmp_path):
    with pytest.raises(LoadError, match="unknown magic 0x7f454c46"):
        run(tmp_path, b"\x7fELF" + bytes(60))


def test_truncated_header(tmp_path):
    with pytest.raises(LoadError, match="truncated header: 20 bytes"):
        run(tmp_path, aout("x86", h("0f 0b"))[:20])
    with pytest.raises(LoadError, match="needs 40"):
        run(tmp_path, aout("amd64", h("0f 0b"))[:36])


@pytest.mark.parametrize("arch", ARCHS)
def test_truncated_file(tmp_path, arch):
    img = hello(arch, "data")
    with pytest.raises(LoadError, match=rf"truncated: .* the file has {len(img) - 5}"):
        run(tmp_path, img[:-5])


def test_sizes_past_end(tmp_path):
    img = aout("arm", h(LOOP["arm"]), sizes=(4, 0, 0, 1000))
    with pytest.raises(LoadError, match="syms 1000"):
        run(tmp_path, img)


@pytest.mark.parametrize("entry_off", [-4, 2, 100])
def test_entry_outside_text(tmp_path, entry_off):
    with pytest.raises(LoadError, match="entry 0x[0-9a-f]+ is outside the text"):
        run(tmp_path, aout("x86", h("0f 0b"), entry_off=entry_off))


def test_initial_stack(tmp_path):
    """As after exec: SP -> argc 1, argv[0] -> the program's name, argv[1] nil;
    AX holds the Tos address at the top of the stack."""
    m, entry, sp, header = plan9.load(aout("amd64", h("0f 0b")), "/bin/prog")
    assert m.read_word(sp) == 1
    argv0 = m.read_word(sp + 8)
    assert m.read_cstring(argv0, 100) == b"prog"
    assert m.read_word(sp + 16) == 0
    assert m.reg("rax") == 0x7FFFF000 - 72
    assert sp % 8 == 0
    m, entry, sp, header = plan9.load(aout("arm", h("0f 0b 00 00")))
    assert m.read_word(sp) == 1 and sp % 8 == 0  # the kernel 8-aligns SP (argc included)
    assert m.reg("r0") == 0xDEFFF000 - 56


@pytest.mark.parametrize("arch,code,what", [
    ("amd64", "f4", "privileged instruction: hlt"),  # unicorn runs x86 at CPL 0
    ("x86", "ec", "privileged instruction: in from port"),  # in %dx, %al
    ("x86", "0f 05", "unsupported instruction syscall"),
    ("x86", "cc", r"breakpoint \(#BP"),  # int3
    ("arm", "70 00 20 e1", r"breakpoint \(BKPT\)"),  # bkpt #0
])
def test_cpu_exceptions(tmp_path, arch, code, what):
    with pytest.raises(EmuError, match=what):
        run(tmp_path, aout(arch, h(code)), max_insns=100_000)


def test_bad_pwrite_buffer(tmp_path):
    # pwrite(1, 0x10, 13, -1) on 386: msg pointer into unmapped memory
    code = h("83 e4 f0  83 ec 20  c7 44 24 04 01 00 00 00  c7 44 24 08 10 00 00 00"
             "  c7 44 24 0c 0d 00 00 00  c7 44 24 10 ff ff ff ff  c7 44 24 14 ff ff ff ff"
             "  b8 33 00 00 00  cd 40  0f 0b")
    with pytest.raises(EmuError, match=r"pwrite\(1, 0x10, 13\): bad address 0x10"):
        run(tmp_path, aout("x86", code))
