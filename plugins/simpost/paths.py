"""Where a run's inputs come from and where its work dir lives (env-configured, same on every worker)."""
from __future__ import annotations

import os
import re
from pathlib import Path


class PathError(ValueError):
    """A results_dir the pipeline must refuse; the message says why."""


def results_root() -> Path:
    root = os.environ.get("SIMPOST_RESULTS_ROOT")
    if not root:
        raise PathError("SIMPOST_RESULTS_ROOT is not set: the results root must be configured")
    return Path(root).resolve()


def work_root() -> Path:
    default = Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser() / "simpost-work"
    return Path(os.environ.get("SIMPOST_WORK_DIR") or default).resolve()


def run_work_dir(run_id: str) -> Path:
    """One folder per DAG run; run ids carry ':' and '+', which some filesystems and tools dislike."""
    return work_root() / re.sub(r"[^A-Za-z0-9._-]+", "_", run_id)


def resolve_results_dir(results_dir: str, root: Path | None = None) -> Path:
    """The run's folder, guaranteed to lie inside the results root (also after following symlinks)."""
    root = root or results_root()
    if not results_dir or not results_dir.strip():
        raise PathError("results_dir is empty")
    given = Path(results_dir)
    if ".." in given.parts:
        raise PathError(f"results_dir {results_dir!r} contains '..'; give a folder inside the results root")
    candidate = given if given.is_absolute() else root / given
    real = candidate.resolve()
    if not real.is_relative_to(root):
        raise PathError(f"results_dir {results_dir!r} lies outside the results root {root}")
    if not real.is_dir():
        raise PathError(f"results_dir {results_dir!r} is not a folder under the results root {root}")
    return real
