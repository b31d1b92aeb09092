"""The one retry layer of every storage call: rate limits, 5xx answers and network errors back off here.

Built on tenacity. Each call is retried a bounded number of times, and all calls of one operation
(an upload: space check, chunks, commit, share link) share one time budget: once it is spent no new
attempt starts, the error goes up, and Airflow's task retry (the outer layer) takes over.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

import requests
import tenacity

log = logging.getLogger(__name__)
T = TypeVar("T")

#: longest wait we accept from a service's Retry-After before giving up on the call
MAX_RETRY_AFTER = 900.0


def default_budget() -> float:
    """Seconds one upload may keep retrying, counted from its start (SIMPOST_UPLOAD_RETRY_BUDGET, read
    when a policy is made: a long-lived process sees the setting of the run it serves)."""
    return float(os.environ.get("SIMPOST_UPLOAD_RETRY_BUDGET", "600"))

_deadline: ContextVar[float | None] = ContextVar("storage_retry_deadline", default=None)


@dataclasses.dataclass(frozen=True)
class Retry:
    """A classifier's verdict that a failure is transient; `after` is the service's hint in seconds."""

    after: float | None = None


Classifier = Callable[[BaseException], "Retry | None"]


def network_error(exc: BaseException) -> Retry | None:
    """Connection refused/reset and timeouts are worth another try."""
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return Retry()
    return None


def http_status(exc: BaseException) -> Retry | None:
    """429 and 5xx answers from `requests` (raise_for_status), honouring Retry-After."""
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        status = exc.response.status_code
        if status == 429 or status >= 500:
            return Retry(after=parse_retry_after(exc.response.headers.get("Retry-After")))
    return network_error(exc)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (the HTTP-date form is rare for APIs and is ignored)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry; `sleep` and `clock` are injectable so tests observe the waits."""

    attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0
    budget: float = dataclasses.field(default_factory=default_budget)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def delay(self, attempt: int, hint: float | None) -> float:
        if hint is not None:
            return min(hint, MAX_RETRY_AFTER)
        # Exponential backoff with jitter, so parallel workers do not retry in lockstep.
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return ceiling * random.uniform(0.5, 1.0)

    @contextmanager
    def operation(self) -> Iterator[None]:
        """Every call inside shares one budget (an outer operation's budget, if one is running)."""
        token = _deadline.set(self.clock() + self.budget) if _deadline.get() is None else None
        try:
            yield
        finally:
            if token is not None:
                _deadline.reset(token)

    def run(self, fn: Callable[[], T], *, what: str, classify: Classifier = http_status) -> T:
        """Call `fn` until it succeeds, a failure is not transient, or attempts or budget run out."""
        def wait(state: tenacity.RetryCallState) -> float:
            verdict = classify(state.outcome.exception())
            return self.delay(state.attempt_number, verdict.after if verdict else None)

        def spent(state: tenacity.RetryCallState) -> bool:
            deadline = _deadline.get()
            if state.attempt_number >= self.attempts:
                return True
            if deadline is not None and self.clock() + state.upcoming_sleep > deadline:
                log.warning("%s: retry budget of %.0f s spent; giving up", what, self.budget)
                return True
            return False

        def announce(state: tenacity.RetryCallState) -> None:
            # Only the exception type: texts of network errors can carry URLs with tokens.
            log.warning("%s failed (%s); retry %d/%d in %.1f s", what,
                        type(state.outcome.exception()).__name__, state.attempt_number,
                        self.attempts - 1, state.upcoming_sleep)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(lambda exc: classify(exc) is not None),
            wait=wait, stop=spent, before_sleep=announce, sleep=self.sleep, reraise=True)
        return retrying(fn)


DEFAULT_RETRY = RetryPolicy()
