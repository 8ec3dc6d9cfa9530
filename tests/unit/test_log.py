"""log.py: line format on a terminal and in the journal, levels, role and generation."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator

import pytest

from sockactd.log import (
    ACCESS_LOGGER,
    get_logger,
    set_generation,
    set_role,
    setup_logging,
    use_journal_prefix,
)
from sockactd.logfmt import JournalPriorityFormatter
from tests.support import run_python


@pytest.fixture(autouse=True)
def _restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """setup_logging changes the root logger and module state; put both back."""
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    set_role("master")
    set_generation(0)


def _stderr_journal_stream() -> str:
    st = os.fstat(2)
    return f"{st.st_dev}:{st.st_ino}"


def test_plain_line_has_time_level_role_pid_generation(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("info", role="master")
    set_generation(1)
    logging.getLogger("sockactd.test").info("listening on %s", "127.0.0.1:8000")
    line = capsys.readouterr().err
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
    rest = f" INFO [master {os.getpid()} g1] listening on 127.0.0.1:8000\n"
    pattern = stamp + re.escape(rest)
    assert re.fullmatch(pattern, line), line


def test_role_and_generation_change_later_lines(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("info", role="master")
    log = logging.getLogger("sockactd.test")
    log.warning("before")
    set_role("worker")
    set_generation(7)
    log.warning("after")
    before, after = capsys.readouterr().err.splitlines()
    assert f"WARNING [master {os.getpid()} g0] before" in before
    assert f"WARNING [worker {os.getpid()} g7] after" in after


LEVELS = [
    ("debug", ["debug", "info", "warning", "error"]),
    ("info", ["info", "warning", "error"]),
    ("warning", ["warning", "error"]),
    ("error", ["error"]),
]


@pytest.mark.parametrize(("level", "shown"), LEVELS)
def test_level_filters(capsys: pytest.CaptureFixture[str], level: str, shown: list[str]) -> None:
    setup_logging(level, role="master")
    log = logging.getLogger("sockactd.test")
    for name in ("debug", "info", "warning", "error"):
        getattr(log, name)(f"message-{name}")
    err = capsys.readouterr().err
    assert [name for name in ("debug", "info", "warning", "error") if f"message-{name}" in err] == (
        shown
    )


def test_setting_up_twice_keeps_one_handler(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("info", role="master")
    setup_logging("info", role="master")
    logging.getLogger("sockactd.test").info("once")
    assert capsys.readouterr().err.count("once") == 1


JOURNAL = [
    (logging.CRITICAL, "<2>CRITICAL"),
    (logging.ERROR, "<3>ERROR"),
    (logging.WARNING, "<4>WARNING"),
    (logging.INFO, "<6>INFO"),
    (logging.DEBUG, "<7>DEBUG"),
]


@pytest.mark.parametrize(("level", "start"), JOURNAL)
def test_journal_lines_carry_the_priority_prefix(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, level: int, start: str
) -> None:
    monkeypatch.setenv("JOURNAL_STREAM", _stderr_journal_stream())
    setup_logging("debug", role="worker")
    logging.getLogger("sockactd.test").log(level, "hello")
    assert capsys.readouterr().err == f"{start} [worker {os.getpid()} g0] hello\n"


def test_every_line_of_a_journal_traceback_is_prefixed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOURNAL_STREAM", _stderr_journal_stream())
    setup_logging("info", role="master")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("sockactd.test").exception("failed")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) > 3
    assert [line for line in lines if not line.startswith("<3>")] == []
    assert lines[-1] == "<3>ValueError: boom"


JOURNAL_STREAMS = [
    ("", False),
    ("0:0", False),
    ("garbage", False),
    (None, True),  # None: the real dev:ino of fd 2
]


@pytest.mark.parametrize(("value", "expected"), JOURNAL_STREAMS)
def test_journal_stream_must_match_fd_2(value: str | None, expected: bool) -> None:
    environ = {"JOURNAL_STREAM": _stderr_journal_stream() if value is None else value}
    assert use_journal_prefix(environ) is expected


def test_inherited_journal_stream_is_not_trusted_when_stderr_is_a_pipe() -> None:
    # The parent's stderr may be the journal; the child's stderr here is a pipe.
    probe = (
        "import logging; from sockactd.log import setup_logging\n"
        "setup_logging('info', role='master'); logging.getLogger('x').info('hi')\n"
    )
    done = run_python(probe, env={"JOURNAL_STREAM": _stderr_journal_stream()})
    assert not done.stderr.startswith("<"), done.stderr
    assert " INFO [master " in done.stderr


def test_formatter_keeps_the_format_it_was_given() -> None:
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "careful", None, None)
    assert JournalPriorityFormatter("%(message)s").format(record) == "<4>careful"


def test_access_lines_go_through_the_same_handler(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("info", role="worker")
    logging.getLogger(ACCESS_LOGGER).info('127.0.0.1 "GET / HTTP/1.1" 200 2 0.001')
    assert (
        f'INFO [worker {os.getpid()} g0] 127.0.0.1 "GET / HTTP/1.1" 200' in capsys.readouterr().err
    )


def test_our_logger_writes_through_the_same_handler(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("info", role="master")
    get_logger("sockactd.test").warning("disk %s", "full")
    get_logger("sockactd.test").debug("hidden")
    err = capsys.readouterr().err
    assert f"WARNING [master {os.getpid()} g0] disk full" in err
    assert "hidden" not in err


def _run_probe(code: str) -> str:
    done = run_python(code)
    return done.stdout + done.stderr


def test_a_record_below_the_level_does_not_import_logging() -> None:
    out = _run_probe(
        "import sys; from sockactd.log import setup_logging, get_logger\n"
        "setup_logging('info', role='master'); get_logger('x').debug('quiet')\n"
        "print('logging' in sys.modules)\n"
    )
    assert out == "False\n"


def test_a_record_at_the_level_imports_and_configures_logging() -> None:
    out = _run_probe(
        "from sockactd.log import setup_logging, get_logger\n"
        "setup_logging('info', role='worker'); get_logger('x').info('first line')\n"
    )
    assert " INFO [worker " in out and out.endswith("] first line\n"), out


def test_an_app_importing_logging_later_finds_it_configured() -> None:
    # The app is imported after setup_logging; its own basicConfig must not add a second handler.
    out = _run_probe(
        "from sockactd.log import setup_logging\n"
        "setup_logging('info', role='worker')\n"
        "import logging; logging.basicConfig(); logging.getLogger('app').info('from the app')\n"
    )
    assert out.count("from the app") == 1 and " INFO [worker " in out, out


def test_a_record_is_written_even_when_logging_cannot_be_imported() -> None:
    """Out of fds, `import logging` fails (it opens files): the line must still come out."""
    probe = (
        "import resource, sys\n"
        "from sockactd.log import get_logger, setup_logging, set_role\n"
        "setup_logging('info', role='worker')\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (3, 3))  # only stdio: no file opens\n"
        "get_logger('x').warning('out of %s', 'fds')\n"
        "print('alive')\n"
    )
    done = run_python(probe)
    assert "logging" not in done.stderr.split("] ", 1)[0]  # no traceback, no crash
    assert re.fullmatch(r"WARNING \[worker \d+ g0\] out of fds\n", done.stderr), done.stderr
    assert done.stdout == "alive\n"
