"""uWSGI's `%(name)` placeholders, resolved once every option is read.

`%(name)` becomes the first value of option `name` (or of `set-placeholder =
name=value`), itself resolved first; `%(a + 1)` is uWSGI's arithmetic (tokens
concatenate, `+ - * /` apply to the next one, `++`/`--`). A placeholder naming
nothing stays as written and is noted on its option (`declare-option` names are
set when uWSGI runs); so is a loop of placeholders. Checked against the real
`uwsgi --get` by tests/unit/migrate/test_migrate_ini.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from sockactd.migrate.option import Option, with_note

__all__ = ["resolve_placeholders"]

_PLACEHOLDER: Final = re.compile(r"%\(([^)]*)\)")


def resolve_placeholders(options: list[Option]) -> list[Option]:
    """`options` with every placeholder replaced (or noted), in the same order."""
    named: list[tuple[str, Option]] = []
    declared = {
        o.value.partition("=")[0].strip() for o in options if o.key.startswith("declare-option")
    }
    for option in options:
        if option.key in ("set-placeholder", "set-ph"):
            name, _, value = option.value.partition("=")
            named.append((name, Option(name, value, option.where, option.runtime)))
        else:
            named.append((option.key, option))
    cache: dict[int, Option] = {}

    def resolve(option: Option, stack: tuple[int, ...] = ()) -> Option:
        if id(option) in cache:
            return cache[id(option)]
        if id(option) in stack:
            return with_note(option, "placeholders refer to each other in a loop")
        notes = list(option.runtime)

        def substitute(match: re.Match[str]) -> str:
            expression = match.group(1)
            if " " in expression:
                return _arithmetic(expression, lambda n: _value_of(n, named, resolve, stack))
            found = next((o for key, o in named if key == expression), None)
            if found is None:
                why = "is set when uWSGI runs" if expression in declared else "names no option"
                notes.append(f"%({expression}) {why}")
                return match.group(0)
            resolved = resolve(found, (*stack, id(option)))
            notes.extend(n for n in resolved.runtime if n not in notes)
            return resolved.value

        value = _PLACEHOLDER.sub(substitute, option.value)
        result = Option(option.key, value, option.where, tuple(notes))
        cache[id(option)] = result
        return result

    return [resolve(option) for option in options]


def _value_of(
    name: str,
    named: list[tuple[str, Option]],
    resolve: Callable[[Option, tuple[int, ...]], Option],
    stack: tuple[int, ...],
) -> str:
    found = next((o for key, o in named if key == name), None)
    return "" if found is None else resolve(found, stack).value


def _arithmetic(expression: str, lookup: Callable[[str], str]) -> str:
    """uWSGI's `%(a b + 1)`: tokens concatenate, `+ - * /` apply to the next, `++`/`--`."""
    current: str | None = None
    operator = ""
    for token in expression.split():
        if token in ("+", "-", "*", "/"):
            operator = token
            continue
        if token in ("++", "--"):
            if current is not None:
                current = str(_to_int(current) + (1 if token == "++" else -1))
            operator = ""
            continue
        value = token if token.lstrip("-").isdigit() else lookup(token)
        left, right = _to_int(current or ""), _to_int(value)
        if operator == "+":
            current = str(left + right)
        elif operator == "-":
            current = str(left - right)
        elif operator == "*":
            current = str(left * right)
        elif operator == "/":
            current = str(int(left / right) if right else 0)
        else:
            current = (current or "") + value
        operator = ""
    return current or ""


def _to_int(text: str) -> int:
    match = re.match(r"\s*[-+]?\d+", text)
    return int(match.group(0)) if match else 0
