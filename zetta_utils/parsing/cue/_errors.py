"""Error type and source positions shared by the CUE front end and evaluator."""

from __future__ import annotations


class CueError(ValueError):
    """A CUE file could not be evaluated to data.

    The message names the position as ``file:line:column`` followed by the path of the
    offending field (when there is one) and what went wrong, one line per error.
    """


class Pos:
    """A position in a source file (1-based line and column)."""

    __slots__ = ("col", "file", "line")

    def __init__(self, file: str, line: int, col: int) -> None:
        self.file = file
        self.line = line
        self.col = col

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def __repr__(self) -> str:
        return f"Pos({self})"


def syntax_error(pos: Pos, msg: str) -> CueError:
    return CueError(f"{pos}: {msg}")


def unsupported(pos: Pos, what: str) -> CueError:
    return CueError(
        f"{pos}: unsupported CUE construct: {what} "
        "(not in the configuration subset understood by the built-in evaluator; "
        "install the `cue` binary or set ZETTA_CUE_BINARY to use the real CUE)"
    )
