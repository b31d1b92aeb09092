"""collect: bring a run's result files into its work dir, so later stages never touch the simulator's folder."""
from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

from omnetpp_results import find_inputs, sha256_file

from simpost.paths import PathError, resolve_results_dir, results_root

def _place(src: Path, dst: Path) -> str:
    """Hard-link when possible (instant, keeps the mtime the .vci fingerprint needs); else copy with mtime."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
        return "linked"
    except OSError:
        shutil.copy2(src, dst)
        return "copied"


def collect(results_dir: str, input_dir: Path, log=print) -> dict:
    """Copy the run's .vec/.vci/.sca/.ini/Cmdenv logs into input_dir; returns a small JSON-able record."""
    root = results_root()
    source = resolve_results_dir(results_dir, root)
    inputs = find_inputs(source)
    files = []
    found = [getattr(inputs, f.name) for f in dataclasses.fields(inputs)]  # every kind the engine reads
    for path in sorted({p for kind in found if isinstance(kind, list) for p in kind}):
        real = path.resolve()
        if not real.is_relative_to(root):
            raise PathError(f"{path.relative_to(source)} is a link leading outside the results root")
        relative = path.relative_to(source)
        how = _place(real, input_dir / relative)
        size = real.stat().st_size
        files.append({"name": str(relative), "size": size, "sha256": sha256_file(real)})
        log(f"collect: {how} {relative} ({size} bytes)")
    return {
        "source": str(source),
        "input_dir": str(input_dir),
        "files": files,
        "total_bytes": sum(f["size"] for f in files),
    }
