"""Run Windows amd64 console executables under wine (Debian 12: wine 8.0, packages
wine and wine64), headless.

    p = run_wine(path)           # subprocess.CompletedProcess, stdout/stderr bytes
    p.returncode                 # the ExitProcess code

The wine prefix lives in a persistent directory under /tmp (MINILD_WINEPREFIX, by
default /tmp/minild-wineprefix), created on first use with `wineboot --init`
(about 7 s and 700 MB once; its chatter on stderr is not the program's). A
wineserver started with `-p60` stays up for 60 s after its last client, so a test
session pays the wine start-up (~0.5 s) once and each run then takes ~0.02 s; it
ends by itself.

Environment of each run: WINEPREFIX, WINEDEBUG=-all (no fixme:/err: lines: a
correct program's stderr is empty), WINEDLLOVERRIDES="mscoree,mshtml=" (no Mono /
Gecko install prompts), no DISPLAY (console programs need no X server).

Debian's wine64 runs only 64-bit PE (PE32 fails with exit status 0 and no output:
wine32:i386 is not installable here), so x86 and arm64 PE get the unicorn runner
(tests/emu/pe.py) and the static checks of tests/pecheck.py instead.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

PREFIX = Path(os.environ.get("MINILD_WINEPREFIX", "/tmp/minild-wineprefix"))
PACKAGES = "wine64 and wine (apt-get install wine64 wine; see scripts/deps/pe.apt)"

_server_started = False


def _tool(names) -> str:
    for n in names:
        p = shutil.which(n) or (n if os.path.isabs(n) and os.access(n, os.X_OK) else None)
        if p:
            return p
    pytest.fail(f"wine is not installed: none of {', '.join(names)} found; install the Debian "
                f"packages {PACKAGES}")


def wine_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(WINEPREFIX=str(PREFIX), WINEDEBUG="-all", WINEDLLOVERRIDES="mscoree,mshtml=")
    return env


def _ensure_prefix(wine: str, env: dict) -> None:
    """Create the prefix once (under a lock, for parallel test workers)."""
    marker = PREFIX / ".minild-ready"
    if marker.exists():
        return
    PREFIX.parent.mkdir(parents=True, exist_ok=True)
    with open(str(PREFIX) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return
        p = subprocess.run([wine, "wineboot", "--init"], env=env, capture_output=True, timeout=300)
        if p.returncode != 0 or not (PREFIX / "system.reg").exists():
            pytest.fail(f"wineboot --init in {PREFIX} failed ({p.returncode}):\n"
                        f"{p.stderr.decode(errors='replace')[-2000:]}")
        # wineboot's own wineserver goes away a few seconds after it; wait for it, so
        # that the persistent one below is the one serving the prefix
        server = shutil.which("wineserver")
        if server:
            subprocess.run([server, "-w"], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        marker.write_text("created by tests/wine.py\n")


def _start_server(env: dict) -> None:
    """A wineserver that outlives single runs (-p60: 60 s after the last client)."""
    global _server_started
    if _server_started:
        return
    _server_started = True
    server = shutil.which("wineserver")
    if server is None:
        return  # wine starts its own per run: slower, same results
    # forks into the background and returns; when one already serves the prefix it
    # says so and exits, and that one is used
    # (its output goes nowhere: the daemon would hold a pipe open forever)
    subprocess.run([server, "-p60"], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, start_new_session=True, timeout=60)


def run_wine(path, *args, timeout=60) -> subprocess.CompletedProcess:
    """Run `wine PATH ARGS...`; stdout and stderr are bytes; returncode is the
    program's ExitProcess code (wine exits 1 itself for "Bad EXE format")."""
    wine = _tool(["wine", "wine64", "/usr/lib/wine/wine64"])
    env = wine_env()
    _ensure_prefix(wine, env)
    _start_server(env)
    # stdout and stderr go to files, not pipes: wine's helper processes (services.exe,
    # winedevice.exe, ...) inherit them and outlive the program while the wineserver
    # persists, so reading a pipe to its end would wait for them
    cmd = [wine, str(path), *map(str, args)]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                           timeout=timeout)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(cmd, p.returncode, out.read(), err.read())
