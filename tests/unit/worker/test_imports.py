"""Cold start: the request path the master imports before its first fork stays lean.

Every module listed here costs start-up time while a socket-activated client
waits, and the first request on a default configuration does not need it: such
code imports it inside the rare function that does (see the module headers).
"""

from __future__ import annotations

import pytest

from tests.support import run_python

# module -> why the first request does not need it
_NOT_AT_START = {
    "dataclasses": "plain classes with __slots__ (dataclasses pulls inspect, ast, dis, tokenize)",
    "typing": "annotations only (PEP 563, TYPE_CHECKING)",
    "inspect": "via dataclasses",
    "re": "header checks use str methods and character sets",
    "urllib.parse": "only a path with a %-escape is unquoted",
    "ipaddress": "only trusted-proxies",
    "traceback": "only a failed app import",
    "textwrap": "via traceback",
    "queue": "only --threads > 1",
    "threading": "only --threads > 1",
    "importlib.util": "only --wsgi-file",
    "logging": "only when a record is written",
    "sockactd.protocols.proxy": "only trusted-proxies",
}


@pytest.mark.parametrize(
    "statement",
    [
        "import sockactd.worker.serve, sockactd.app",
        "import sockactd.protocols.http, sockactd.protocols.uwsgi, sockactd.protocols.wsgi",
    ],
)
def test_request_path_imports_no_rare_module(statement: str) -> None:
    # Only what sockactd imported: site (the editable install's finder) and httptools
    # (0.9's parser/protocol.py imports typing) are loaded before the snapshot.
    script = (
        "import sys, httptools\n"
        f"before = set(sys.modules)\n{statement}\nprint(*set(sys.modules) - before)"
    )
    loaded = set(run_python(script).stdout.split())
    assert {"sockactd.worker.serve", "sockactd.protocols.wsgi"} & loaded  # it did run
    extra = sorted(loaded & _NOT_AT_START.keys())
    assert not extra, {name: _NOT_AT_START[name] for name in extra}
