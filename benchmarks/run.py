"""run: the benchmark, minild against ld.bfd, gold, lld and mold, in one command.

    python benchmarks/run.py --size small|medium|large [--shape NAME] [--runs 5] [--pairs 5]
    python benchmarks/run.py --size large --compact-only --profile   # minild alone
    python benchmarks/run.py --sweep [--shapes a,b] [--sizes small,medium]   # every shape
    python benchmarks/run.py --objects DIR --entry SYM [--run]   # your own .o files

--sweep builds every shape of program.SHAPES at every size and prints one table:
each linker's median, the paired ratios minild/lld and minild/ld.bfd, peak RSS
against lld's, the cost per relocation and per symbol, and how that cost grows
between sizes (benchmarks/out/sweep.json). --objects imports a directory of
x86-64 ELF .o files once and links them with minild and the system linkers
(`-static -nostdlib -e SYM`), side by side; with --run every output is run and
must print and exit as ld.bfd's does.

Steps: generate the synthetic program (gen.py) as GNU assembly; assemble it with
2 workers; link the .o files with every system linker (`-static -nostdlib -e
_start`); import each .o once with `minild import --compact` (timed on its own);
link the imported objects with minild; run every output and check that each
prints the checksum the generator computed (and exits with its low byte); then
time every linker (round-robin, one warm-up, >= 5 runs: wall, CPU, peak RSS of
the child from wait4), minild against lld and against ld.bfd in alternating
pairs (the ratios), minild -j1 / -j2 / --no-mmap (outputs must be identical) and
the per-phase table of `minild link --bench`. Prints tables (rich) and writes
benchmarks/out/<size>.json. Needs binutils, lld and mold (`apt-get install lld
mold`); installs nothing.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from program import SHAPES, SIZES  # noqa: E402

console = Console(highlight=False, width=max(100, shutil.get_terminal_size().columns))
JOBS = 2  # the machine's cores
TIME = "/usr/bin/time"  # GNU time, for the peak RSS of one command

SYSTEM_LINKERS = {
    "ld.bfd": ["ld.bfd"],
    "ld.gold": ["ld.gold"],
    "ld.lld": ["ld.lld"],
    "mold": ["mold", "--no-fork"],
}
LINK_FLAGS = ["-static", "-nostdlib", "-e", "_start"]


def minild_cmd() -> list[str]:
    """minild_cmd is the console script beside this interpreter: a pyenv shim in
    front of it costs ~75 ms per run (perf-anchors.md), which is not minild's."""
    script = Path(sys.executable).parent / "minild"
    return [str(script)] if script.exists() else [sys.executable, "-m", "minild.cli"]


def compile_minild() -> None:
    """compile_minild writes minild's bytecode, as `pip install` of a release
    would. This checkout is an editable install, which compiles a module on its
    first import, and not at all where PYTHONDONTWRITEBYTECODE is set (as on
    these machines): every run would compile minild's modules again (~25 ms of
    a hello link's ~125)."""
    import compileall

    import minild
    compileall.compile_dir(str(Path(minild.__file__).parent), quiet=1)


