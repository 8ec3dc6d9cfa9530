"""Where a trigger path leads, following symlinks as the kernel would, and what it passes.

A trigger file is named by a path as the user wrote it, say
/srv/app/current/reload.txt with `current -> releases/7`. inotify watches inodes,
so watching /srv/app/current would keep watching releases/7 after a deploy swaps
`current` to releases/8. `resolve` walks the path one component at a time and
returns both the file it reaches -- as a symlink-free (directory, name) -- and
every symlink on the way, as (directory, name) too. inotify.py watches the
directories of all of them: a change to the file is a trigger, and so is a change
to any of those symlinks (the path now leads elsewhere), after which it resolves
the path again.

A missing component ends the walk: the rest of the path is taken literally (a
trigger file may not exist yet). This module reads symlinks and nothing else.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from typing import Final, NamedTuple

__all__ = ["Resolved", "resolve"]

MAX_LINKS: Final = 40  # as the kernel's ELOOP limit


class Resolved(NamedTuple):
    target: tuple[str, str]  # (real directory, name) of the file the path reaches
    links: tuple[tuple[str, str], ...]  # every symlink passed, as (real directory, name)


def resolve(path: str, readlink: Callable[[str], str] = os.readlink) -> Resolved:
    """Follow `path` (relative: to the current directory). OSError(ELOOP) past MAX_LINKS."""
    if not path.startswith("/"):
        path = os.path.join(os.getcwd(), path)
    pending = [part for part in reversed(path.split("/")) if part]
    current = "/"
    links: list[tuple[str, str]] = []
    while pending:
        name = pending.pop()
        if name == ".":
            continue
        if name == "..":
            current = os.path.dirname(current)
            continue
        try:
            target = readlink(os.path.join(current, name))
        except OSError:  # not a symlink, or not there: take it as it is
            if not pending:
                return Resolved((current, name), tuple(links))
            current = os.path.join(current, name)
            continue
        links.append((current, name))
        if len(links) > MAX_LINKS:
            raise OSError(errno.ELOOP, f"too many levels of symbolic links in {path}")
        if target.startswith("/"):
            current = "/"
        pending.extend(part for part in reversed(target.split("/")) if part)
    # The path named a directory ("/", or ending in "..")
    return Resolved((os.path.dirname(current), os.path.basename(current)), tuple(links))
