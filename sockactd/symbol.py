"""Named constants compared by identity: what enum.Enum would give, without importing enum.

`enum` (with collections, functools, operator and the rest it pulls in) costs about
4 ms to import, and every module on the cold-start path -- the master until its first
fork, and the worker until its first response, while a socket-activated client
waits -- would pay it. So the few closed sets sockactd needs there are subclasses of
`Symbol` whose members are made once, right after the class:

    class Next(Symbol):
        PARK: ClassVar[Next]

    Next.PARK = Next("PARK", "park")

Members are singletons (compare with `is`), hashable by identity, and read-only.

The one idiom on each side of the start-up line (tests/unit/test_start_up_modules.py
checks it): a closed set is a `Symbol` in the modules on the start-up path that
docs/ARCHITECTURE.md lists, and an `enum.Enum` in every other module, where enum is
already imported (the master loads it with its machinery) and its iteration, value
lookup and mypy's exhaustiveness checks come free. Not one idiom everywhere: Symbol
off the path would give those up for nothing, enum on it would cost every
socket-activated start. Numbers that leave the process as numbers -- exit statuses,
errors.ExitCode -- are plain ints on both sides: exit() and waitpid() speak ints, and
a wrapper would be unwrapped at each end.
"""

from __future__ import annotations

TYPE_CHECKING = False  # start-up path: docs/ARCHITECTURE.md
if TYPE_CHECKING:
    from typing import Self

__all__ = ["Symbol"]


class Symbol:
    __slots__ = ("name", "value")

    name: str
    value: object

    def __init__(self, name: str, value: object) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "value", value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__}.{self.name} is read-only")

    @classmethod
    def members(cls) -> list[Self]:
        """Every member, in the order they were made (what iterating an Enum gives)."""
        return [value for value in vars(cls).values() if type(value) is cls]

    def __repr__(self) -> str:
        return f"<{type(self).__name__}.{self.name}: {self.value!r}>"

    def __reduce__(self) -> str:
        # pickle/copy: the member itself (a singleton), found again by its qualified name
        return f"{type(self).__name__}.{self.name}"
