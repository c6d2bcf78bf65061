"""docs/relocations.md is the table scripts/relocations.py generates from the
arch modules' Howtos: a Howto added, changed or removed without regenerating
it fails here (python3 scripts/relocations.py > docs/relocations.md)."""

import importlib.util

from conftest import ROOT


def test_relocations_doc_is_in_sync():
    spec = importlib.util.spec_from_file_location("relocations", ROOT / "scripts" / "relocations.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    want = mod.render()
    have = (ROOT / "docs" / "relocations.md").read_text()
    assert have == want, ("docs/relocations.md is out of date: run "
                          "python3 scripts/relocations.py > docs/relocations.md")
