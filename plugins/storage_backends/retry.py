"""The one retry loop of the package: rate limits, 5xx answers and network errors back off here."""
from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

import requests

log = logging.getLogger(__name__)
T = TypeVar("T")

# Longest wait we accept from a service's Retry-After before giving up on the call.
MAX_RETRY_AFTER = 900.0


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
    """How often and how long to retry; `sleep` is injectable so tests observe the waits."""

    attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0
    sleep: Callable[[float], None] = time.sleep

    def delay(self, attempt: int, hint: float | None) -> float:
        if hint is not None:
            return min(hint, MAX_RETRY_AFTER)
        # Exponential backoff with jitter, so parallel workers do not retry in lockstep.
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return ceiling * random.uniform(0.5, 1.0)

    def run(self, fn: Callable[[], T], *, what: str, classify: Classifier = http_status) -> T:
        """Call `fn` until it succeeds, a failure is not transient, or attempts run out."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn()
            except Exception as exc:
                verdict = classify(exc)
                if verdict is None or attempt >= self.attempts:
                    raise
                wait = self.delay(attempt, verdict.after)
                # Only the exception type: texts of network errors can carry URLs with tokens.
                log.warning(
                    "%s failed (%s); retry %d/%d in %.1f s",
                    what, type(exc).__name__, attempt, self.attempts - 1, wait,
                )
                self.sleep(wait)


DEFAULT_RETRY = RetryPolicy()
