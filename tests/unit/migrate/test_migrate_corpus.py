"""Real-world uWSGI ini files (tests/data/uwsgi-ini, sources in its README) through the command.

Each file goes through `sockactd migrate-uwsgi FILE --out DIR` as an operator runs
it: it exits 0, or 1 with the options it could not map named (the names are
pinned here, so a change in what is mapped shows up in review), never anything
else and never a traceback. Every source option gets a line in the report; the
TOML is accepted by sockactd's own loader whenever it names one application (no
corpus application is importable here: tests/unit/migrate/test_migrate_convert.py
runs `sockactd --check` on a converted file whose application is); the drop-ins
pass `systemd-analyze verify` next to the shipped units.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from sockactd.config.load import load_config
from sockactd.migrate.ini import read_ini
from tests.support import ROOT, child_environ
from tests.unit.test_units import stage_units, verify

CORPUS = ROOT / "tests" / "data" / "uwsgi-ini"
# file -> what the report names as not mapped ([] means exit status 0)
EXPECTED: dict[str, list[str]] = {
    "balrog-admin.ini": ["http", "mount", "manage-script-name", "check-static", "static-index",
                         "route-uri", "route-if", "route-if-not", "application"],
    "balrog-public.ini": [],
    "ckan-uwsgi.ini": ["application"],
    "debian-default.ini": ["socket", "application"],
    "defaults.ini": ["application"],
    "healthchecks-docker.ini": ["disable-write-exception", "hook-pre-app", "attach-daemon"],
    "healthchecks.ini": ["static-map", "static-gzip-dir", "attach-daemon"],
    "isso-contrib-uwsgi.ini": ["cache2", "spooler", "honour-stdin"],
    "isso-uwsgi.ini": ["cache2", "spooler", "virtualenv"],
    "nautobot-contrib-uwsgi.ini": ["application"],
    "saleor-uwsgi.ini": ["http-socket", "memory-report", "static-map"],
    "searxng-apps-available.ini": ["uid", "gid", "chdir", "env", "virtualenv", "pythonpath",
                                   "socket", "static-map", "static-expires", "static-gzip-all",
                                   "offload-threads"],
    "tiangolo-app-uwsgi.ini": [],
    "tiangolo-uwsgi.ini": ["cheaper", "application"],
    "tutor-openedx-uwsgi.ini": ["static-map", "wsgi-file", "processes", "application"],
    "uwsgi-docs-django-tutorial.ini": ["home"],
    "uwsgi-docs-placeholders.ini": ["chdir", "limit-as", "application"],
    "uwsgi-docs-sections.ini": ["plugin", "application"],
    "uwsgi-else-test.ini": ["socket", "application"],
    "uwsgi-logic.ini": ["socket", "application"],
    "uwsgi-manage-script-name.ini": ["mount", "manage-script-name"],
    "uwsgi-multi.ini": ["socket", "map-socket", "memory-report", "application"],
}  # fmt: skip
FILES = sorted(p.name for p in CORPUS.glob("*.ini"))


def test_the_corpus_is_listed_and_attributed() -> None:
    assert sorted(EXPECTED) == FILES
    readme = (CORPUS / "README.md").read_text()
    assert [name for name in FILES if f"`{name}`" not in readme] == []
    assert len(FILES) >= 15


@pytest.mark.parametrize("name", FILES)
def test_converted(name: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    instance = name.removesuffix(".ini")[:22]  # the longest name an instance's user allows
    argv = [sys.executable, "-m", "sockactd", "migrate-uwsgi", name, "--out", str(out)]
    result = subprocess.run(
        [*argv, "--name", instance],
        cwd=CORPUS, env=child_environ(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.stderr == ""  # no traceback, no error
    report = (out / "migrate-uwsgi-report.txt").read_text()
    assert result.stdout.startswith(report)
    unmapped = EXPECTED[name]
    assert result.returncode == (1 if unmapped else 0), report
    last = report.splitlines()[-1]
    if unmapped:
        assert last == f"result: {len(unmapped)} not mapped ({', '.join(unmapped)}): review them"
    else:
        assert last == "result: every option mapped or explained"
        assert "NOT MAPPED" not in report
    option_lines = [ln for ln in report.splitlines() if re.match(r"  \S+\.ini:\d+ ", ln)]
    assert len(option_lines) == len(read_ini(CORPUS / name))  # every source option reported

    toml = out / "etc" / "sockactd" / f"{instance}.toml"
    settings = tomllib.loads(toml.read_text())
    if ("module" in settings) != ("wsgi-file" in settings):
        load_config(["--config", str(toml)], {})  # raises on any value sockactd refuses
    units = stage_units(tmp_path)
    for dropin in (out / "etc" / "systemd" / "system").glob("*.d"):
        (units / dropin.name).mkdir()
        (units / dropin.name / "uwsgi.conf").write_bytes((dropin / "uwsgi.conf").read_bytes())
    assert verify(units, f"sockactd@{instance}.socket", f"sockactd@{instance}.service") == ""
