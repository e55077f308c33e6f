"""A failed task's traceback, user's frames first: what ran of the user's code (a spec's lambda,
their own module) is what they can act on; the frames of zetta_utils, the standard library and
installed packages are counted and hidden (``zetta --debug`` shows them).

Tracebacks arrive as text (from worker processes or remote machines, whose paths differ from
this machine's), so frames are told apart by their file names alone: a path with a
``zetta_utils/<one of this package's modules>`` part, a ``site-packages`` / ``dist-packages``
part, or a ``lib/pythonX.Y`` part, or a ``<frozen ...>`` name, is not the user's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

import attrs

__all__ = ["ShortTraceback", "is_internal_file", "shorten_traceback"]

_FRAME = re.compile(r'^  File "(?P<file>[^"]*)", line \d+, in (?P<name>.*)$')
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_OUR_MODULES = frozenset(
    name.removesuffix(".py")
    for name in os.listdir(_PACKAGE_DIR)
    if name.endswith(".py") or os.path.isdir(os.path.join(_PACKAGE_DIR, name))
)
_STDLIB = re.compile(r"[/\\]lib[/\\]python\d+(\.\d+)?[/\\]")
_INSTALLED = re.compile(r"[/\\](site|dist)-packages[/\\]")


def is_internal_file(path: str) -> bool:
    """Whether a traceback's file name is zetta_utils', the standard library's or an installed
    package's (not the user's)."""
    if path.startswith("<frozen "):
        return True
    if _INSTALLED.search(path) or _STDLIB.search(path):
        return True
    parts = re.split(r"[/\\]", path)
    return any(
        part == "zetta_utils"
        and i + 1 < len(parts)
        and parts[i + 1].removesuffix(".py") in _OUR_MODULES
        for i, part in enumerate(parts[:-1])
    )


@attrs.frozen
class ShortTraceback:
    """``frames``: the text of the frames shown (each its ``File ...`` line and source lines);
    ``hidden``: how many frames were left out; ``users``: whether the shown ones are the
    user's (else they are where the error was raised, no user frame being in the traceback)."""

    frames: tuple[str, ...]
    hidden: int
    users: bool

    def render(self, indent: str = "  ") -> str:
        if not self.frames:
            return ""
        head = "your code (most recent call last):" if self.users else "raised at:"
        lines = [f"{indent}{head}"]
        for frame in self.frames:
            lines.extend(f"{indent}  {line}" for line in frame.split("\n"))
        if self.hidden:
            lines.append(
                f"{indent}({self.hidden} frame(s) of zetta_utils and libraries hidden: --debug "
                "shows them)"
            )
        return "\n".join(lines)


def _frames(text: str) -> list[tuple[str, str]]:
    """(file name, frame text) of every frame in ``text`` (all chained exceptions, in order)."""
    frames: list[tuple[str, list[str]]] = []
    current: list[str] | None = None
    for line in text.split("\n"):
        match = _FRAME.match(line)
        if match:
            current = [line.removeprefix("  ")]
            frames.append((match["file"], current))
        elif current is not None and line.startswith("    "):
            current.append(line.removeprefix("  "))
        else:
            current = None
    return [(file, "\n".join(lines)) for file, lines in frames]


def shorten_traceback(text: str, keep_innermost: int = 1) -> ShortTraceback:
    """The user's frames of ``text``, or, where none is the user's, the innermost
    ``keep_innermost`` frames."""
    frames = _frames(text)
    users: Sequence[tuple[str, str]] = [f for f in frames if not is_internal_file(f[0])]
    if users:
        return ShortTraceback(tuple(t for _, t in users), len(frames) - len(users), True)
    shown = frames[-keep_innermost:] if keep_innermost else []
    return ShortTraceback(tuple(t for _, t in shown), len(frames) - len(shown), False)
