"""Symbol names and resolution (minild.names, resolve.definitions): the hash join
against a plain dict of Python strings, on names of every length and alphabet,
and the dict fallback when two defined names share a hash."""

import msgspec
import numpy as np
import pytest

from minild import names as names_module
from minild import resolve as L
from minild.vocab import Bind
from minild.names import Names, SymbolTable

WORDS = ["", "a", "ab", "main", "f1234567", "f12345678", "_ZN4core3fmt5write17h0123456789abcdefE",
         "x" * 16, "x" * 17, "x" * 15, "grüße", "名前", "a.b$c", "x" * 200, "y" * 8, "y" * 9]


def test_from_list_and_back():
    n = Names.from_list(WORDS)
    assert n.tolist() == WORDS
    assert [n[i] for i in range(len(WORDS))] == WORDS
    assert n.tolist(np.array([3, 0, 10])) == [WORDS[3], WORDS[0], WORDS[10]]


@pytest.mark.parametrize("text, ok", [
    (b'["a","bc","def"]', True),
    (b'[]', True),
    (b'[""]', True),
    (b'["a", "b"]', False),          # whitespace: decoded the slow way
    (b'["a\\"b"]', False),           # an escape
    (b'["gr\xc3\xbc\xc3\x9fe"]', False),  # non-ASCII
    (b'["a",1]', False),
    (b'[["a"]]', False),
    (b'{"a":"b"}', False),
    (b'"ab"', False),
])
def test_from_json_array_reads_only_plain_arrays(text, ok):
    got = Names.from_json_array(text)
    assert (got is not None) == ok
    if ok:
        assert got.tolist() == msgspec.json.decode(text)


def test_hash_is_a_function_of_the_bytes_alone():
    a = Names.from_list(WORDS)
    b = Names.concat([Names.from_list(["zz", "q"]), Names.from_list(list(reversed(WORDS)))])
    ha = a.hash(np.arange(len(WORDS)))
    hb = b.hash(np.arange(2, 2 + len(WORDS)))[::-1]
    assert (ha == hb).all()
    assert len(set(ha.tolist())) == len(WORDS)


def test_equal_is_byte_for_byte():
    words = WORDS + ["x" * 17, "x" * 16 + "y", "f12345679", "", "grüße"]
    n = Names.from_list(words)
    a, b = np.meshgrid(np.arange(len(words)), np.arange(len(words)))
    got = n.equal(a.ravel(), b.ravel())
    want = [words[i] == words[j] for i, j in zip(a.ravel(), b.ravel())]
    assert got.tolist() == want


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("chunk", [7, names_module.STRTAB_CHUNK])
def test_strtab_layout(seed, chunk, monkeypatch):
    """Names.strtab writes names in 8-byte words that may run into the next
    names' places: every name of every length (0 to 40 bytes, UTF-8), in any
    order and with repeats, must come out whole, each after the last's NUL.
    With a name over 32 bytes it joins them a chunk at a time: the chunks
    (of 7 here, to cross many) meet without a gap or an overlap."""
    monkeypatch.setattr(names_module, "STRTAB_CHUNK", chunk)
    rng = np.random.default_rng(seed)
    pool = WORDS + ["", "é", "x" * 8, "y" * 9, "z" * 16, "w" * 17, "ü" * 20] + \
        ["".join(rng.choice(list("abcdefghij_0123456789"), int(k))) for k in rng.integers(0, 41, 60)]
    n = Names.from_list(pool)
    short = np.flatnonzero(n.length <= 32)  # every name by word passes; with a longer one, by join
    for idx in (np.array([4, 0, 13, 10]), rng.integers(0, len(pool), 300), np.zeros(0, np.int64),
                short[rng.integers(0, len(short), 300)]):
        blob, offs = n.strtab(idx)
        assert blob == b"".join(pool[i].encode() + b"\0" for i in idx)
        assert [blob[o:].split(b"\0")[0].decode() for o in offs] == [pool[i] for i in idx]


