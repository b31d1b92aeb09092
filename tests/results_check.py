"""Checks shared by the tests of what the simulator hears: the result schema and the .sca as written."""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import jsonschema
from simpost.result import SCHEMA_FILE


@cache
def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def validate_result(body: dict) -> dict:
    """The body, after checking it against plugins/simpost/data/result.schema.json (all errors listed)."""
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in _validator().iter_errors(body)]
    assert not errors, "\n".join(errors)
    return body


def sca_scalars(path: Path, module: str) -> dict[str, str]:
    """name -> value text of the `scalar <module> <name> <value>` lines of a text .sca."""
    out = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] == "scalar" and parts[1] == module:
            out[parts[2]] = parts[3]
    return out
