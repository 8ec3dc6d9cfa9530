"""Build this checkout into a .deb for the package sandbox, optionally as another version.

`build_deb(out)` runs `make deb` with BUILD/DIST under `out` (the build-time unit tests
skipped: the suite runs them itself) and returns out/dist/sockactd_VERSION_all.deb.
`build_deb(out, version="0.1.1")` builds the same tree as that version -- a copy of the
staged tree with sockactd.__version__ and a debian/changelog entry bumped -- which is
what an upgrade test installs over the first one.
"""

from __future__ import annotations

import email.utils
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Final

from tests.support import ROOT

__all__ = ["SYSPATH", "build_deb", "deb_tools_missing", "tree_version"]

SYSPATH: Final = "/usr/sbin:/usr/bin:/sbin:/bin"
NOCHECK: Final = {"DEB_BUILD_OPTIONS": "nocheck", "DEB_BUILD_PROFILES": "nocheck"}
BUILD_TIMEOUT: Final = 600


def deb_tools_missing() -> str | None:
    for tool in ("dpkg-buildpackage", "make", "git"):
        if shutil.which(tool, path=SYSPATH) is None:
            return f"needs {tool} (scripts/setup installs the packaging tools)"
    return None


def tree_version(tree: Path = ROOT) -> str:
    text = (tree / "sockactd" / "__init__.py").read_text()
    found = re.search(r'^__version__ = "(.*)"$', text, flags=re.M)
    assert found, "no __version__ in sockactd/__init__.py"
    return found.group(1)


def build_deb(out: Path, version: str | None = None) -> Path:
    """The .deb of this checkout (as `version` if given), in out/dist; builds take ~1 min."""
    env = {**os.environ, **NOCHECK, "PATH": SYSPATH}
    build, dist = out / "build", out / "dist"
    if version is None:
        _run(["make", "-C", str(ROOT), f"BUILD={build}", f"DIST={dist}", "deb"], env, ROOT)
        found = sorted(dist.glob(f"sockactd_{tree_version()}_all.deb"))
        assert len(found) == 1, found
        return found[0]
    _run(["make", "-C", str(ROOT), f"BUILD={build}", "stage"], env, ROOT)
    tree = build / "stage" / f"sockactd-{tree_version()}"
    init = tree / "sockactd" / "__init__.py"
    line = f'__version__ = "{version}"'
    init.write_text(re.sub(r'^__version__ = ".*"$', line, init.read_text(), flags=re.M))
    shutil.copytree(tree / "packaging" / "debian", tree / "debian")
    changelog = tree / "debian" / "changelog"
    stamp = email.utils.formatdate(usegmt=False, localtime=False)
    entry = (
        f"sockactd ({version}) unstable; urgency=medium\n\n"
        f"  * Test build: {version} for the upgrade test.\n\n"
        f" -- Sockactd Developers <dev@example.org>  {stamp}\n\n"
    )
    changelog.write_text(entry + changelog.read_text())
    _run(["dpkg-buildpackage", "-us", "-uc", "-b"], env, tree)
    dist.mkdir(parents=True, exist_ok=True)
    built = tree.parent / f"sockactd_{version}_all.deb"
    return Path(shutil.copy(built, dist / built.name))


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> None:
    result = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False
    )
    if result.returncode != 0:
        output = result.stdout[-4000:] + result.stderr[-4000:]
        raise AssertionError(f"{' '.join(argv)} exited {result.returncode}:\n{output}")
