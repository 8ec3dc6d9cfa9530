"""Exit statuses read right in `systemctl status` (0, 1, then sysexits.h values only), and
README.md names them as the code returns them.

README states statuses in its prose ("A bad setting exits 78 (EX_CONFIG)"); it once said
`sockactctl reload --wait` exits 5 where the code returned 65 (fixed in c1c30ec). The man
pages' EXIT STATUS sections are checked in test_man.py.
"""

from __future__ import annotations

import os
import re

import pytest

from sockactd.errors import ExitCode
from tests.support import ROOT


def test_exit_statuses_avoid_the_lsb_range_systemd_names() -> None:
    codes = ExitCode.members()
    # 2-7 would show as INVALIDARGUMENT, ..., NOPERMISSION, NOTINSTALLED, NOTCONFIGURED
    assert all(code in (0, 1) or 64 <= code <= 78 for code in codes.values()), codes
    assert len(set(codes.values())) == len(codes), "two meanings share one status"


def test_sockactctl_usage_error_is_ex_usage() -> None:
    from sockactd.control.ctl import main

    assert main(["--no-such-flag"]) == ExitCode.USAGE == 64
    assert main(["reload", "--mode", "bogus"]) == ExitCode.USAGE


# ---------------------------------------------------------------- README.md

# Every status README names, by what README says it means: README's words around the
# status ({} where the number stands) and the ExitCode member those words describe.
# Rewording README fails the claim until it is reworded here too, so none drops out unseen.
README_CLAIMS = [
    ("A bad setting exits {}", ExitCode.CONFIG_INVALID),  # sockactd
    ("(up to `reload-mercy`), exit {}", ExitCode.OK),  # sockactd on SIGTERM
    ("`--wait` exits {} when the new generation serves everything", ExitCode.OK),  # sockactctl
    ("{} with the reason when the reload aborted", ExitCode.CONTROL_FAILED),  # said 5 once
    ("it exits {} when something could not be mapped", ExitCode.FAILURE),  # migrate-uwsgi
    ("and {}, writing nothing, when an output file exists", ExitCode.CANT_CREATE),  # migrate
    ("made for the same Python, else exit {}", ExitCode.CONFIG_INVALID),  # sockactd, `home`
]
# A status as README writes one: a number, then maybe its sysexits.h name ("65 (EX_DATAERR)").
_STATUS = r"(?<![\w.])(\d+)(?: \(EX_[A-Z]+\))?"
# Where README states a status whatever the sentence: "exits 78", "exit 0", "65 (EX_DATAERR)".
_SAYS_EXIT = re.compile(r"\bexits?(?: with)?(?: status)? (\d+)\b")
_SYSEXITS = re.compile(r"(?<![\w.])(\d+) \(EX_([A-Z]+)\)")


def readme_text() -> str:
    return " ".join((ROOT / "README.md").read_text().split())  # line breaks read as spaces


def _claim_match(claim: str, text: str) -> re.Match[str] | None:
    return re.search(re.escape(claim).replace(re.escape("{}"), _STATUS), text)


@pytest.mark.parametrize(("claim", "code"), README_CLAIMS, ids=[c for c, _ in README_CLAIMS])
def test_readme_names_the_status_the_code_returns(claim: str, code: int) -> None:
    found = _claim_match(claim, readme_text())
    assert found is not None, f"README.md no longer says {claim!r}: update README_CLAIMS"
    assert int(found[1]) == code, f"README.md: {found[0]!r}; the code returns {code}"


def test_every_status_readme_names_is_an_exit_code_with_a_claim() -> None:
    text = readme_text()
    claimed = {m.start(1) for c, _ in README_CLAIMS if (m := _claim_match(c, text)) is not None}
    named = [(m.start(1), int(m[1]), None) for m in _SAYS_EXIT.finditer(text)]
    named += [(m.start(1), int(m[1]), m[2]) for m in _SYSEXITS.finditer(text)]
    assert len(named) >= len(README_CLAIMS), "the scan no longer finds README's statuses"
    codes = set(ExitCode.members().values())
    assert [status for _, status, _ in named if status not in codes] == []
    # "65 (EX_DATAERR)": the name sysexits.h gives that number (Python's os.EX_*)
    assert [(n, name) for _, n, name in named if name and getattr(os, f"EX_{name}", -1) != n] == []
    unclaimed = [text[at - 30 : at + 10] for at, _, _ in named if at not in claimed]
    assert unclaimed == [], "README names a status no README_CLAIMS entry checks"
