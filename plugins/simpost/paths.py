"""Where a run's inputs come from and where its work dir lives (env-configured, same on every worker)."""
from __future__ import annotations

import os
import re
from pathlib import Path


NAME_MAX, PATH_MAX = 255, 4096  # Linux's limits, in bytes


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
    _check_name(results_dir)
    given = Path(results_dir)
    if ".." in given.parts:
        raise PathError(f"results_dir {results_dir!r} contains '..'; give a folder inside the results root")
    candidate = given if given.is_absolute() else root / given
    try:
        real = candidate.resolve()
        if not real.is_relative_to(root):
            raise PathError(f"results_dir {results_dir!r} lies outside the results root {root}")
        if not real.is_dir():
            raise PathError(f"results_dir {results_dir!r} is not a folder under the results root {root}")
    except OSError as err:  # a loop of links, a name the filesystem refuses: bad input, not bad luck
        raise PathError(f"results_dir {results_dir!r} cannot be resolved: {err.strerror}") from None
    return real


def _check_name(results_dir: str) -> None:
    """Names no filesystem holds are refused here, before the OS raises errors that look transient."""
    if any(ord(c) < 32 or ord(c) == 127 for c in results_dir):
        raise PathError(f"results_dir {results_dir!r} contains a control character (NUL, newline, ...)")
    try:
        encoded = results_dir.encode("utf-8")
    except UnicodeEncodeError:
        raise PathError(f"results_dir {results_dir!r} is not valid UTF-8") from None
    if len(encoded) > PATH_MAX or any(len(part) > NAME_MAX for part in encoded.split(b"/")):
        raise PathError(f"results_dir is longer than the filesystem allows "
                        f"({NAME_MAX} bytes per name, {PATH_MAX} in all)")
