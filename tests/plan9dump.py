"""plan9dump: an independent oracle for plan 9 a.out files.

minild's plan 9 output is checked by a reader minild did not write: Go's standard
library package debug/plan9obj, driven by the small program in tests/go/plan9dump.
`plan9dump(path)` returns what that package sees as a dict:

    {"magic", "bss", "entry", "ptrsize", "loadaddress", "hdrsize",   # plan9obj.FileHeader
     "header":   {"magic", "text", "data", "bss", "syms", "entry", "spsz", "pcsz"},
     "sections": [{"name", "size", "offset"}, ...],                  # text data syms spsz pcsz
     "symbols":  [{"name", "type", "value"}, ...]}                   # type: one char, "T", "d", ...

The Go program is built once per test session, into a temporary directory, with
GOCACHE and GOPATH there too, offline (GOPROXY=off: the module has no dependencies).
Go comes from Debian's golang-go (scripts/deps/go.apt); without it the tests fail,
they never skip.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

GO_MODULE = Path(__file__).resolve().parent / "go"

_workdir: Path | None = None
_built: dict[str, Path] = {}    # Go oracle name -> its binary, built this session


def workdir() -> Path:
    """workdir is this session's temporary directory for Go: its cache, GOPATH, binaries."""
    global _workdir
    if _workdir is None:
        _workdir = Path(tempfile.mkdtemp(prefix="minild-go-"))
        atexit.register(shutil.rmtree, _workdir, ignore_errors=True)
    return _workdir


def go_binary() -> str:
    """go_binary is the path of the go command; without one the calling test fails."""
    go = shutil.which("go")
    if go is None:
        pytest.fail("the go command is not installed: the plan 9 a.out oracle needs Go's "
                    "debug/plan9obj; install Debian's golang-go (apt-get install -y golang-go, "
                    "listed in scripts/deps/go.apt)", pytrace=False)
    return go


def go_env(**extra: str) -> dict[str, str]:
    """go_env is an environment for the go command that stays offline and inside workdir()."""
    wd = workdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GO") and k not in ("CGO_ENABLED",)}
    env.update(
        GOCACHE=str(wd / "cache"),
        GOPATH=str(wd / "gopath"),
        GOMODCACHE=str(wd / "gopath" / "pkg" / "mod"),
        GOTOOLCHAIN="local",
        GOPROXY="off",
        GOFLAGS="",
        GO111MODULE="on",
        GOENV="off",
        CGO_ENABLED="0",
    )
    env.update(extra)
    return env


def go_run(*args: str, cwd: Path, env: dict[str, str] | None = None,
           timeout: float = 600) -> subprocess.CompletedProcess:
    """go_run runs `go ARGS` in cwd and fails the test with Go's output if it fails."""
    p = subprocess.run([go_binary(), *args], cwd=cwd, env=env or go_env(),
                       capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError(f"go {' '.join(args)} (in {cwd}) failed ({p.returncode}):\n"
                             f"{p.stdout}{p.stderr}")
    return p


def go_oracle(name: str) -> Path:
    """go_oracle builds tests/go/NAME (plan9dump, machodump) for this machine,
    once per session, and returns the binary."""
    if name not in _built:
        out = workdir() / "bin" / name
        go_run("build", "-trimpath", "-o", str(out), f"./{name}", cwd=GO_MODULE)
        _built[name] = out
    return _built[name]


def oracle_run(name: str, path, *flags: str) -> subprocess.CompletedProcess:
    """oracle_run runs Go oracle NAME on path and returns the finished process,
    whatever its status."""
    return subprocess.run([str(go_oracle(name)), *flags, str(path)],
                          capture_output=True, text=True, timeout=120)


def oracle_json(name: str, path, *flags: str):
    """oracle_json runs Go oracle NAME on path and returns what it printed,
    decoded; AssertionError, with Go's message, when it fails."""
    p = oracle_run(name, path, *flags)
    if p.returncode != 0:
        raise AssertionError(f"{name} {path} failed ({p.returncode}):\n{p.stderr}{p.stdout}")
    return json.loads(p.stdout)


def plan9dump_binary() -> Path:
    return go_oracle("plan9dump")


def plan9dump_run(path, *flags: str) -> subprocess.CompletedProcess:
    """plan9dump_run runs the oracle on path and returns the finished process, whatever its status."""
    return oracle_run("plan9dump", path, *flags)


def plan9dump(path, raw: bool = False) -> dict:
    """plan9dump parses the plan 9 a.out at path with Go's debug/plan9obj.

    It returns the dict described in this module's docstring (only its "header"
    when raw is true) and raises AssertionError, with Go's message, when the
    file cannot be read as a plan 9 a.out."""
    return oracle_json("plan9dump", path, *(["-raw"] if raw else []))
