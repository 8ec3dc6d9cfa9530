"""What the readers produce: Option records, IniError, and the notes for run-time values.

Shared by ini.py (files), cmdline.py (command lines) and placeholders.py; the
converter (convert.py) reads Options only.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Final

from sockactd.errors import ExitCode, SockactdError

__all__ = [
    "DEFAULT_SECTION",
    "IniError",
    "Option",
    "runtime_references",
    "short_where",
    "with_note",
]

DEFAULT_SECTION: Final = "uwsgi"
_RUNTIME_REFERENCE: Final = re.compile(r"[$@]\([^)]*\)")
_TEMPLATE_LEFTOVER: Final = re.compile(r"\$\{[^}]*\}|\{\{.*?\}\}|\{%.*?%\}")


class IniError(SockactdError):
    """Not a uWSGI configuration this reader accepts; names the file and line."""

    exit_code = ExitCode.CONFIG_INVALID

    def __init__(self, where: str, message: str) -> None:
        self.where = where
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True, slots=True)
class Option:
    """One option as uWSGI would see it, with where it was written."""

    key: str
    value: str
    where: str  # "shop.ini:12" or "command line, argument 3"
    runtime: tuple[str, ...] = ()  # what in `value` only uWSGI's run time could expand


def runtime_references(value: str) -> list[str]:
    notes = [f"{ref} (expanded by uWSGI at run time)" for ref in _RUNTIME_REFERENCE.findall(value)]
    notes += [f"{ref} (not uWSGI syntax: a template left unfilled?)"
              for ref in _TEMPLATE_LEFTOVER.findall(value)]  # fmt: skip
    return notes


def with_note(option: Option, note: str) -> Option:
    return Option(option.key, option.value, option.where, (*option.runtime, note))


def short_where(where: str) -> str:
    """`/etc/uwsgi/shop.ini:12` -> `shop.ini:12`; other forms ("command line, ...") as they are."""
    path, _, line = where.rpartition(":")  # FILE:LINE, FILE.json:KEY, or "command line, ..."
    return f"{os.path.basename(path)}:{line}" if path.startswith("/") else where
