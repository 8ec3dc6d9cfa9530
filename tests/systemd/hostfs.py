"""The file-system layout of a package sandbox: overlays on /etc, /usr and /var, own unit dirs.

Used by sandbox.Sandbox when it is created with `packaged=True` (see sandbox.py's
docstring for the API). Inside the sandbox's mount namespace, before systemd starts:

* /etc, /usr, /var, /srv and /opt become overlays whose lower layer is the host's tree and whose
  upper layer is ROOT/upper/{etc,usr,...}: dpkg, apt, maintainer scripts, systemctl
  enable, DynamicUser state directories all write there, never on the host (the
  host's dpkg database and apt locks live under /var, so they are not shared either).
* /usr/lib/systemd/system (= /lib/systemd/system) and /etc/systemd/system are then
  bind-mounted from ROOT/lib-units and ROOT/etc-units, which hold only the minimal
  targets and a journald: the host's units are invisible, a package's units land there.
* /usr/sbin/policy-rc.d (a container image's "start nothing" policy) is removed in the
  overlay, so maintainer scripts act as on a real host.

This module only writes files and returns shell text; it starts nothing.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

__all__ = [
    "ETC_UNITS",
    "LIB_UNITS",
    "OVERLAID",
    "RUN_UNITS",
    "UNIT_PATH",
    "boot_lines",
    "prepare",
]

OVERLAID: Final = ("etc", "usr", "var", "srv", "opt")  # /srv, /opt: where sites deploy apps
LIB_UNITS: Final = "/usr/lib/systemd/system"
ETC_UNITS: Final = "/etc/systemd/system"
RUN_UNITS: Final = "/run/systemd/system"  # on the sandbox's own /run tmpfs
# What the sandbox's systemd reads: exactly these three (no trailing colon: the host's
# default path, with systemd-tmpfiles-setup emptying the shared /tmp, stays out).
UNIT_PATH: Final = f"{ETC_UNITS}:{RUN_UNITS}:{LIB_UNITS}"
# A host unit that must not be visible inside (checked before systemd starts).
HOST_CANARY: Final = f"{LIB_UNITS}/systemd-tmpfiles-setup.service"
POLICY_RC_D: Final = "/usr/sbin/policy-rc.d"
# The chain a real host boots (test.target standing in for the default target), so that
# what `systemctl enable` links into sockets.target.wants etc. is wired as it is there.
WIRING: Final = {
    "test": "Wants=multi-user.target\n",
    "multi-user": "Requires=basic.target\nAfter=basic.target\n",
    "basic": (
        "Requires=sysinit.target\nWants=sockets.target paths.target timers.target\n"
        "After=sysinit.target sockets.target paths.target timers.target\n"
    ),
}
JOURNALD: Final = ("systemd-journald.service", "systemd-journald.socket")


def prepare(root: Path, targets: tuple[str, ...]) -> None:
    """Create ROOT/{upper,work}/*, ROOT/lib-units (targets + journald), ROOT/etc-units."""
    for tree in OVERLAID:
        (root / "upper" / tree).mkdir(parents=True, mode=0o755)
        (root / "work" / tree).mkdir(parents=True, mode=0o700)
    lib = root / "lib-units"
    (root / "etc-units").mkdir(mode=0o755)
    lib.mkdir(mode=0o755)
    for target in targets:
        (lib / f"{target}.target").write_text(
            f"[Unit]\nDescription={target}\n{WIRING.get(target, '')}"
        )
    _add_journald(lib)


def _add_journald(lib: Path) -> None:
    """The host's journald, on one socket: no /dev/log (its Symlinks= would write the host's
    /dev) and no audit socket (no audit capability in a sandbox)."""
    host = Path(LIB_UNITS)
    service = (host / "systemd-journald.service").read_text()
    service = re.sub(r"^Sockets=.*$", "Sockets=systemd-journald.socket", service, flags=re.M)
    (lib / "systemd-journald.service").write_text(service)
    (lib / "systemd-journald.socket").write_text((host / "systemd-journald.socket").read_text())
    for wants, unit in (("sockets", "systemd-journald.socket"), ("sysinit", JOURNALD[0])):
        folder = lib / f"{wants}.target.wants"
        folder.mkdir(exist_ok=True)
        (folder / unit).symlink_to(f"../{unit}")


def boot_lines(root: Path) -> str:
    """Shell lines (run with `set -e` inside the new mount namespace) that set up the trees.

    `root` is the sandbox root as bound inside (sandbox.INNER): through the host path, an
    upper directory under /var/tmp would be reached through the /var overlay once that is
    mounted, and overlayfs refuses an overlay as upper layer.
    """
    lines = [
        f"mount -t overlay overlay -o lowerdir=/{t},upperdir={root}/upper/{t},"
        f"workdir={root}/work/{t} /{t}"
        for t in OVERLAID
    ]
    lines += [
        f"rm -f {POLICY_RC_D}",
        f"mount --bind {root}/lib-units {LIB_UNITS}",
        f"mount --bind {root}/etc-units {ETC_UNITS}",
        f'if [ -e {HOST_CANARY} ]; then echo "host units visible" >&2; exit 1; fi',
        f'if [ -e {POLICY_RC_D} ]; then echo "policy-rc.d still there" >&2; exit 1; fi',
        f"export SYSTEMD_UNIT_PATH={UNIT_PATH}",
    ]
    return "".join(line + "\n" for line in lines)
