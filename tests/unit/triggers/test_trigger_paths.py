"""triggers/paths.resolve: where a trigger path leads and which symlinks it passes (a table)."""

from __future__ import annotations

import errno

import pytest

from sockactd.triggers.paths import Resolved, resolve

LINKS = {
    "/srv/app/current": "releases/7",
    "/srv/app/releases/7/reload.txt": "../../shared/reload.txt",
    "/srv/www": "/srv/app",
    "/loop/a": "b",
    "/loop/b": "a",
}


def readlink(path: str) -> str:
    try:
        return LINKS[path]
    except KeyError:
        raise OSError(errno.EINVAL, "not a symlink") from None


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/etc/app/reload.txt", Resolved(("/etc/app", "reload.txt"), ())),
        ("/srv/app/current/x.txt",
         Resolved(("/srv/app/releases/7", "x.txt"), (("/srv/app", "current"),))),
        ("/srv/app/current/reload.txt",
         Resolved(("/srv/app/shared", "reload.txt"),
                  (("/srv/app", "current"), ("/srv/app/releases/7", "reload.txt")))),
        ("/srv/www/current/x.txt",
         Resolved(("/srv/app/releases/7", "x.txt"), (("/srv", "www"), ("/srv/app", "current")))),
        ("/srv/app/current/../x.txt",  # .. after a symlink: from where the link led
         Resolved(("/srv/app/releases", "x.txt"), (("/srv/app", "current"),))),
        ("/srv//app/./y", Resolved(("/srv/app", "y"), ())),
    ],
)  # fmt: skip
def test_resolve(path: str, expected: Resolved) -> None:
    assert resolve(path, readlink) == expected


def test_a_symlink_loop_is_an_error() -> None:
    with pytest.raises(OSError) as raised:
        resolve("/loop/a/x", readlink)
    assert raised.value.errno == errno.ELOOP
