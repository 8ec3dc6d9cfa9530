"""control/paths.py: the default socket path per environment, and the directory checks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sockactd.control.paths import default_control_socket, ensure_private_parent
from sockactd.errors import ControlError


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"RUNTIME_DIRECTORY": "/run/sockactd/app"}, "/run/sockactd/app/control.sock"),
        ({"RUNTIME_DIRECTORY": "/run/a:/run/b"}, "/run/a/control.sock"),
        ({"RUNTIME_DIRECTORY": "/run/a", "XDG_RUNTIME_DIR": "/x"}, "/run/a/control.sock"),
        # by hand: none (issue 12 item 10: two servers started by hand collided on one path)
        ({}, None),
        ({"XDG_RUNTIME_DIR": "/run/user/1000"}, None),
        ({"RUNTIME_DIRECTORY": ""}, None),
    ],
)
def test_default_control_socket(environ: dict[str, str], expected: str | None) -> None:
    assert default_control_socket(environ) == expected


def test_missing_parent_is_created_private(tmp_path: Path) -> None:
    parent = tmp_path / "a" / "b"
    ensure_private_parent(str(parent / "control.sock"))
    assert parent.is_dir()
    assert parent.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        (0o700, None),
        (0o755, None),
        (0o1777, None),  # sticky, like /tmp: others cannot replace our file
        (0o770, "writable by group or others (mode 0770)"),
        (0o757, "writable by group or others (mode 0757)"),
    ],
)
def test_existing_parent_is_checked(tmp_path: Path, mode: int, message: str | None) -> None:
    parent = tmp_path / "run"
    parent.mkdir()
    os.chmod(parent, mode)
    if message is None:
        ensure_private_parent(str(parent / "control.sock"))
        return
    with pytest.raises(ControlError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ensure_private_parent(str(parent / "control.sock"))


def test_parent_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ControlError):
        ensure_private_parent(str(tmp_path / "file" / "control.sock"))
