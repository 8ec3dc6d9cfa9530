"""Root conftest: make `tests.support` importable however pytest was started, plus fixtures.

Test directories carry no __init__.py; shared helpers live in tests/support.py
(`from tests.support import require`), since conftest modules are not meant to be imported.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    # `python -m pytest` puts the checkout on sys.path, the bare `pytest` script does not
    sys.path.insert(0, _ROOT)

from tests.support import free_port as _free_port  # noqa: E402  (needs the path above)


@pytest.fixture
def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    return _free_port()


@pytest.fixture(params=["library", "own"])
def http_checks(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run an HTTP parser test twice: with the checks httptools makes itself left to it
    ("library", as on llhttp), and with sockactd's own versions of them forced on ("own",
    as on Debian's httptools 0.1.1, see protocols/head.py's LENIENT)."""
    if request.param == "own":
        from sockactd.protocols import head, http

        monkeypatch.setattr(head, "LENIENT", True)
        monkeypatch.setattr(http, "LENIENT", True)
    return str(request.param)
