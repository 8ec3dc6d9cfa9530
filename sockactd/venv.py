"""The virtualenv named by `home` (uWSGI's `home`/`virtualenv`): check it, put it on sys.path.

uWSGI points its embedded interpreter at the venv (PYTHONHOME). sockactd is a
Python program already running on the system's interpreter, so it does for
imports what activating the venv does: the venv's site-packages, and the .pth
files in it, go on sys.path ahead of the system's site directories and behind
the standard library. Compiled modules in a venv made for another Python
version would not load (or worse, crash), so such a venv is a configuration
error: load.py calls `site_packages` while validating, before anything is bound.

This module reads pyvenv.cfg and changes sys.path; it never imports the
application and never touches PATH or the environment.
"""

from __future__ import annotations

import os
import sys

__all__ = ["VenvError", "activate", "site_packages"]

_SITE_DIRS = ("site-packages", "dist-packages")


class VenvError(ValueError):
    """`home` names no usable virtualenv; the message says why and what to do."""


def site_packages(home: str) -> str:
    """The site-packages directory of the venv at `home`, checked against this Python."""
    config = os.path.join(home, "pyvenv.cfg")
    remake = f"recreate it with `{sys.executable} -m venv {home}`"
    try:
        with open(config, encoding="utf-8") as file:
            text = file.read()
    except FileNotFoundError:
        raise VenvError(f"{home} is not a virtualenv (it has no pyvenv.cfg): {remake}") from None
    except OSError as exc:
        raise VenvError(f"cannot read {config}: {exc.strerror}") from None
    made_for = _version(text)
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if made_for is None:
        raise VenvError(f"{config} names no Python version: {remake}")
    if ".".join(made_for.split(".")[:2]) != running:
        raise VenvError(
            f"the virtualenv {home} was made for Python {made_for} (its pyvenv.cfg), but "
            f"sockactd runs on Python {sys.version.split()[0]} ({sys.executable}): "
            f"{remake} and reinstall the application's dependencies into it"
        )
    directory = os.path.join(home, "lib", f"python{running}", "site-packages")
    if not os.path.isdir(directory):
        raise VenvError(f"the virtualenv {home} has no {directory}: {remake}")
    return directory


def _version(text: str) -> str | None:
    """`version` (venv) or `version_info` (virtualenv, uv) from pyvenv.cfg."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        key, equals, value = line.partition("=")
        if equals:
            found[key.strip().lower()] = value.strip()
    return found.get("version") or found.get("version_info") or None


def activate(home: str) -> None:
    """Put the venv's site-packages (and what its .pth files add) before the system's."""
    import site  # already imported by the interpreter's start-up, unless -S

    directory = site_packages(home)
    before = list(sys.path)
    site.addsitedir(directory)  # appends the directory and its .pth entries
    seen = set(before)
    added = [entry for entry in sys.path if entry not in seen]
    rest = [entry for entry in sys.path if entry in seen]
    at = next(
        (i for i, entry in enumerate(rest) if os.path.basename(entry) in _SITE_DIRS), len(rest)
    )
    sys.path[:] = rest[:at] + added + rest[at:]
