"""Exit statuses read right in `systemctl status`: 0, 1, then sysexits.h values only."""

from __future__ import annotations

from sockactd.errors import ExitCode


def test_exit_statuses_avoid_the_lsb_range_systemd_names() -> None:
    codes = ExitCode.members()
    # 2-7 would show as INVALIDARGUMENT, ..., NOPERMISSION, NOTINSTALLED, NOTCONFIGURED
    assert all(code in (0, 1) or 64 <= code <= 78 for code in codes.values()), codes
    assert len(set(codes.values())) == len(codes), "two meanings share one status"


def test_sockactctl_usage_error_is_ex_usage() -> None:
    from sockactd.control.ctl import main

    assert main(["--no-such-flag"]) == ExitCode.USAGE == 64
    assert main(["reload", "--mode", "bogus"]) == ExitCode.USAGE
