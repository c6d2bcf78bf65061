"""The published JSON Schema (docs/object-format.schema.json) accepts every
example and every compact object minild writes, and rejects what the loader
rejects for shape: checked with the jsonschema package, not minild's loader."""

import json

import jsonschema
import pytest

from conftest import EXAMPLES, ROOT
from minild import arch
from minild.encode import encode_compact
from minild.loader import read_object

SCHEMA = json.loads((ROOT / "docs" / "object-format.schema.json").read_text())
EXAMPLE_FILES = sorted(EXAMPLES.rglob("*.obj"))


def validate(doc):
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)


def test_schema_is_valid():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_examples_validate(path):
    validate(json.loads(path.read_text()))


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_compact_encoding_validates(path):
    obj = read_object(str(path))
    validate(json.loads(encode_compact(obj, arch.lookup(obj.arch))))


@pytest.mark.parametrize("mutate", [
    lambda o: o.update(colour="blue"),
    lambda o: o.pop("encoding"),
    lambda o: o.update(version=2),
    lambda o: o["sections"][0].update(kind="code"),
    lambda o: o["sections"][0].update(data="zz"),
    lambda o: o["sections"][0].update(size=4),
    lambda o: o["sections"][0]["relocs"][0].pop("symbol"),
    lambda o: o["symbols"][0].update(binding="strong"),
])
def test_schema_rejects(mutate):
    o = json.loads((EXAMPLES / "hello" / "amd64.obj").read_text())
    mutate(o)
    with pytest.raises(jsonschema.ValidationError):
        validate(o)
