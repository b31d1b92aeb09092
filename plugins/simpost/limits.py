"""Time limits shared by both DAGs, so a task stuck on hostile input frees its worker and pool slot."""
from __future__ import annotations

import os
from datetime import timedelta

#: default for SIMPOST_TASK_TIMEOUT: far above a 1 GB run's minutes, far below "forever"
DEFAULT_TASK_TIMEOUT_S = 3 * 3600


def task_timeout() -> timedelta:
    """Every task's execution_timeout (SIMPOST_TASK_TIMEOUT seconds); the task fails when it passes."""
    raw = os.environ.get("SIMPOST_TASK_TIMEOUT") or str(DEFAULT_TASK_TIMEOUT_S)
    seconds = float(raw)
    if not seconds > 0:
        raise ValueError(f"SIMPOST_TASK_TIMEOUT must be a positive number of seconds, not {raw!r}")
    return timedelta(seconds=seconds)


#: default for SIMPOST_RESTORE_POKE_SECONDS: how often storage_restore asks S3 whether a thaw is done
DEFAULT_RESTORE_POKE_S = 300
#: the longest storage_restore waits for S3 to thaw a copy (DEEP_ARCHIVE Bulk: up to 48 h)
THAW_TIMEOUT = timedelta(days=3)


def restore_poke_seconds() -> float:
    """Seconds between storage_restore's questions to S3; its worker is given back in between."""
    return float(os.environ.get("SIMPOST_RESTORE_POKE_SECONDS") or DEFAULT_RESTORE_POKE_S)
