"""Trigger conf values written the way OPS users have them, turned into what the engine expects."""
from __future__ import annotations

import re

_CONFIG_SECTION = re.compile(r"^\[?\s*Config\s+(?P<name>[^\s\]]+)\s*\]?$")


def runconfig_name(runconfig: str | None) -> str | None:
    """The OMNeT++ config name from "Benchmark-04", "Config Benchmark-04" (how OPS stores it) or
    "[Config Benchmark-04]" (the ini section header); None or blank keeps every config."""
    text = (runconfig or "").strip()
    if not text:
        return None
    match = _CONFIG_SECTION.match(text)
    return match.group("name") if match else text
