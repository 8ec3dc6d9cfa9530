"""Every man page names the version it documents: sockactd.__version__ (issue 14, #12)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sockactd import __version__
from tests.support import ROOT

PAGES = sorted((ROOT / "man").glob("*.[1-8]"))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_man_page_names_the_current_version(page: Path) -> None:
    th = re.search(r"^\.TH .*$", page.read_text(), flags=re.M)
    assert th is not None
    assert f'"sockactd {__version__}"' in th.group(0)


def test_gen_man_derives_the_version(tmp_path: Path) -> None:
    """A bumped __version__ in a copy of the tree makes gen-man rewrite every .TH line."""
    for part in ("scripts", "man", "docs", "sockactd"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    init = tmp_path / "sockactd" / "__init__.py"
    init.write_text(init.read_text().replace(f'"{__version__}"', '"9.8.7"'))
    # The copy's sockactd first: at .deb build time PYTHONPATH names the built copy, which
    # gen-man (it appends its own tree to sys.path) would otherwise import instead.
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    command = [sys.executable, str(tmp_path / "scripts" / "gen-man")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False, env=env)
    assert done.returncode == 0, done.stderr
    for page in (tmp_path / "man").glob("*.[1-8]"):
        assert '"sockactd 9.8.7"' in page.read_text(), page.name
