"""run: the benchmark, minild against ld.bfd, gold, lld and mold, in one command.

    python benchmarks/run.py --size small|medium|large [--runs 5] [--pairs 5]
    python benchmarks/run.py --size large --compact-only --profile   # minild alone

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

from program import SIZES  # noqa: E402

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

def generate(size: str, work: Path, seed: int, compact: bool) -> dict:
    funcs, objects = SIZES[size]
    t0 = time.perf_counter()
    if compact:
        import gen_compact as g
    else:
        import gen as g
    from program import build
    m = g.write(build(funcs, objects, seed), str(work), seed)
    m["gen_s"] = time.perf_counter() - t0
    return m


def assemble(work: Path, sources: list[str]) -> tuple[list[Path], dict]:
    as_ = shutil.which("x86_64-linux-gnu-as") or "as"
    objs = [work / (Path(s).stem + ".o") for s in sources]
    t = parallel([[as_, "-o", str(o), str(work / s)] for s, o in zip(sources, objs)])
    return objs, t


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
    console.print(f"[bold]{res['size']}[/]: {inp['funcs']:,} functions, {inp['objects']} objects, "
                  f"{inp['relocations']:,} relocations, "
                  + (f".o {mib(inp['o_bytes'])} MiB, " if "o_bytes" in inp else "")
                  + f"compact {mib(inp['obj_bytes'])} MiB, output {mib(res['output_bytes'])} MiB; "
                  f"every output printed {inp['stdout'].strip()}")
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


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=SIZES, default="small")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per linker (>= 5)")
    ap.add_argument("--pairs", type=int, default=5, help="alternating pairs per ratio (>= 5)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", type=Path, help="inputs (default /tmp/minild-bench/SIZE)")
    ap.add_argument("--outputs", type=Path,
                    help="linked outputs (default /dev/shm/minild-bench-SIZE, as the anchors)")
    ap.add_argument("--compact-only", action="store_true",
                    help="minild alone on gen_compact's objects: no as, no other linkers")
    ap.add_argument("--profile", action="store_true",
                    help="also link in-process under cProfile and print the top 15")
    ap.add_argument("--json", type=Path, help="result file (default benchmarks/out/SIZE.json)")
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

    tag = a.size + ("-compact" if a.compact_only else "")
    work = a.work or Path("/tmp/minild-bench") / tag
    outs = a.outputs or (Path("/dev/shm") / f"minild-bench-{tag}" if Path("/dev/shm").is_dir()
                         else work / "out")
    manifest = work / "manifest.json"
    reuse = a.reuse and manifest.exists() and json.loads(manifest.read_text())["seed"] == a.seed
    if not reuse:
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
    outs.mkdir(parents=True, exist_ok=True)
    require("readelf", TIME)
    if not a.compact_only:
        require("x86_64-linux-gnu-as", *[c[0] for c in SYSTEM_LINKERS.values()])

    res: dict = {"size": a.size, "compact_only": a.compact_only, "runs": a.runs,
                 "pairs": a.pairs, "time": time.strftime("%Y-%m-%d %H:%M:%S"),
                 "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                             "kernel": platform.release(), "loadavg": os.getloadavg()},
                 "steps": {}}
    if reuse:
        console.print(f"reusing the inputs in {work}")
        m = json.loads(manifest.read_text())
        srcs = m["inputs"] if a.compact_only else m["sources"]
        objs = [work / (Path(n).stem + ".obj") for n in srcs]
        elfs = [work / (Path(n).stem + ".o") for n in srcs]
        if not a.compact_only:
            m["o_bytes"] = sum(o.stat().st_size for o in elfs)
    else:
        console.print(f"generating {a.size} in {work} ...")
        m = generate(a.size, work, a.seed, a.compact_only)
        res["steps"]["generate"] = {"wall": m["gen_s"], "cpu": m["gen_s"]}
        if a.compact_only:
            objs = [work / n for n in m["inputs"]]
        else:
            console.print("assembling ...")
            elfs, res["steps"]["assemble"] = assemble(work, m["sources"])
            m["o_bytes"] = sum(o.stat().st_size for o in elfs)
            console.print("importing with minild import --compact ...")
            objs, res["steps"]["import"] = import_all(elfs)
        manifest.write_text(json.dumps(m, indent=1))
    m["obj_bytes"] = sum(o.stat().st_size for o in objs)
    res["inputs"] = m

    cmds: dict[str, tuple[list[str], Path]] = {}
    if not a.compact_only:
        for name, pre in SYSTEM_LINKERS.items():
            o = outs / f"out.{name}"
            cmds[name] = ([*pre, *LINK_FLAGS, "-o", str(o), *map(str, elfs)], o)
    mo = outs / "out.minild"
    if a.installed_here:
        compile_minild()
        minild = minild_cmd()
    else:
        console.print(f"installing this checkout into {a.venv} ...")
        minild = install_minild(a.venv)
    res["minild"] = minild[0]
    minild_link = [*minild, "link", *map(str, objs)]
    cmds["minild"] = ([*minild_link, "-o", str(mo)], mo)

    console.print("linking once with each linker and running every output ...")
    for name, (cmd, o) in cmds.items():
        measure(cmd, o)
        check_output(o, m)
    readelf_clean(mo)
    res["output_bytes"] = mo.stat().st_size

    console.print(f"timing ({a.runs} rounds) ...")
    res["linkers"] = round_robin(cmds, a.runs)
    if not a.compact_only:
        console.print(f"paired runs ({a.pairs} pairs each) ...")
        res["paired"] = {"minild / ld.lld": paired(cmds["minild"], cmds["ld.lld"], a.pairs),
                         "minild / ld.bfd": paired(cmds["minild"], cmds["ld.bfd"], a.pairs)}

    console.print("minild -j1 / -j2 / --no-mmap ...")
    variants = {}
    for name, flags in (("-j1", ["-j1"]), ("-j2", ["-j2"]), ("-j1 --no-mmap", ["-j1", "--no-mmap"])):
        o = outs / f"out.minild{flags[0]}{len(flags)}"
        variants[name] = ([*minild_link, *flags, "-o", str(o)], o)
    res["variants"] = round_robin(variants, a.runs)
    files = [o for _, o in variants.values()]
    res["variants_identical"] = all(filecmp.cmp(files[0], f, shallow=False) for f in files[1:])
    if not res["variants_identical"]:
        raise SystemExit(f"run.py: minild outputs differ between {list(variants)}")
    for f in files:
        check_output(f, m)

    console.print("minild link --bench ...")
    res["phases"] = bench_phases([*minild_link, "-o", str(mo)], a.runs)
    if a.profile:
        res["profile"] = profile(objs, outs / "out.profile")
        print(res["profile"], flush=True)  # plain: a narrow console would wrap its columns

    for s in res.get("linkers", {}).values():
        del s["samples"]
    for s in res.get("variants", {}).values():
        del s["samples"]
    report(res)
    path = a.json or HERE / "out" / f"{tag}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=1))
    console.print(f"wrote {path}")


if __name__ == "__main__":
    main()
