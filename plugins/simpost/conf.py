"""Trigger conf values written the way OPS users have them, turned into what the engine expects."""
from __future__ import annotations

import re
from collections.abc import Mapping

_CONFIG_SECTION = re.compile(r"^\[?\s*Config\s+(?P<name>[^\s\]]+)\s*\]?$")


def runconfig_name(runconfig: str | None) -> str | None:
    """The OMNeT++ config name from "Benchmark-04", "Config Benchmark-04" (how OPS stores it) or
    "[Config Benchmark-04]" (the ini section header); None or blank keeps every config."""
    text = (runconfig or "").strip()
    if not text:
        return None
    match = _CONFIG_SECTION.match(text)
    return match.group("name") if match else text


#: what an optional trigger field left empty means: the trigger form sends null for it (a Param is
#: marked required there unless its type admits null, and only three are required)
DEFAULTS = {"summarizing_precision": 100, "statistics": "all", "callback_events": "final",
            "graphs": "statistic", "run_timeout": 43200}


def with_defaults(params: Mapping) -> dict:
    """The run's conf with every optional field given or defaulted."""
    conf = dict(params)
    conf.update({key: value for key, value in DEFAULTS.items() if conf.get(key) is None})
    return conf
