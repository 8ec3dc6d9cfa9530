"""Debian-CI stand-in for the pyproject-rpm-macros steps (see macros.debian-compat).

    install BUILDROOT PREFIX WHEELDIR      install the built wheel under BUILDROOT
    save-files BUILDROOT SITELIB OUT NAME  write the %files list for package NAME
    check-import SITELIB FILES             import every module listed in FILES from SITELIB

Used only by rpmbuild on Debian; Fedora's own macros replace all of it.
"""

from __future__ import annotations

import importlib
import sys
import sysconfig
import zipfile
from pathlib import Path


def install(buildroot: str, prefix: str, wheeldir: str) -> None:
    from installer import install as install_wheel
    from installer.destinations import SchemeDictionaryDestination
    from installer.sources import WheelFile

    # posix_prefix: Debian's default scheme would install under /usr/local.
    paths = sysconfig.get_paths("posix_prefix", vars={"base": prefix, "platbase": prefix})
    scheme = {key: paths[key] for key in ("purelib", "platlib", "scripts", "data")}
    scheme["headers"] = paths["include"]
    destination = SchemeDictionaryDestination(
        scheme, interpreter=sys.executable, script_kind="posix", destdir=buildroot
    )
    (wheel,) = Path(wheeldir).glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        source = WheelFile(archive)
        install_wheel(source, destination, {"INSTALLER": b"rpm\n"})


def save_files(buildroot: str, sitelib: str, out: str, *names: str) -> None:
    root = Path(buildroot + sitelib)
    wanted = {n for n in names if not n.startswith("-")}
    lines = []
    for entry in sorted(root.iterdir()):
        stem = entry.name.split("-")[0] if entry.name.endswith(".dist-info") else entry.name
        if stem.replace("-", "_") in wanted:
            lines.append(
                f"{sitelib}/{entry.name}/" if entry.is_dir() else f"{sitelib}/{entry.name}"
            )
    Path(out).write_text("\n".join(lines) + "\n", encoding="utf-8")


def check_import(sitelib: str, files: str) -> None:
    """Import every module of the listed packages from `sitelib` (the buildroot's)."""
    for line in Path(files).read_text(encoding="utf-8").split():
        package = Path(sitelib) / Path(line.rstrip("/")).name
        if package.name.endswith(".dist-info") or not package.is_dir():
            continue
        for source in sorted(package.rglob("*.py")):
            parts = source.relative_to(sitelib).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            module = importlib.import_module(name)
            if not str(module.__file__).startswith(sitelib):
                sys.exit(f"{name} imported from {module.__file__}, not from {sitelib}")
            print(f"imported {name}")


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"install": install, "save-files": save_files, "check-import": check_import}[command](*args)
