"""Issue 13 item 14: one retry layer per call path, one backoff, and one time budget per upload.

The real dropbox SDK over TLS against the emulator: every attempt is exactly one HTTP request (the
SDK's own retry loops are off), and an upload that keeps failing stops retrying once its budget is
spent, however many attempts each call would still have.
"""
from __future__ import annotations

import logging

import pytest
from emulators.dropbox_api import Fault
from emulators.fixtures import (  # noqa: F401  (fixtures)
    _dropbox_server,
    dropbox_conn_json,
    dropbox_emulator,
    settings_of,
    test_ca,
    write_file,
)

from storage_backends import BackendError, RetryPolicy, open_backend, remote_name

NAME = remote_name("budget", "sim-1", "ab" * 32)


class FakeTime:
    """A clock that moves only when the policy sleeps: budgets are tested without waiting."""

    def __init__(self):
        self.now, self.waits = 1000.0, []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def test_an_upload_stops_retrying_when_its_budget_is_spent(dropbox_emulator, tmp_path, caplog):
    fake = FakeTime()
    policy = RetryPolicy(attempts=1000, base_delay=1, max_delay=60, budget=300, sleep=fake.sleep, clock=fake.clock)
    backend = open_backend(settings_of("dbx", dropbox_conn_json()), retry=policy)
    faults = 100
    for _ in range(faults):
        dropbox_emulator.inject(Fault("files/upload", "server_error", status=503))
    with caplog.at_level(logging.WARNING), pytest.raises(BackendError, match="upload failed: Dropbox answered HTTP 503"):
        backend.upload(str(write_file(tmp_path / "r.zip", 1000)), NAME, 0)
    consumed = faults - len(dropbox_emulator.faults)
    assert consumed == len(fake.waits) + 1  # one request per attempt: no second retry layer below
    assert sum(fake.waits) <= 300 < sum(fake.waits) + 60  # stopped by the budget, not by attempts
    assert all(0.5 <= w <= 60 for w in fake.waits)  # one backoff formula: exponential, jittered, capped
    assert "retry budget of 300 s spent" in caplog.text


def test_calls_of_one_upload_share_the_budget(dropbox_emulator, tmp_path):
    """The space check spends part of the budget; the upload call then has only the rest."""
    fake = FakeTime()
    policy = RetryPolicy(attempts=1000, base_delay=8, max_delay=8, budget=100, sleep=fake.sleep, clock=fake.clock)
    backend = open_backend(settings_of("dbx", dropbox_conn_json()), retry=policy)
    for _ in range(6):
        dropbox_emulator.inject(Fault("users/get_space_usage", "server_error", status=503))
    for _ in range(100):
        dropbox_emulator.inject(Fault("files/upload", "server_error", status=503))
    with pytest.raises(BackendError):
        backend.upload(str(write_file(tmp_path / "r.zip", 1000)), NAME, 0)
    assert sum(fake.waits) <= 100


def test_each_upload_gets_a_fresh_budget(dropbox_emulator, tmp_path):
    fake = FakeTime()
    policy = RetryPolicy(attempts=1000, base_delay=1, max_delay=1, budget=10, sleep=fake.sleep, clock=fake.clock)
    backend = open_backend(settings_of("dbx", dropbox_conn_json()), retry=policy)
    archive = str(write_file(tmp_path / "r.zip", 1000))
    for _ in range(5):
        dropbox_emulator.inject(Fault("files/upload", "server_error", status=503))
    assert backend.upload(archive, NAME, 0).size == 1000  # ~5 s of a 10 s budget
    for _ in range(5):
        dropbox_emulator.inject(Fault("files/upload", "server_error", status=503))
    assert backend.upload(archive, NAME, 0).size == 1000  # would exceed 10 s if the budget carried over
