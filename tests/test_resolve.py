"""Symbol lookups: the forked parallel path gives exactly the serial result,
including when a child fails (its share is then done by the parent)."""

import os

import numpy as np

from minild import link as L


def names_and_table(n=5000):
    table = {f"sym{i}": i * 3 for i in range(0, n, 2)}     # every other name defined
    names = [f"sym{i}" for i in range(n)] + ["nowhere"]
    want = np.array([table.get(x, -1) for x in names], np.int64)
    return table, names, want


def test_parallel_lookup_equals_serial(monkeypatch):
    monkeypatch.setattr(L, "FORK_LOOKUPS", 0)
    table, names, want = names_and_table()
    for jobs in (1, 2, 3, 8):
        assert (L.lookup(table, names, jobs) == want).all(), jobs


def test_failed_child_share_is_redone(monkeypatch):
    monkeypatch.setattr(L, "FORK_LOOKUPS", 0)
    table, names, want = names_and_table()
    parent = os.getpid()

    class Flaky(dict):
        def get(self, key, default=None):
            if os.getpid() != parent:
                raise RuntimeError("child dies")
            return super().get(key, default)

    assert (L.lookup(Flaky(table), names, 3) == want).all()


def test_small_inputs_stay_in_process(monkeypatch):
    calls = []
    monkeypatch.setattr(os, "fork", lambda: calls.append(1) or os.getpid())
    table, names, want = names_and_table(100)
    assert (L.lookup(table, names, 4) == want).all() and calls == []
