"""wasi: run a WASI command module under wasmtime (the `wasmtime` pip package), as
`wasmtime MODULE` would: its _start, stdout and stderr captured to files, the exit
status proc_exit's code (0 when _start returns), a trap an AssertionError."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest


def run_wasi(path) -> tuple[bytes, bytes, int]:
    """run_wasi returns (stdout, stderr, exit status) of the module at path."""
    try:
        import wasmtime
    except ImportError:
        pytest.fail("the wasmtime package is not installed (pip install wasmtime; "
                    "scripts/test.sh installs the test extras)")
    engine = wasmtime.Engine()
    module = wasmtime.Module.from_file(engine, str(path))
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    store = wasmtime.Store(engine)
    with tempfile.TemporaryDirectory() as d:
        out, err = Path(d) / "stdout", Path(d) / "stderr"
        wasi = wasmtime.WasiConfig()
        wasi.argv = [str(path)]
        wasi.stdout_file = str(out)
        wasi.stderr_file = str(err)
        store.set_wasi(wasi)
        code = 0
        try:
            linker.instantiate(store, module).exports(store)["_start"](store)
        except wasmtime.ExitTrap as e:
            code = e.code
        except wasmtime.Trap as e:
            raise AssertionError(f"{path}: trap under wasmtime: {e}")
        return out.read_bytes(), err.read_bytes(), code
