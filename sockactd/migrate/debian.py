"""What Debian's uWSGI init script gives every instance it starts from /etc/uwsgi/apps-*/.

/etc/init.d/uwsgi runs `uwsgi --ini INHERITED_CONFIG --ini SITE.ini` for each file in
/etc/uwsgi/apps-enabled, with UWSGI_DEB_CONFNAMESPACE (the directory's name without
"s-enabled": "app") and UWSGI_DEB_CONFNAME (the file's name without extension) in the
environment. INHERITED_CONFIG is named in /etc/default/uwsgi (Debian ships
/usr/share/uwsgi/conf/default.ini: master, two workers, the socket
/run/uwsgi/app/NAME/socket, www-data). A site file there relies on all that: read
alone it has no socket, no user, and nginx's `uwsgi_pass` names a socket it never
declared. So a file in such a directory is read the way the init script starts it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from sockactd.migrate.option import Option

__all__ = ["DebianSite", "debian_site"]

DEFAULTS_FILE: Final = Path("/etc/default/uwsgi")
SHIPPED_INHERITED: Final = Path("/usr/share/uwsgi/conf/default.ini")
_SITE_DIR: Final = re.compile(r"^(?P<namespace>\w+)s-(enabled|available)$")


class DebianSite:
    """A site file in Debian's layout: what to read before it, and the preset options."""

    def __init__(self, inherited: Path, namespace: str, confname: str) -> None:
        self.inherited = inherited
        self.preset = [
            Option("deb-confnamespace", namespace, "UWSGI_DEB_CONFNAMESPACE (init script)"),
            Option("deb-confname", confname, "UWSGI_DEB_CONFNAME (init script)"),
        ]

    def describe(self) -> str:
        namespace, confname = (option.value for option in self.preset)
        return (
            f"read {self.inherited} first, as /etc/init.d/uwsgi starts every instance in "
            f"/etc/uwsgi/{namespace}s-enabled (deb-confnamespace={namespace}, "
            f"deb-confname={confname}); --inherit none reads the file alone"
        )


def debian_site(path: Path, defaults: Path = DEFAULTS_FILE) -> DebianSite | None:
    """The Debian layout `path` is in, or None (not in an apps-* directory, or no uWSGI here)."""
    match = _SITE_DIR.match(path.resolve().parent.name)
    if match is None:
        return None
    inherited = _inherited_config(defaults)
    if not inherited.is_file():
        return None
    return DebianSite(inherited, match.group("namespace"), path.name.rsplit(".", 1)[0])


def _inherited_config(defaults: Path) -> Path:
    try:
        text = defaults.read_text()
    except OSError:
        return SHIPPED_INHERITED
    found = re.search(r"^\s*INHERITED_CONFIG=\"?([^\"\n]+)\"?\s*$", text, flags=re.M)
    return Path(found.group(1)) if found else SHIPPED_INHERITED
