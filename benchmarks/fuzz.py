"""fuzz: mutated objects through the CLI's own error handling; exit 3 never.

Each execution writes one mutated object (from the examples: every arch's
hello, the multi-object program, each in both encodings), then links it (and
sometimes reads it as `inspect` does) in this process through cli.run, the
function that turns the CLI's exceptions into exit statuses: 0, 1 (bad
input), 2 (usage), 3 (a bug). In-process, so that 100,000 executions take
minutes, not hours; the code path is the CLI's, minus printing. An address
space limit (--vmem, 2 GiB) turns any resource bomb into an "out of memory"
that is counted apart.

    python benchmarks/fuzz.py --executions 100000 --jobs 4 --crashers /tmp/crashers

tests/test_reliability.py runs hypothesis_run (a few seconds, a fixed seed)
and the corpus of past crashers (tests/fuzz/). Figures: docs/reliability.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EXAMPLES = ROOT / "examples"
WEIRD = [0, -1, 1, 2, 3, 7, 4096, 2**16, 2**31, 2**32, 2**63 - 1, 2**63, 2**64 - 1, 2**64,
         -2**63, -2**63 - 1, 2**100, -2**100, 1.5, -0.0, 1e308, "", "x", "\u0000", "é" * 3,
         None, True, False, [], {}, [[]], {"a": 1}, "R_X86_64_PC32", "R_X86_64_32",
         "R_AARCH64_CALL26", ".text", ".data", "*ABS*", "text", "bss", "dwarf", "global",
         "weak", "local", "func", "section", "compact", "readable", "amd64", "arm64", "wasm",
         "AAAA", "////", "=", "AA==", "AAAAAAAAAAA="]


def seeds() -> list[tuple[str, dict]]:
    """seeds: (name, document) for every example object, both encodings."""
    from minild import arch
    from minild.encode import encode_compact
    from minild.loader import read_object

    out = []
    paths = sorted((EXAMPLES / "hello").glob("*.obj")) + sorted((EXAMPLES / "multi").glob("*.obj"))
    for p in paths:
        doc = json.loads(p.read_text())
        out.append((f"{p.parent.name}/{p.name}", doc))
        try:
            o = read_object(str(p))
            out.append((f"{p.parent.name}/{p.name}:compact",
                        json.loads(encode_compact(o, arch.lookup(o.arch)))))
        except Exception:  # noqa: BLE001 - an example another engineer is changing
            pass
    return out


def paths(doc, prefix=()):
    yield prefix, doc
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from paths(v, prefix + (i,))


def mutate(doc, rng: random.Random) -> tuple[object, str]:
    """mutate changes one place of a copy of doc: delete, duplicate, set to a
    weird value, nudge a number, nest deeply, or cut a base64/hex string."""
    doc = copy.deepcopy(doc)
    ps = [p for p, _ in paths(doc) if p]
    if not ps:
        return doc, "nothing"
    p = rng.choice(ps)
    parent = doc
    for k in p[:-1]:
        parent = parent[k]
    key = p[-1]
    cur = parent[key]
    what = rng.randrange(8)
    if what == 0 and isinstance(parent, dict):
        del parent[key]
        return doc, f"delete {p}"
    if what == 1 and isinstance(parent, list):
        parent.insert(rng.randrange(len(parent) + 1), copy.deepcopy(cur))
        return doc, f"duplicate {p}"
    if what == 2 and isinstance(cur, int) and not isinstance(cur, bool):
        v = cur + rng.choice([-1, 1, 7, -4096, 2**32, -2**32, 2**63, cur])
        parent[key] = v
        return doc, f"nudge {p} to {v}"
    if what == 3 and isinstance(cur, str) and cur:
        a, b = sorted(rng.randrange(len(cur) + 1) for _ in range(2))
        parent[key] = cur[:a] + rng.choice(["", "A", "=", "zz", cur[b:a:-1]]) + cur[b:]
        return doc, f"cut {p}"
    if what == 4 and rng.random() < 0.2:
        n = rng.choice([70, 500, 2000, 20000])
        parent[key] = f"\u0001deep {n}\u0001"   # written out by dumps
        return doc, f"nest {p} {n} deep"
    if what == 5 and isinstance(parent, dict):
        parent[rng.choice(["zz", "encoding", "count", "types", "import", "size", "data"])] = \
            rng.choice(WEIRD)
        return doc, f"add a field at {p[:-1]}"
    v = rng.choice(WEIRD)
    parent[key] = v
    return doc, f"set {p} = {v!r}"


def dumps(doc) -> str:
    """dumps writes doc as JSON; deep-nesting placeholders become N-deep arrays
    (deeper than json.dumps can write)."""
    text = json.dumps(doc, ensure_ascii=False)
    # (a placeholder that a later mutation cut stays a string)
    return DEEP.sub(lambda m: "[" * int(m.group(1)) + "]" * int(m.group(1)), text)


DEEP = re.compile(r'"\\u0001deep (\d+)\\u0001"')


class Quiet:
    def print(self, *a, **kw):
        pass


def setup(vmem: int | None = 2 << 30):
    """setup makes this process the CLI's handler minus the printing; an
    out-of-memory becomes SystemExit(4) (counted apart) instead of os._exit.
    Returns a function that undoes it (but not vmem)."""
    if vmem:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (vmem, vmem))
    from minild import cli
    saved = cli.err, cli.out, cli.out_of_memory
    cli.err = Quiet()
    cli.out = Quiet()

    def oom(detail=""):
        raise SystemExit(4)
    cli.out_of_memory = oom

    def restore():
        cli.err, cli.out, cli.out_of_memory = saved
    return restore


def execute(text: str, workdir: Path, rng: random.Random | None = None) -> int:
    """execute links one object text through cli.run (and reads it as
    inspect does, one time in four); returns the worst exit status."""
    from minild import cli
    from minild.link import Options, link
    from minild.loader import read_object

    f = workdir / "m.obj"
    f.write_text(text)
    kw = {}
    if rng is not None:
        r = rng.random()
        if r < 0.1:
            kw["mmap"] = False
        elif r < 0.2:
            kw["strip"] = True
        elif r < 0.25:
            kw["headtype"] = rng.choice(["plan9", "pe", "macho"])
    status = 0
    calls = [(link, Options(objects=[str(f)], output=str(workdir / "out"), jobs=1, **kw))]
    if rng is None or rng.random() < 0.25:
        calls.append((read_object, str(f)))
    for fn, arg in calls:
        try:
            cli.run(fn, arg)
        except SystemExit as e:
            status = max(status, int(e.code or 0))
    return status


def worker(n: int, seed: int, workdir: Path, crashers: Path | None) -> dict:
    rng = random.Random(seed)
    docs = seeds()
    counts = {0: 0, 1: 0, 2: 0, 3: 0, 4: 0, 5: 0}
    for i in range(n):
        name, base = rng.choice(docs)
        doc, how = base, []
        for _ in range(1 + (rng.random() < 0.3) + (rng.random() < 0.1)):
            doc, h = mutate(doc, rng)
            how.append(h)
        text = dumps(doc)
        try:
            s = execute(text, workdir, rng)
        except Exception:  # noqa: BLE001 - outside cli.run: the fuzzer's own, or a bug
            import traceback
            s, how = 5, how + [traceback.format_exc()]
        counts[s] = counts.get(s, 0) + 1
        if s >= 3 and crashers is not None:   # 3: a bug, 4: out of memory, 5: escaped
            (crashers / f"s{seed}-{i}-exit{s}.obj").write_text(text)
            (crashers / f"s{seed}-{i}-exit{s}.txt").write_text(f"{name}: {'; '.join(how)}\n")
    return counts


def hypothesis_run(workdir: Path, max_examples: int = 300) -> int:
    """hypothesis_run: hypothesis draws a seed document and a list of
    mutations (places and values from its JSON strategy); derandomized, so a
    failure reproduces. Raises (with the shrunk example) on an exit 3;
    returns 0."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    restore = setup(vmem=None)
    docs = seeds()
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
        | st.sampled_from(WEIRD[:20]) | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                     max_size=3),
        max_leaves=6)

    @settings(derandomize=True, max_examples=max_examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def one(data):
        name, doc = data.draw(st.sampled_from(docs), label="seed")
        doc = copy.deepcopy(doc)
        for _ in range(data.draw(st.integers(1, 3), label="mutations")):
            ps = [p for p, _ in paths(doc) if p]
            p = data.draw(st.sampled_from(ps), label="place")
            parent = doc
            for k in p[:-1]:
                parent = parent[k]
            op = data.draw(st.sampled_from(["set", "delete", "add"]), label="op")
            if op == "delete" and isinstance(parent, dict):
                del parent[p[-1]]
            elif op == "add" and isinstance(parent, list):
                parent.append(data.draw(json_values, label="value"))
            else:
                parent[p[-1]] = data.draw(json_values, label="value")
        status = execute(dumps(doc), workdir)
        assert status != 3, f"exit 3 on a mutation of {name}: {dumps(doc)[:2000]}"

    try:
        one()
    finally:
        restore()
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--executions", type=int, default=100_000)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--vmem", type=int, default=2 << 30, help="RLIMIT_AS per worker (bytes)")
    ap.add_argument("--crashers", type=Path, default=None,
                    help="directory for objects that gave exit 3 or out of memory")
    a = ap.parse_args()
    import tempfile
    if a.crashers:
        a.crashers.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    pids = []
    tmp = Path(tempfile.mkdtemp(prefix="minild-fuzz-"))
    for j in range(a.jobs):
        n = a.executions // a.jobs + (j < a.executions % a.jobs)
        w = tmp / f"w{j}"
        w.mkdir()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                setup(a.vmem)
                c = worker(n, a.seed * 1000 + j, w, a.crashers)
                (w / "counts.json").write_text(json.dumps(c))
                code = 0
            except BaseException:
                import traceback
                traceback.print_exc()
            finally:
                os._exit(code)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    total = {}
    for j in range(a.jobs):
        f = tmp / f"w{j}" / "counts.json"
        if not f.exists():
            print(f"worker {j} died (seed {a.seed * 1000 + j})")
            total[5] = total.get(5, 0) + 1
            continue
        for k, v in json.loads(f.read_text()).items():
            total[int(k)] = total.get(int(k), 0) + v
    dt = time.monotonic() - t0
    n = sum(total.values())
    print(f"executions {n} in {dt:.0f} s ({n / dt:.0f}/s, {a.jobs} jobs, seed {a.seed}): "
          f"exit 0: {total.get(0, 0)}, exit 1: {total.get(1, 0)}, exit 2: {total.get(2, 0)}, "
          f"exit 3: {total.get(3, 0)}, out of memory: {total.get(4, 0)}, "
          f"escaped cli.run: {total.get(5, 0)}")
    sys.exit(1 if total.get(3, 0) or total.get(4, 0) or total.get(5, 0) else 0)


if __name__ == "__main__":
    main()
