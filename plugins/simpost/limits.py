"""Time limits shared by the DAGs, so a task stuck on hostile input frees its worker and pool slot, and
when the housekeeping DAGs run."""
from __future__ import annotations

import os
from datetime import timedelta

#: default for SIMPOST_TASK_TIMEOUT: far above a 1 GB run's minutes, far below "forever"
DEFAULT_TASK_TIMEOUT_S = 3 * 3600


def retry_delay() -> timedelta:
    """Before a task's first retry (SIMPOST_RETRY_DELAY seconds, default 30): a few seconds in
    tests, so a retry after a killed worker is seen without waiting."""
    return timedelta(seconds=float(os.environ.get("SIMPOST_RETRY_DELAY", "30")))


def task_timeout() -> timedelta:
    """Every task's execution_timeout (SIMPOST_TASK_TIMEOUT seconds); the task fails when it passes."""
    raw = os.environ.get("SIMPOST_TASK_TIMEOUT") or str(DEFAULT_TASK_TIMEOUT_S)
    seconds = float(raw)
    if not seconds > 0:
        raise ValueError(f"SIMPOST_TASK_TIMEOUT must be a positive number of seconds, not {raw!r}")
    return timedelta(seconds=seconds)


def housekeeping_schedule(variable: str) -> str | None:
    """The schedule of storage_retention or storage_verify from `variable` (default @daily); `none`
    leaves the DAG to be triggered on request (an outside scheduler, or a test deployment that must
    not clean or repair under its tests)."""
    value = (os.environ.get(variable) or "@daily").strip()
    return None if value.lower() == "none" else value


#: default for SIMPOST_RESTORE_POKE_SECONDS: how often storage_restore asks S3 whether a thaw is done
DEFAULT_RESTORE_POKE_S = 300
#: storage_restore's first wait between pokes; it doubles up to restore_poke_seconds(): a request that
#: joined a restore of a hot copy hears of its end in seconds, a thaw of hours is asked a few times more
FIRST_RESTORE_POKE_S = 20
#: the longest storage_restore waits for S3 to thaw a copy (DEEP_ARCHIVE Bulk: up to 48 h)
THAW_TIMEOUT = timedelta(days=3)


def restore_poke_seconds() -> float:
    """The longest wait between storage_restore's questions (to S3, or whether a joined restore
    ended); its worker is given back in between."""
    return float(os.environ.get("SIMPOST_RESTORE_POKE_SECONDS") or DEFAULT_RESTORE_POKE_S)
