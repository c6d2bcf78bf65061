"""Mutated objects never crash minild: every mutation of a valid object either
links or fails with a LinkError (a located message, exit 1), never with another
exception (which the CLI would report as an internal error).

Deterministic: the mutations come from a seeded generator, so a failure here
reproduces. Each case also names the mutation that caused it."""

import copy
import json
import random

import pytest

from conftest import EXAMPLES
from minild import arch
from minild.errors import LinkError
from minild.link import Options, link
from minild.encode import encode_compact
from minild.loader import read_object

SEEDS = {"readable": EXAMPLES / "multi" / "main.obj", "x86": EXAMPLES / "hello" / "x86.obj"}
CASES = 400  # per test; seeds fixed, so a failure reproduces
WEIRD = [0, -1, 1, 2**31, 2**32, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -2**63, -2**63 - 1,
         2**100, -2**100, 3, 4096, 1.5, "", "x", None, True, [], {}, "R_X86_64_PC32", "zz",
         ".text", "*ABS*", "\u0000", "é"]


def paths(doc, prefix=()):
    """paths lists every (path, value) in a JSON document."""
    yield prefix, doc
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from paths(v, prefix + (i,))


def mutate(doc, rng: random.Random) -> tuple[dict, str]:
    doc = copy.deepcopy(doc)
    ps = [p for p, _ in paths(doc) if p]
    p = rng.choice(ps)
    parent = doc
    for k in p[:-1]:
        parent = parent[k]
    key = p[-1]
    what = rng.randrange(4)
    if what == 0 and isinstance(parent, dict):
        del parent[key]
        return doc, f"delete {p}"
    if what == 1 and isinstance(parent, list):
        parent.append(copy.deepcopy(parent[key]))
        return doc, f"duplicate {p}"
    v = rng.choice(WEIRD)
    if isinstance(parent[key], int) and not isinstance(parent[key], bool) and rng.random() < .5:
        v = parent[key] + rng.choice([-1, 1, 7, -4096, 2**32])
    parent[key] = v
    return doc, f"set {p} = {v!r}"


def attempt(tmp_path, files, **opts):
    try:
        link(Options(objects=[str(f) for f in files], output=str(tmp_path / "out"), **opts))
    except LinkError:
        pass


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_mutated_readable_objects(tmp_path, name):
    base = json.loads(SEEDS[name].read_text())
    others = [EXAMPLES / "multi" / n for n in ("greet.obj", "ops.obj")] if name == "readable" else []
    rng = random.Random(1234)
    for i in range(CASES):
        doc, how = mutate(base, rng)
        f = tmp_path / "m.obj"
        f.write_text(json.dumps(doc))
        try:
            attempt(tmp_path, [f, *others])
        except Exception as e:  # noqa: BLE001 - the point: nothing but LinkError
            raise AssertionError(f"case {i}: {how}: {type(e).__name__}: {e}") from e


