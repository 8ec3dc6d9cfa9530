"""A worker dies with its master: follow.watch_master, with real processes and a real prctl.

The worker sets PR_SET_PDEATHSIG only after serve()'s first wake-up (ctypes is not on
the cold-start path), so both halves matter: the kernel's signal once it is set, and
the check that catches a master that died before.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import time

import pytest

from sockactd.worker import follow
from sockactd.worker.follow import watch_master

TIMEOUT = 10.0


def _read(fd: int) -> bytes:
    ready, _, _ = select.select([fd], [], [], TIMEOUT)
    return os.read(fd, 16) if ready else b""


def _worker(report: int, ready: int, master_pid: int) -> None:
    """Forked child: write T on `report` when SIGTERM comes; R on `ready` once watching."""
    signal.signal(signal.SIGTERM, lambda *_: (os.write(report, b"T"), os._exit(0)))
    watch_master(master_pid)
    os.write(ready, b"R")
    time.sleep(TIMEOUT)
    os._exit(1)  # no SIGTERM came


def test_worker_gets_sigterm_when_its_master_dies_later() -> None:
    report_r, report_w = os.pipe()
    ready_r, ready_w = os.pipe()
    master = os.fork()
    if master == 0:  # a stand-in master: forks one worker, waits until it watches, dies
        try:
            if os.fork() == 0:
                _worker(report_w, ready_w, os.getppid())
            _read(ready_r)
        finally:
            os._exit(0)
    for fd in (report_w, ready_w, ready_r):
        os.close(fd)
    try:
        assert os.waitpid(master, 0)[1] == 0
        assert _read(report_r) == b"T"  # the kernel's parent-death signal
    finally:
        os.close(report_r)


def test_worker_stops_at_once_when_its_master_died_before() -> None:
    report_r, report_w = os.pipe()
    ready_r, ready_w = os.pipe()
    worker = os.fork()
    if worker == 0:
        _worker(report_w, ready_w, master_pid=-1)  # not our parent: the master is gone
    for fd in (report_w, ready_w, ready_r):
        os.close(fd)
    try:
        assert _read(report_r) == b"T"  # the stop a parent-death signal would have brought
        assert os.waitpid(worker, 0)[1] == 0
    finally:
        os.close(report_r)


def test_a_worker_that_cannot_set_the_signal_keeps_serving_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(sig: int) -> None:
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(follow, "set_parent_death_signal", refuse)
    with caplog.at_level(logging.WARNING):
        follow.watch_master(os.getppid())  # returns: the worker goes on serving
    assert "cannot follow its master's death: [Errno 1] Operation not permitted" in caplog.text
