"""autoreload/scan.py: ignore globs, which filesystems are scanned, snapshots."""

from __future__ import annotations

from pathlib import Path

import pytest

from sockactd.autoreload.scan import Ignore, inotify_unreliable, mount_types, snapshot


@pytest.mark.parametrize(
    ("path", "ignored"),
    [
        ("/srv/app/views.py", False),
        ("/srv/app/__pycache__/views.cpython-311.pyc", True),
        ("/srv/app/.views.py.swp", True),
        ("/srv/app/views.py~", True),
        ("/srv/app/4913", True),
        ("/srv/app/.#views.py", True),
        ("/srv/app/.git/HEAD", True),
        ("/srv/app/templates/page.html", False),
    ],
)
def test_default_ignores(path: str, ignored: bool) -> None:
    assert Ignore([])(path) is ignored


def test_a_glob_matches_the_whole_path_or_a_name() -> None:
    ignore = Ignore(["/usr/lib/*", "*.log", "node_modules"])
    assert ignore("/usr/lib/python3.11/json/__init__.py")
    assert ignore("/srv/app/debug.log")
    assert ignore("/srv/app/node_modules/x/index.js")
    assert not ignore("/srv/app/views.py")


MOUNTINFO = r"""22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 22 0:35 / /home/dev/share rw,relatime shared:20 - nfs4 server:/export rw
41 40 0:36 / /home/dev/share/local rw shared:21 - ext4 /dev/sdb1 rw
42 22 0:37 / /mnt/my\040files rw shared:22 - fuse.sshfs host: rw
43 22 0:38 / /mnt/vm rw shared:23 - 9p hostshare rw
"""


def test_network_and_fuse_filesystems_are_scanned(tmp_path: Path) -> None:
    (tmp_path / "mountinfo").write_text(MOUNTINFO)
    mounts = mount_types(str(tmp_path / "mountinfo"))
    assert mounts["/mnt/my files"] == "fuse.sshfs"
    assert not inotify_unreliable("/srv/app", mounts)
    assert inotify_unreliable("/home/dev/share/app", mounts)
    assert inotify_unreliable("/home/dev/share", mounts)
    assert not inotify_unreliable("/home/dev/share/local/app", mounts)  # the deeper mount wins
    assert not inotify_unreliable("/home/dev/shared", mounts)  # a prefix, not a parent
    assert inotify_unreliable("/mnt/my files/app", mounts)
    assert inotify_unreliable("/mnt/vm", mounts)


def test_unreadable_mountinfo_trusts_inotify(tmp_path: Path) -> None:
    assert mount_types(str(tmp_path / "missing")) == {}
    assert not inotify_unreliable("/anything", {})


def test_snapshot_sees_a_rewrite_of_the_same_size(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text("A = 1\n")
    before = snapshot(str(path))
    path.write_text("A = 2\n")
    path.touch()
    assert snapshot(str(path)) != before
    assert snapshot(str(tmp_path / "gone.py")) is None