def random_link(rng, n=4000):
    """Symbol entries as loadlib sees them: names (with repeats), bindings and
    whether each is defined."""
    pool = [f"s{k}" for k in range(n // 4)] + [f"long_symbol_name_{k}_" * (k % 4 + 1)
                                                 for k in range(n // 4)]
    names = [pool[k] for k in rng.integers(0, len(pool), n)]
    bind = rng.choice([Bind.LOCAL, Bind.GLOBAL, Bind.WEAK], n, p=[0.1, 0.8, 0.1]).astype(np.uint8)
    defined = rng.random(n) < 0.3
    return names, bind, defined


def oracle(names, bind, defined):
    first, dups = {}, {}
    for i, (nm, b, d) in enumerate(zip(names, bind, defined)):
        if d and b == Bind.GLOBAL:
            j = first.setdefault(nm, i)
            if j != i:
                dups.setdefault(nm, [j]).append(i)
    for i, (nm, b, d) in enumerate(zip(names, bind, defined)):
        if d and b == Bind.WEAK:
            first.setdefault(nm, i)
    return first, sorted(dups.values(), key=lambda ids: ids[1])


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("collide", [False, True])
def test_definitions_and_lookups_match_a_dict(seed, collide):
    rng = np.random.default_rng(seed)
    names, bind, defined = random_link(rng)
    tab = Names.from_list(names)
    strong = np.flatnonzero((bind == Bind.GLOBAL) & defined)
    weak = np.flatnonzero((bind == Bind.WEAK) & defined)
    nonlocal_ = np.flatnonzero(bind != Bind.LOCAL)
    hashes = np.zeros(len(names), np.uint64)
    hashes[nonlocal_] = tab.hash(nonlocal_)
    if collide:
        # Different names with one hash: definitions must notice and fall back.
        hashes[nonlocal_] = tab.length[nonlocal_].astype(np.uint64) % 3
    defs, dups = L.definitions(tab, hashes, strong, weak)
    assert isinstance(defs, L.DictDefinitions) == collide
    first, want_dups = oracle(names, bind, defined)
    assert [d.tolist() for d in dups] == want_dups
    look = np.flatnonzero(bind != Bind.LOCAL)
    assert defs.lookup(look).tolist() == [first.get(names[i], -1) for i in look]
    for name in ["s1", "nowhere", names[int(strong[0])], "long_symbol_name_3_"]:
        assert defs.get(name) == first.get(name)


def test_a_shared_hash_between_a_reference_and_a_definition_is_no_match():
    """Definitions' hashes are distinct; a reference whose hash meets another
    name's is defined nowhere (the byte comparison says so)."""
    tab = Names.from_list(["alpha", "beta", "gamma"])
    hashes = np.array([7, 7, 9], np.uint64)   # beta (undefined) shares alpha's hash
    t = SymbolTable(tab, np.array([0, 2]), hashes[[0, 2]])
    assert t.lookup(tab, np.array([1, 0, 2]), hashes[[1, 0, 2]]).tolist() == [-1, 0, 2]


def test_an_empty_table_finds_nothing():
    tab = Names.from_list(["a", "b"])
    t = SymbolTable(tab, np.zeros(0, np.int64), np.zeros(0, np.uint64))
    assert t.lookup(tab, np.array([0, 1]), tab.hash(np.array([0, 1]))).tolist() == [-1, -1]
    assert t.get("a") is None


def test_lookups_in_small_chunks(monkeypatch):
    """SymbolTable.lookup works through the names in chunks: the answers do not
    depend on where the cuts fall."""
    import minild.names as N
    rng = np.random.default_rng(9)
    names, bind, defined = random_link(rng)
    tab = Names.from_list(names)
    strong = np.flatnonzero((bind == Bind.GLOBAL) & defined)
    weak = np.flatnonzero((bind == Bind.WEAK) & defined)
    look = np.flatnonzero(bind != Bind.LOCAL)
    whole = L.definitions(tab, tab.hashes(), strong, weak)[0].lookup(look)
    monkeypatch.setattr(N, "LOOKUP_CHUNK", 97)
    assert (L.definitions(tab, tab.hashes(), strong, weak)[0].lookup(look) == whole).all()
    first, _ = oracle(names, bind, defined)
    assert whole.tolist() == [first.get(names[i], -1) for i in look]