@pytest.mark.parametrize("archname", sorted(p.stem for p in (EXAMPLES / "hello").glob("*.obj")))
def test_mutated_hello_of_every_arch(tmp_path, archname):
    """Every arch's hello, mutated: its relocation encoders and hooks (pairing,
    TOC, local entries) meet bad input too."""
    base = json.loads((EXAMPLES / "hello" / f"{archname}.obj").read_text())
    rng = random.Random(archname)
    for i in range(CASES // 4):
        doc, how = mutate(base, rng)
        f = tmp_path / "m.obj"
        f.write_text(json.dumps(doc))
        try:
            attempt(tmp_path, [f])
            attempt(tmp_path, [f], externallink=True, extld="true")
        except Exception as e:  # noqa: BLE001
            raise AssertionError(f"case {i}: {how}: {type(e).__name__}: {e}") from e


COMPACT_SOURCES = ["multi"] + sorted(p.stem for p in (EXAMPLES / "hello").glob("*.obj"))


@pytest.mark.parametrize("source", COMPACT_SOURCES)
def test_mutated_compact_objects(tmp_path, source):
    """Compact objects: mutate the JSON and, separately, the bytes of a column."""
    import base64

    if source == "multi":
        path = SEEDS["readable"]
        others = [EXAMPLES / "multi" / n for n in ("greet.obj", "ops.obj")]
        cases = CASES
    else:
        path, others, cases = EXAMPLES / "hello" / f"{source}.obj", [], CASES // 4
    obj = read_object(str(path))
    base = json.loads(encode_compact(obj, arch.lookup(obj.arch)))
    rng = random.Random(source)
    for i in range(cases):
        if i % 2:
            doc, how = mutate(base, rng)
        else:
            doc = copy.deepcopy(base)
            group = rng.choice(["symbols", "relocs"])
            cols = [k for k, v in doc[group].items() if isinstance(v, str)]
            col = rng.choice(cols)
            raw = bytearray(base64.b64decode(doc[group][col]))
            if raw:
                raw[rng.randrange(len(raw))] = rng.randrange(256)
            doc[group][col] = base64.b64encode(bytes(raw)).decode()
            how = f"byte flip in {group}.{col}"
        f = tmp_path / "m.obj"
        f.write_text(json.dumps(doc))
        for jobs, use_mmap in ((1, True), (2, False)):
            try:
                attempt(tmp_path, [f, *others], jobs=jobs, mmap=use_mmap)
            except Exception as e:  # noqa: BLE001
                raise AssertionError(f"case {i}: {how}: {type(e).__name__}: {e}") from e


def test_mutated_elf_objects_import_or_fail_cleanly(tmp_path):
    """minild import on damaged ELF objects: bytes flipped in the headers and
    tables of a real GNU as object give an object or a LinkError, no crash."""
    import subprocess

    from conftest import binutil

    src = tmp_path / "a.s"
    src.write_text("\t.text\n\t.globl _start\n_start:\tcall f\n\tleaq msg(%rip), %rax\n"
                   "\tret\n\t.data\nmsg:\t.quad _start, f\n")
    good = tmp_path / "a.o"
    subprocess.run([binutil("amd64", "as"), "-o", good, src], check=True)
    data = good.read_bytes()
    import_damaged(tmp_path, data, random.Random(7), CASES, truncate=True)


def import_damaged(tmp_path, data: bytes, rng, cases: int, truncate: bool) -> None:
    """import_damaged flips 1 to 3 bytes of an ELF object (and, with truncate,
    sometimes cuts it short) `cases` times and imports each: an object, which
    the loader reads back (or refuses, located), or a LinkError; never another
    exception."""
    from minild.importer import import_elf

    for i in range(cases):
        raw = bytearray(data)
        for _ in range(rng.randrange(1, 4)):
            # Mostly the ELF header and the tables at the end (section headers,
            # symbols, relocations), where a flip changes structure.
            k = rng.randrange(64) if rng.random() < .3 else rng.randrange(len(raw))
            raw[k] = rng.randrange(256)
        if truncate and rng.random() < .1:
            raw = raw[:rng.randrange(len(raw))]
        f = tmp_path / "m.o"
        f.write_bytes(bytes(raw))
        try:
            obj = import_elf(str(f))
            out = tmp_path / "m.obj"
            out.write_bytes(encode_compact(obj, arch.lookup(obj.arch)))
            read_object(str(out))
        except LinkError:
            pass
        except Exception as e:  # noqa: BLE001
            raise AssertionError(f"case {i}: {type(e).__name__}: {e}") from e


@pytest.mark.parametrize("archname", sorted(p.stem for p in (EXAMPLES / "hello").glob("*.obj")))
def test_mutated_elf_objects_of_every_arch(tmp_path, archname):
    """The ELF objects --externallink writes for every arch's hello (REL and RELA,
    both classes and byte orders), damaged, imported: an object or a LinkError.
    This reaches the arch hooks that read REL addends from instruction fields."""
    from minild.importer import import_elf

    with pytest.raises(LinkError, match="wrote no output"):  # `true` links nothing
        link(Options(objects=[str(EXAMPLES / "hello" / f"{archname}.obj")],
                     output=str(tmp_path / "exe"), externallink=True, extld="true",
                     tmpdir=str(tmp_path / "t")))
    data = (tmp_path / "t" / "minild.o").read_bytes()
    import_elf(str(tmp_path / "t" / "minild.o"))  # the undamaged object imports
    import_damaged(tmp_path, data, random.Random(archname), CASES // 4, truncate=False)


def test_cli_exit_codes_under_fuzzing(tmp_path):
    """The CLI, not only the API: each mutated object exits 0 when the API links
    it and 1 when the API raises a LinkError, with only located error lines on
    stderr (no traceback, no internal error), and a failed link leaves the
    previous output as it was."""
    import re
    import subprocess
    import sys
    base = json.loads(SEEDS["readable"].read_text())
    others = [EXAMPLES / "multi" / n for n in ("greet.obj", "ops.obj")]
    rng = random.Random(20)
    seen = set()
    for i in range(40):
        doc, how = mutate(base, rng)
        f = tmp_path / "m.obj"
        f.write_text(json.dumps(doc))
        try:
            link(Options(objects=[str(f), *map(str, others)], output=str(tmp_path / "api")))
            want = 0
        except LinkError:
            want = 1
        out = tmp_path / "out"
        out.write_bytes(b"previous")
        p = subprocess.run([sys.executable, "-m", "minild.cli", "link", str(f), *map(str, others),
                            "-o", str(out)], capture_output=True, text=True)
        seen.add(p.returncode)
        assert p.returncode == want, f"case {i}: {how}: exit {p.returncode}:\n{p.stderr}"
        if want:
            assert re.fullmatch(r"(error: .*\n)(((error: |>>> ).*\n)*)", p.stderr), \
                f"case {i}: {how}:\n{p.stderr}"
            assert out.read_bytes() == b"previous", f"case {i}: {how}"
        else:
            assert p.stderr == "" and out.read_bytes() == (tmp_path / "api").read_bytes()
    assert seen == {0, 1}
