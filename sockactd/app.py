"""Find and import the WSGI application named by the configuration.

Shared by three roles, so it sits beside them rather than inside one: the master
(preloading, and the process settings every worker inherits), each worker
(--lazy-apps) and `sockactd --check` (the pre-flight of a standard reload). It
imports application code and nothing else: it never forks, binds or logs.
"""

from __future__ import annotations

import os
import sys

from sockactd.errors import AppImportError

# traceback and importlib.util are imported on the paths that need them (a failed
# import, --wsgi-file).
TYPE_CHECKING = False  # start-up path: docs/ARCHITECTURE.md
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from sockactd.config.model import Config

    WSGIApp = Callable[..., Any]

__all__ = ["apply_env", "load_app", "prepare_process", "started_environ", "where_it_failed"]

# Key -> its value before an `env` entry replaced it (None: it was unset). Lets a reload
# drop an entry (the service's own value comes back) and a re-executed master start from
# the environment the service gave, not from the previous configuration's entries.
_overridden: dict[str, str | None] = {}  # and WSGIApp, a type for annotations only


def prepare_process(config: Config) -> None:
    """Apply home, chdir, env and pythonpath once, before the app is imported anywhere.

    Workers inherit the result from the master, so lazy imports see the same
    directory and environment as a preloading master would.
    """
    if config.home:  # before chdir: a relative `home` means what it meant when validated
        from sockactd.venv import activate

        activate(config.home)
    if config.chdir:
        os.chdir(config.chdir)
    apply_env(config.env)
    for directory in reversed(config.pythonpath):
        if directory not in sys.path:
            sys.path.insert(0, directory)
    # A module given as pkg.mod:app is looked up from the working directory, as uWSGI does.
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


def apply_env(entries: list[str]) -> None:
    """Make os.environ the started environment with `entries` (KEY=VALUE) over it."""
    wanted = dict(entry.partition("=")[::2] for entry in entries)
    for key in [key for key in _overridden if key not in wanted]:
        original = _overridden.pop(key)
        if original is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = original
    for key, value in wanted.items():
        if key not in _overridden:
            _overridden[key] = os.environ.get(key)
        os.environ[key] = value


def started_environ() -> dict[str, str]:
    """os.environ without the `env` entries: what a re-executed master must start from."""
    environ = dict(os.environ)
    for key, original in _overridden.items():
        if original is None:
            environ.pop(key, None)
        else:
            environ[key] = original
    return environ


def load_app(config: Config) -> WSGIApp:
    """Import the configured WSGI callable; AppImportError carries the traceback text."""
    target = config.app_target
    try:
        obj = _import_target(config)
    except Exception as exc:
        import traceback

        raise AppImportError(target, where_it_failed(exc) + traceback.format_exc()) from None
    if not callable(obj):
        raise AppImportError(target, f"{target} is a {type(obj).__name__}, not a WSGI callable\n")
    return obj


def where_it_failed(exc: BaseException) -> str:
    """'FILE, line N: Type: message' for the line that raised `exc`: a traceback's headline."""
    if isinstance(exc, SyntaxError) and exc.filename:
        filename, line, message = exc.filename, exc.lineno, exc.msg
    else:
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        if tb is None:
            return ""
        filename, line, message = tb.tb_frame.f_code.co_filename, tb.tb_lineno, str(exc)
    return f"{filename}, line {line}: {type(exc).__name__}: {message}\n"


def _import_target(config: Config) -> object:
    if config.wsgi_file:
        return getattr(_import_file(config.wsgi_file), config.callable)
    assert config.module is not None
    module_name, _, attr = config.module.partition(":")
    # __import__ plus sys.modules is importlib.import_module for an absolute name, without
    # importing the importlib package (and warnings) on the cold-start path.
    __import__(module_name)
    obj: object = sys.modules[module_name]
    for part in (attr or config.callable).split("."):
        obj = getattr(obj, part)
    return obj


def _import_file(path: str) -> object:
    import importlib.util

    # os.path, not pathlib: pathlib costs ~10 ms of start-up for this one call
    stem = os.path.splitext(os.path.basename(path))[0]
    name = "sockactd_wsgi_file_" + stem.replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