def install_minild(venv: Path) -> list[str]:
    """install_minild installs this checkout into a virtual environment of
    its own, as `pipx install` or `pip install` into a project's venv would
    (not editable; pip compiles the bytecode), and returns its console
    script. Timing the checkout's editable install in the interpreter's own
    site-packages would also time what that installation loads at every
    start (here: an editable-install finder and a sandbox's certifi .pth,
    ~20 ms) which a user's installed minild does not."""
    py = venv / "bin" / "python"
    pip = [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    try:
        if not py.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([*pip, str(ROOT)], check=True)   # and the dependencies, once
        # The checkout as it is now, whatever its version says.
        subprocess.run([*pip, "--force-reinstall", "--no-deps", str(ROOT)], check=True)
    except subprocess.CalledProcessError as e:
        sys.exit(f"run.py: cannot install minild into a venv at {venv} ({e}); on Debian's "
                 "python3, apt-get install python3-venv; or time the installed minild "
                 "with --installed-here")
    return [str(venv / "bin" / "minild")]


def require(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        sys.exit(f"run.py: missing tools: {', '.join(missing)} "
                 "(apt-get install binutils lld mold)")


# --- measuring one process ---------------------------------------------------

class Sample(dict):
    """Sample: one run of one command: wall s, cpu s (user + sys), peak RSS bytes."""


def measure(cmd: list[str], out: Path | None = None, **kw) -> Sample:
    """measure runs cmd once: wall from perf_counter, CPU (user + sys) from wait4,
    peak RSS from /usr/bin/time's %M. Not from wait4: a child's ru_maxrss starts
    at the RSS of the process it was forked from (Python's subprocess vforks from
    this runner, ~40 MiB); time(1) forks from its own ~2 MiB, as the anchors did."""
    if out is not None:
        try:
            out.unlink()
        except FileNotFoundError:
            pass
    fd, rssfile = tempfile.mkstemp(prefix="minild-bench-rss.")
    os.close(fd)
    try:
        t0 = time.perf_counter()
        p = subprocess.Popen([TIME, "-f", "%M", "-o", rssfile, *cmd], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, **kw)
        err = p.stderr.read()
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        p.stderr.close()
        if p.returncode != 0:
            raise SystemExit(f"run.py: {' '.join(cmd[:4])} ... failed ({p.returncode}):\n"
                             f"{err.decode(errors='replace')[-2000:]}")
        peak = int(Path(rssfile).read_text().split()[-1]) * 1024
    finally:
        os.unlink(rssfile)
    return Sample(wall=wall, cpu=ru.ru_utime + ru.ru_stime, peak=peak)


def summary(samples: list[Sample]) -> dict:
    med = lambda k: statistics.median(s[k] for s in samples)  # noqa: E731
    return {"n": len(samples), "wall": med("wall"), "cpu": med("cpu"), "peak": med("peak"),
            "wall_min": min(s["wall"] for s in samples),
            "wall_max": max(s["wall"] for s in samples), "samples": samples}


def parallel(cmds: list[list[str]], jobs: int = JOBS) -> dict:
    """parallel runs commands on `jobs` workers; returns wall and the children's CPU."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(jobs) as pool:
        for p in pool.map(lambda c: subprocess.run(c, capture_output=True), cmds):
            if p.returncode:
                raise SystemExit(f"run.py: {' '.join(map(str, p.args))} failed:\n"
                                 f"{p.stderr.decode(errors='replace')[-2000:]}")
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "files": len(cmds)}


# --- steps -------------------------------------------------------------------

def generate(size: str, work: Path, seed: int, compact: bool, shape: str = "base") -> dict:
    funcs, objects = SIZES[size]
    t0 = time.perf_counter()
    if compact:
        import gen_compact as g
    else:
        import gen as g
    from program import build
    m = g.write(build(funcs, objects, seed, shape=None if compact else SHAPES[shape]),
                str(work), seed)
    m["gen_s"] = time.perf_counter() - t0
    return m


def assemble(work: Path, sources: list[str], dwarf: bool = False) -> tuple[list[Path], dict]:
    as_ = shutil.which("x86_64-linux-gnu-as") or "as"
    objs = [work / (Path(s).stem + ".o") for s in sources]
    g = ["-g"] if dwarf else []
    t = parallel([[as_, *g, "-o", str(o), str(work / s)] for s, o in zip(sources, objs)])
    return objs, t


def elf_counts(elfs: list[Path]) -> dict:
    """elf_counts reads the inputs' section headers: relocations (RELA entries),
    symbols (symtab entries, locals included) and input sections, the units the
    cost is given per."""
    from elftools.elf.elffile import ELFFile
    rel = sym = sec = 0
    for path in elfs:
        with open(path, "rb") as f:
            e = ELFFile(f)
            for i in range(e.num_sections()):
                h = e._get_section_header(i)
                t = h["sh_type"]
                if t in ("SHT_RELA", "SHT_REL"):
                    rel += h["sh_size"] // h["sh_entsize"]
                elif t == "SHT_SYMTAB":
                    sym += h["sh_size"] // h["sh_entsize"] - 1
                elif t in ("SHT_PROGBITS", "SHT_NOBITS") and h["sh_flags"] & 2:  # SHF_ALLOC
                    sec += 1
    return {"relocations": rel, "symbols": sym, "sections": sec}


def import_all(objs: list[Path]) -> tuple[list[Path], dict]:
    """import_all imports every .o in one `minild import` per worker (several
    inputs per run: the interpreter starts twice, not once per object)."""
    out = [o.with_suffix(".obj") for o in objs]
    d = objs[0].parent
    halves = [objs[k::JOBS] for k in range(JOBS) if objs[k::JOBS]]
    t = parallel([minild_cmd() + ["import", "--compact", *map(str, h), "-o", str(d)]
                  for h in halves])
    t["files"] = len(objs)
    return out, t


def check_output(path: Path, manifest: dict) -> None:
    """check_output runs a linked program; it must print the generator's checksum."""
    p = subprocess.run([str(path)], capture_output=True, timeout=120)
    want = (manifest["stdout"].encode(), manifest["status"])
    if (p.stdout, p.returncode) != want:
        raise SystemExit(f"run.py: {path} printed {p.stdout!r} and exited {p.returncode}; "
                         f"expected {want[0]!r} and {want[1]}")


def readelf_clean(path: Path) -> None:
    p = subprocess.run(["readelf", "-W", "-h", "-l", "-S", "-s", str(path)],
                       capture_output=True, text=True)
    if p.returncode or p.stderr:
        raise SystemExit(f"run.py: readelf complained about {path}:\n{p.stderr[-2000:]}")


def parse_bench(stderr: str) -> list[dict]:
    """parse_bench reads the rows of `minild link --bench`'s table."""
    rows = []
    for line in stderr.splitlines():
        raw = line.strip().strip("│").split("│")
        cells = [c.strip() for c in raw]
        if len(cells) == 6:
            try:
                wall, cpu, faults, rss, peak = map(float, cells[1:])
            except ValueError:
                continue
            # A part of a phase (loadlib's read, columns, resolve) is indented.
            depth = (len(raw[0]) - len(raw[0].lstrip()) - 1) // 2
            rows.append({"phase": cells[0], "depth": depth, "wall_ms": wall, "cpu_ms": cpu,
                         "faults": faults, "rss_mib": rss, "peak_mib": peak})
    return rows


def bench_phases(cmd: list[str], runs: int) -> list[dict]:
    """bench_phases runs `minild link --bench` `runs` times; medians per phase."""
    per: dict[str, list[dict]] = {}
    for _ in range(runs):
        p = subprocess.run(cmd + ["--bench"], capture_output=True, text=True,
                           env={**os.environ, "COLUMNS": "120"})
        if p.returncode:
            raise SystemExit(f"run.py: minild --bench failed:\n{p.stderr[-2000:]}")
        for r in parse_bench(p.stderr):
            per.setdefault(r["phase"], []).append(r)
    if not per:
        raise SystemExit("run.py: no phase table in minild's --bench output")
    return [{"phase": ph, "n": len(rs), "depth": rs[0]["depth"],
             **{k: statistics.median(r[k] for r in rs)
                for k in ("wall_ms", "cpu_ms", "faults", "rss_mib", "peak_mib")},
             "wall_ms_min": min(r["wall_ms"] for r in rs),
             "wall_ms_max": max(r["wall_ms"] for r in rs)}
            for ph, rs in per.items()]


def round_robin(cmds: dict[str, tuple[list[str], Path]], runs: int) -> dict[str, dict]:
    """round_robin: one warm-up each, then `runs` rounds running every command once,
    so a noisy moment touches all of them rather than one."""
    for cmd, out in cmds.values():
        measure(cmd, out)
    samples: dict[str, list[Sample]] = {k: [] for k in cmds}
    for _ in range(runs):
        for k, (cmd, out) in cmds.items():
            samples[k].append(measure(cmd, out))
    return {k: summary(v) for k, v in samples.items()}


def paired(a: tuple[list[str], Path], b: tuple[list[str], Path], pairs: int) -> dict:
    """paired alternates A and B (AB, BA, AB, ...) and returns per-pair ratios A/B."""
    wall, cpu, peak = [], [], []
    measure(*a)
    measure(*b)
    for i in range(pairs):
        if i % 2 == 0:
            sa, sb = measure(*a), measure(*b)
        else:
            sb, sa = measure(*b), measure(*a)
        wall.append(sa["wall"] / sb["wall"])
        cpu.append(sa["cpu"] / sb["cpu"])
        peak.append(sa["peak"] / sb["peak"])
    return {"n": pairs, "wall": statistics.median(wall), "wall_min": min(wall),
            "wall_max": max(wall), "cpu": statistics.median(cpu), "peak": statistics.median(peak),
            "wall_ratios": wall}


def profile(objs: list[Path], out: Path, top: int = 15) -> str:
    """profile links in-process under cProfile (after one warm-up link) and
    returns the top functions by cumulative and by own time. The timer is the
    process's CPU time: on a shared machine, time spent waiting for a core is
    noise, not minild's."""
    import cProfile
    import io
    import pstats

    from minild.link import Options, link

    opts = Options(objects=[str(o) for o in objs], output=str(out))
    link(opts)
    pr = cProfile.Profile(time.process_time)
    pr.enable()
    link(opts)
    pr.disable()
    s = io.StringIO()
    st = pstats.Stats(pr, stream=s)
    st.sort_stats("cumulative").print_stats(top)
    st.sort_stats("tottime").print_stats(top)
    return s.getvalue()


# --- report ------------------------------------------------------------------

def ms(x: float) -> str:
    return f"{x * 1e3:,.0f}" if x < 10 else f"{x:,.2f} s"


def mib(x: float) -> str:
    return f"{x / 2**20:,.1f}"


def report(res: dict) -> None:
    inp = res["inputs"]
    console.print(f"[bold]{res['size']} {res.get('shape', '')}[/]: "
                  + (f"{inp['funcs']:,} functions, " if "funcs" in inp else "")
                  + f"{inp['objects']} objects, {inp.get('relocations', 0):,} relocations, "
                  + (f"{inp['symbols']:,} symbols, " if "symbols" in inp else "")
                  + (f".o {mib(inp['o_bytes'])} MiB, " if "o_bytes" in inp else "")
                  + f"compact {mib(inp['obj_bytes'])} MiB, output {mib(res['output_bytes'])} MiB"
                  + (f"; every output printed {inp['stdout'].strip()}" if "stdout" in inp else ""))
    if "linkers" in res:
        t = Table(title=f"links, {res['size']} (medians, n={res['runs']}, after a warm-up)")
        for c in ("linker", "wall ms", "cpu ms", "peak MiB", "wall min-max ms"):
            t.add_column(c, justify="left" if c == "linker" else "right")
        for k, s in res["linkers"].items():
            t.add_row(k, ms(s["wall"]), ms(s["cpu"]), mib(s["peak"]),
                      f"{ms(s['wall_min'])}-{ms(s['wall_max'])}")
        console.print(t)
    if "paired" in res:
        t = Table(title="paired, alternating runs (median of per-pair ratios)")
        for c in ("pair", "n", "wall ratio", "min-max", "cpu ratio", "peak ratio"):
            t.add_column(c, justify="left" if c == "pair" else "right")
        for k, p in res["paired"].items():
            t.add_row(k, str(p["n"]), f"{p['wall']:.2f}", f"{p['wall_min']:.2f}-{p['wall_max']:.2f}",
                      f"{p['cpu']:.2f}", f"{p['peak']:.2f}")
        console.print(t)
    if "variants" in res:
        t = Table(title="minild variants (outputs byte-identical: "
                  f"{res['variants_identical']})")
        for c in ("variant", "wall ms", "cpu ms", "peak MiB"):
            t.add_column(c, justify="left" if c == "variant" else "right")
        for k, s in res["variants"].items():
            t.add_row(k, ms(s["wall"]), ms(s["cpu"]), mib(s["peak"]))
        console.print(t)
    t = Table(title=f"minild link --bench (medians of {res['phases'][0]['n']} runs)")
    for c in ("phase", "wall ms", "cpu ms", "faults", "rss MiB", "peak MiB"):
        t.add_column(c, justify="left" if c == "phase" else "right")
    for r in res["phases"]:
        t.add_row("  " * r.get("depth", 0) + r["phase"], f"{r['wall_ms']:.1f}",
                  f"{r['cpu_ms']:.1f}", f"{r.get('faults', 0):.0f}", f"{r['rss_mib']:.1f}",
                  f"{r['peak_mib']:.1f}")
    console.print(t)
    steps = res["steps"]
    if steps:
        console.print("steps: " + ", ".join(
            f"{k} {v['wall']:.1f} s wall / {v['cpu']:.1f} s cpu"
            + (f" ({v['files']} files)" if "files" in v else "") for k, v in steps.items()))


def prepare(a, size: str, shape: str) -> tuple[dict, list[Path], list[Path], Path, dict]:
    """prepare makes (or, with --reuse, finds) one program's inputs: the
    generator's sources assembled into .o files and imported once. Returns the
    manifest, the .o files, the minild objects, the outputs' directory and the
    timed steps."""
    tag = (size + ("" if shape == "base" else f"-{shape}")
           + ("-compact" if a.compact_only else ""))
    work = a.work or a.root / tag
    outs = a.outputs or (Path("/dev/shm") / f"minild-bench-{tag}" if Path("/dev/shm").is_dir()
                         else work / "out")
    manifest = work / "manifest.json"
    steps: dict = {}
    reuse = a.reuse and manifest.exists() and json.loads(manifest.read_text())["seed"] == a.seed
    if not reuse:
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
    outs.mkdir(parents=True, exist_ok=True)
    if reuse:
        console.print(f"reusing the inputs in {work}")
        m = json.loads(manifest.read_text())
        srcs = m["inputs"] if a.compact_only else m["sources"]
        objs = [work / (Path(n).stem + ".obj") for n in srcs]
        elfs = [work / (Path(n).stem + ".o") for n in srcs]
    else:
        console.print(f"generating {tag} in {work} ...")
        m = generate(size, work, a.seed, a.compact_only, shape)
        steps["generate"] = {"wall": m["gen_s"], "cpu": m["gen_s"]}
        if a.compact_only:
            objs, elfs = [work / n for n in m["inputs"]], []
        else:
            console.print("assembling ...")
            elfs, steps["assemble"] = assemble(work, m["sources"], m.get("dwarf", False))
            m.update(elf_counts(elfs))
            console.print("importing with minild import --compact ...")
            objs, steps["import"] = import_all(elfs)
        manifest.write_text(json.dumps(m, indent=1))
    if not a.compact_only:
        m["o_bytes"] = sum(o.stat().st_size for o in elfs)
    m["obj_bytes"] = sum(o.stat().st_size for o in objs)
    m["size"], m["shape_name"] = size, shape
    return m, elfs, objs, outs, steps


def prepare_user(a) -> tuple[dict, list[Path], list[Path], Path, dict]:
    """prepare_user takes the user's directory of .o files (--objects): counts
    them and imports them once into the work directory."""
    src = a.objects.resolve()
    elfs = sorted(p for p in src.glob("*.o") if p.is_file())
    if not elfs:
        sys.exit(f"run.py: no .o files in {src}")
    work = a.work or a.root / f"user-{src.name}"
    outs = a.outputs or (Path("/dev/shm") / f"minild-bench-user-{src.name}"
                         if Path("/dev/shm").is_dir() else work / "out")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    outs.mkdir(parents=True, exist_ok=True)
    m = {"shape_name": f"{src}", "size": "user", "objects": len(elfs), **elf_counts(elfs),
         "o_bytes": sum(o.stat().st_size for o in elfs)}
    console.print(f"importing {len(elfs)} objects from {src} into {work} ...")
    steps: dict = {}
    half = [elfs[k::JOBS] for k in range(JOBS) if elfs[k::JOBS]]
    steps["import"] = parallel([minild_cmd() + ["import", "--compact", *map(str, h), "-o",
                                                str(work)] for h in half])
    objs = [work / (o.stem + ".obj") for o in elfs]
    if len(set(objs)) != len(objs):
        sys.exit("run.py: two .o files share a stem; give the objects distinct names")
    m["obj_bytes"] = sum(o.stat().st_size for o in objs)
    return m, elfs, objs, outs, steps


def run_output(path: Path) -> tuple[bytes, int]:
    p = subprocess.run([str(path)], capture_output=True, timeout=120)
    return p.stdout, p.returncode


def measure_program(a, m: dict, elfs: list[Path], objs: list[Path], outs: Path, minild: list[str],
                    entry: str = "_start", variants: bool = True) -> dict:
    """measure_program links one program with every linker, checks every
    output, and times them: round-robin medians, paired ratios against lld and
    ld.bfd, minild's variants (byte-identical) and minild's phases."""
    res: dict = {"inputs": m, "runs": a.runs, "pairs": a.pairs, "minild": minild[0]}
    flags = ["-static", "-nostdlib", "-e", entry]
    cmds: dict[str, tuple[list[str], Path]] = {}
    if elfs:
        for name, pre in SYSTEM_LINKERS.items():
            o = outs / f"out.{name}"
            cmds[name] = ([*pre, *flags, "-o", str(o), *map(str, elfs)], o)
    mo = outs / "out.minild"
    minild_link = [*minild, "link", *map(str, objs), *(["-e", entry] if entry != "_start" else [])]
    cmds["minild"] = ([*minild_link, "-o", str(mo)], mo)

    console.print("linking once with each linker and checking every output ...")
    for name, (cmd, o) in cmds.items():
        measure(cmd, o)
        if "stdout" in m:
            check_output(o, m)
    readelf_clean(mo)
    if getattr(a, "run", False):
        want = run_output(cmds["ld.bfd"][1])
        for name, (_, o) in cmds.items():
            if run_output(o) != want:
                raise SystemExit(f"run.py: {name}'s output ran differently from ld.bfd's")
        res["ran"] = {"stdout_bytes": len(want[0]), "status": want[1]}
    res["output_bytes"] = mo.stat().st_size

    console.print(f"timing ({a.runs} rounds) ...")
    res["linkers"] = round_robin(cmds, a.runs)
    if elfs:
        console.print(f"paired runs ({a.pairs} pairs each) ...")
        res["paired"] = {"minild / ld.lld": paired(cmds["minild"], cmds["ld.lld"], a.pairs),
                         "minild / ld.bfd": paired(cmds["minild"], cmds["ld.bfd"], a.pairs)}
    if variants:
        console.print("minild -j1 / -j2 / --no-mmap ...")
        vs = {}
        for name, fl in (("-j1", ["-j1"]), ("-j2", ["-j2"]), ("-j1 --no-mmap", ["-j1", "--no-mmap"])):
            o = outs / f"out.minild{fl[0]}{len(fl)}"
            vs[name] = ([*minild_link, *fl, "-o", str(o)], o)
        res["variants"] = round_robin(vs, a.runs)
        files = [o for _, o in vs.values()]
    else:
        # The sweep checks determinism once per program, untimed.
        files = []
        for fl in (["-j1"], ["-j2", "--no-mmap"]):
            o = outs / f"out.minild{fl[0]}"
            measure([*minild_link, *fl, "-o", str(o)], o)
            files.append(o)
    files.append(mo)
    res["variants_identical"] = all(filecmp.cmp(files[0], f, shallow=False) for f in files[1:])
    if not res["variants_identical"]:
        raise SystemExit("run.py: minild outputs differ between -j1, -j2, --no-mmap")
    if "stdout" in m:
        for f in files:
            check_output(f, m)

    console.print("minild link --bench ...")
    res["phases"] = bench_phases([*minild_link, "-o", str(mo)], a.runs)
    if a.profile:
        res["profile"] = profile(objs, outs / "out.profile")
        print(res["profile"], flush=True)  # plain: a narrow console would wrap its columns
    for group in ("linkers", "variants"):
        for v in res.get(group, {}).values():
            del v["samples"]
    return res


def sweep_row(res: dict) -> dict:
    """sweep_row is one program's line in the sweep table."""
    m, L = res["inputs"], res["linkers"]
    t = L["minild"]["wall"]
    row = {"shape": m["shape_name"], "size": m["size"], "relocations": m.get("relocations"),
           "symbols": m.get("symbols"), "sections": m.get("sections"),
           "objects": m.get("objects"), "minild_ms": t * 1e3,
           "ns_per_reloc": t / m["relocations"] * 1e9 if m.get("relocations") else None,
           "ns_per_symbol": t / m["symbols"] * 1e9 if m.get("symbols") else None,
           "peak_mib": L["minild"]["peak"] / 2**20}
    # link() alone (--bench's total, no interpreter start-up): the part that
    # must grow linearly with the input.
    total = next((r["wall_ms"] for r in res["phases"] if r["phase"] == "total"), None)
    row["link_ms"] = total
    if total and m.get("relocations"):
        row["link_ns_per_reloc"] = total / m["relocations"] * 1e6
        row["link_ns_per_symbol"] = total / m["symbols"] * 1e6
    for k in ("ld.lld", "ld.bfd", "ld.gold", "mold"):
        if k in L:
            row[f"{k}_ms"] = L[k]["wall"] * 1e3
    if "ld.lld" in L:
        row["peak_vs_lld"] = L["minild"]["peak"] / L["ld.lld"]["peak"]
    for k, v in res.get("paired", {}).items():
        row[k] = v["wall"]
        row[k + " range"] = (v["wall_min"], v["wall_max"])
    top = [r for r in res["phases"] if r.get("depth", 0) <= 1 and r["phase"] not in ("total",)]
    row["phases"] = {r["phase"]: r["wall_ms"] for r in res["phases"]}
    row["slowest_phase"] = max(top, key=lambda r: r["wall_ms"])["phase"] if top else ""
    return row


SWEEP_COLUMNS = ("shape", "size", "relocs", "symbols", "minild ms", "lld ms", "bfd ms",
                 "÷ lld", "÷ bfd", "peak ÷ lld", "link() ms", "ns/reloc", "ns/sym",
                 "× vs smaller", "slowest phase")


def sweep_cells(rows: list[dict]) -> list[list[str]]:
    """sweep_cells are the sweep table's cells. ns/reloc and ns/sym are link()'s
    own time (no interpreter start-up) per input relocation and symbol; "× vs
    smaller" is the ns/reloc ratio to the same shape's next smaller size (1.0 is
    linear growth)."""
    out, prev = [], {}
    for r in rows:
        grow = ""
        p = prev.get(r["shape"])
        if p and p.get("link_ns_per_reloc") and r.get("link_ns_per_reloc"):
            grow = f"{r['link_ns_per_reloc'] / p['link_ns_per_reloc']:.2f}"
        prev[r["shape"]] = r
        f = lambda k, fmt="{:.2f}": fmt.format(r[k]) if r.get(k) is not None else "-"  # noqa: E731
        out.append([r["shape"], r["size"], f("relocations", "{:,}"), f("symbols", "{:,}"),
                    f("minild_ms", "{:,.0f}"), f("ld.lld_ms", "{:,.0f}"), f("ld.bfd_ms", "{:,.0f}"),
                    f("minild / ld.lld"), f("minild / ld.bfd"), f("peak_vs_lld"),
                    f("link_ms", "{:,.0f}"), f("link_ns_per_reloc", "{:,.0f}"),
                    f("link_ns_per_symbol", "{:,.0f}"), grow, r["slowest_phase"]])
    return out


def report_sweep(rows: list[dict]) -> None:
    """report_sweep prints the sweep table, and the same as Markdown (for
    docs/performance.md)."""
    t = Table(title="sweep: every shape (medians; ratios are paired, minild / other)")
    for c in SWEEP_COLUMNS:
        t.add_column(c, justify="left" if c in ("shape", "size", "slowest phase") else "right")
    cells = sweep_cells(rows)
    for c in cells:
        t.add_row(*c)
    Console(highlight=False, width=200).print(t)
    print("| " + " | ".join(SWEEP_COLUMNS) + " |")
    print("|" + "---|" * len(SWEEP_COLUMNS))
    for c in cells:
        print("| " + " | ".join(c) + " |")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=SIZES, default="small")
    ap.add_argument("--shape", choices=SHAPES, default="base",
                    help="how the program is spelled (program.SHAPES)")
    ap.add_argument("--sweep", action="store_true",
                    help="every shape in --shapes at every size in --sizes, one table")
    ap.add_argument("--shapes", default=",".join(SHAPES), help="for --sweep (comma-separated)")
    ap.add_argument("--sizes", default="small,medium,large", help="for --sweep (comma-separated)")
    ap.add_argument("--objects", type=Path, help="time your own directory of x86-64 .o files")
    ap.add_argument("--entry", default="_start", help="the entry symbol (with --objects)")
    ap.add_argument("--run", action="store_true",
                    help="with --objects: run every output; each must behave as ld.bfd's")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per linker (>= 5)")
    ap.add_argument("--pairs", type=int, default=5, help="alternating pairs per ratio (>= 5)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--root", type=Path, default=Path("/tmp/minild-bench"),
                    help="where each program's inputs are kept, in SIZE[-SHAPE] (default "
                         "/tmp/minild-bench)")
    ap.add_argument("--work", type=Path, help="one program's inputs (default ROOT/SIZE[-SHAPE])")
    ap.add_argument("--outputs", type=Path,
                    help="linked outputs (default /dev/shm/minild-bench-..., as the anchors)")
    ap.add_argument("--compact-only", action="store_true",
                    help="minild alone on gen_compact's objects: no as, no other linkers")
    ap.add_argument("--profile", action="store_true",
                    help="also link in-process under cProfile and print the top 15")
    ap.add_argument("--json", type=Path, help="result file (default benchmarks/out/TAG.json)")
    ap.add_argument("--reuse", action="store_true",
                    help="keep the inputs of an earlier run with the same size and seed "
                         "(skips generating, assembling and importing; not timed then)")
    ap.add_argument("--venv", type=Path, default=HERE / "out" / "venv",
                    help="where minild is installed for timing (default benchmarks/out/venv)")
    ap.add_argument("--installed-here", action="store_true",
                    help="time the minild installed beside this interpreter (an editable "
                         "checkout) instead of installing it into --venv")
    a = ap.parse_args(argv)
    if a.runs < 1 or a.pairs < 1:
        ap.error("--runs and --pairs must be >= 1 (5 or more for the report)")
    if a.sweep and (a.objects or a.compact_only or a.work):
        ap.error("--sweep builds its own programs: no --objects, --compact-only or --work")
    require("readelf", TIME)
    if not a.compact_only:
        require("x86_64-linux-gnu-as", *[c[0] for c in SYSTEM_LINKERS.values()])
    if a.installed_here:
        compile_minild()
        minild = minild_cmd()
    else:
        console.print(f"installing this checkout into {a.venv} ...")
        minild = install_minild(a.venv)
    meta = {"time": time.strftime("%Y-%m-%d %H:%M:%S"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "kernel": platform.release(), "loadavg": os.getloadavg()}}

    if a.sweep:
        shapes = [x for x in a.shapes.split(",") if x]
        sizes = [x for x in a.sizes.split(",") if x]
        bad = [x for x in shapes if x not in SHAPES] + [x for x in sizes if x not in SIZES]
        if bad:
            ap.error(f"unknown shape or size: {', '.join(bad)}")
        rows, path = [], a.json or HERE / "out" / "sweep.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        for shape in shapes:
            for size in sizes:
                m, elfs, objs, outs, steps = prepare(a, size, shape)
                res = measure_program(a, m, elfs, objs, outs, minild, variants=False)
                rows.append(sweep_row(res))
                console.print(f"{shape} {size}: minild / lld "
                              f"{rows[-1].get('minild / ld.lld', 0):.2f}, / bfd "
                              f"{rows[-1].get('minild / ld.bfd', 0):.2f}")
                # written as it goes: a sweep takes a while, and a partial one is data
                path.write_text(json.dumps({**meta, "runs": a.runs, "pairs": a.pairs,
                                            "rows": rows}, indent=1))
        report_sweep(rows)
        console.print(f"wrote {path}")
        return

    if a.objects:
        m, elfs, objs, outs, steps = prepare_user(a)
        tag = f"user-{a.objects.resolve().name}"
    else:
        m, elfs, objs, outs, steps = prepare(a, a.size, a.shape)
        tag = (a.size + ("" if a.shape == "base" else f"-{a.shape}")
               + ("-compact" if a.compact_only else ""))
    res = {"size": m["size"], "shape": m["shape_name"], "compact_only": a.compact_only,
           **meta, "steps": steps,
           **measure_program(a, m, elfs, objs, outs, minild, entry=a.entry)}
    report(res)
    if elfs:
        report_sweep([sweep_row(res)])
    path = a.json or HERE / "out" / f"{tag}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=1))
    console.print(f"wrote {path}")


if __name__ == "__main__":
    main()
