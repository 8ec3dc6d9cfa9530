"""bench/common.py's pure helpers: the machine's size, wrk output, RESULTS.md sections, tables."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from bench import common
from bench.common import WrkResult, markdown_table, merge_section, parse_wrk

# ---------------------------------------------------------------- the machine's size


@pytest.mark.parametrize(
    ("cpus", "workers", "threads"),
    [
        (1, 1, 1),  # wrk keeps one thread even beside one worker
        (2, 2, 1),  # the 2-CPU VM every RESULTS.md table so far comes from
        (3, 3, 1),
        (4, 4, 2),
        (16, 16, 8),
    ],
)
def test_workers_and_wrk_threads_follow_the_usable_cpus(
    monkeypatch: pytest.MonkeyPatch, cpus: int, workers: int, threads: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(100, 100 + cpus)))
    assert common.usable_cpus() == cpus
    assert (common.machine_workers(), common.wrk_threads()) == (workers, threads)


@pytest.fixture
def one_cpu() -> Iterator[int]:
    """This thread narrowed to one CPU of its mask (as `taskset -c N` would), then restored."""
    mask = os.sched_getaffinity(0)
    if len(mask) < 2:
        pytest.skip("needs two usable CPUs to take one away")
    os.sched_setaffinity(0, {max(mask)})
    try:
        yield max(mask)
    finally:
        os.sched_setaffinity(0, mask)


@pytest.mark.usefixtures("one_cpu")
def test_usable_cpus_reads_the_affinity_mask_not_the_cpu_count() -> None:
    assert os.cpu_count() != 1
    assert (common.usable_cpus(), common.machine_workers(), common.wrk_threads()) == (1, 1, 1)
    assert common._usable_note() == " (1 usable)"  # the machine line says why workers are 1


def test_the_machine_line_says_nothing_when_every_cpu_is_usable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert common._usable_note() == ""


# ---------------------------------------------------------------- command lines


def test_shown_argv_quotes_paths_inside_the_checkout_relative_to_it() -> None:
    argv = [common.PYTHON, str(common.ROOT / "bench" / "profile.py"), "--top", "3"]
    argv += ["/tmp/sockactd-bench-x/c.sock", "hello world"]
    assert common.shown_argv(argv) == (
        ".venv/bin/python bench/profile.py --top 3 /tmp/sockactd-bench-x/c.sock 'hello world'"
    )


# ---------------------------------------------------------------- wrk and reports


WRK_OUTPUT = """\
Running 3s test @ http://127.0.0.1:1/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.59ms    1.19ms  13.64ms   84.67%
  Latency Distribution
     50%  850.00us
     75%    1.91ms
     90%    2.62ms
     99%    1.20s
  23836 requests in 2.02s, 1.77MB read
  Socket errors: connect 1, read 23834, write 0, timeout 2
  Non-2xx or 3xx responses: 7
Requests/sec:  11826.12
Transfer/sec:      0.88MB
"""


def test_parse_wrk() -> None:
    result = parse_wrk(WRK_OUTPUT)
    assert result == WrkResult(11826.12, 0.85, 1200.0, 23836, (1, 23834, 0, 2), 7)
    assert result.errors_text() == "1 connect, 23834 read, 2 timeout, 7 non-2xx"


def test_parse_wrk_without_errors_and_garbage() -> None:
    clean = "\n".join(line for line in WRK_OUTPUT.splitlines() if "errors" not in line)
    assert parse_wrk(clean).errors_text() == "7 non-2xx"
    with pytest.raises(ValueError, match="cannot parse"):
        parse_wrk("wrk: connection refused")


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ("", "<!-- bench:x -->\nnew\n<!-- /bench:x -->\n"),
        ("# T\n", "# T\n\n<!-- bench:x -->\nnew\n<!-- /bench:x -->\n"),
        (
            "# T\n\n<!-- bench:x -->\nold\n<!-- /bench:x -->\n\ntail\n",
            "# T\n\n<!-- bench:x -->\nnew\n<!-- /bench:x -->\n\ntail\n",
        ),
        (
            "<!-- bench:y -->\ny\n<!-- /bench:y -->\n",
            "<!-- bench:y -->\ny\n<!-- /bench:y -->\n\n<!-- bench:x -->\nnew\n<!-- /bench:x -->\n",
        ),
    ],
)
def test_merge_section(document: str, expected: str) -> None:
    assert merge_section(document, "x", "new\n") == expected


def test_merge_section_refuses_an_unclosed_block() -> None:
    with pytest.raises(ValueError, match="no end marker"):
        merge_section("<!-- bench:x -->\nold\n", "x", "new")


def test_markdown_table() -> None:
    assert markdown_table(["a", "b"], [[1, "x"], [2.5, ""]]) == (
        "| a | b |\n|---|---|\n| 1 | x |\n| 2.5 |  |\n"
    )
