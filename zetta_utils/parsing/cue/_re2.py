"""CUE's regular expressions (Go's RE2 syntax) run by Python's ``re``.

The pattern is translated where the two read the same text differently: ``\\d``, ``\\w``,
``\\s`` and ``\\b`` are ASCII-only in RE2, ``$`` is the end of the text (not also the
position before a final newline), ``\\z`` is Python's ``\\Z``, ``\\Q...\\E`` quotes, and
POSIX classes such as ``[[:alpha:]]`` exist. Syntax without a faithful translation
(Unicode classes ``\\p``, the ungreedy flag) is reported as unsupported; syntax RE2
rejects (backreferences, lookaround) too.
"""

from __future__ import annotations

import functools
import re

from ._errors import Pos, unsupported

_WORD = "0-9A-Za-z_"
_SPACE = "\\t\\n\\f\\r "
# Escapes as a class body (inside brackets) and as a whole expression.
_CLASS_ESCAPES = {"d": "0-9", "w": _WORD, "s": _SPACE}
_NOT_WORD_BEFORE = f"(?<![{_WORD}])"
_BOUNDARY = (
    f"(?:(?<=[{_WORD}])(?![{_WORD}])|(?<![{_WORD}])(?=[{_WORD}]))",
    f"(?:(?<=[{_WORD}])(?=[{_WORD}])|{_NOT_WORD_BEFORE}(?![{_WORD}]))",
)
_POSIX = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": _WORD,
    "xdigit": "0-9A-Fa-f",
}
_UNSUPPORTED = re.compile(r"\\[pPC1-9]|\(\?P=|\(\?[=!<]|\(\?[a-zA-Z]*U")


class _Unsupported(Exception):
    pass


def _translate(pattern: str) -> str:
    multiline = re.match(r"\(\?[a-zA-Z]*m[a-zA-Z]*\)", pattern) is not None
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            e = pattern[i + 1]
            i += 2
            if e == "Q":
                end = pattern.find("\\E", i)
                end = n if end < 0 else end
                out.append(re.escape(pattern[i:end]))
                i = end + 2
            elif e in _CLASS_ESCAPES:
                body = _CLASS_ESCAPES[e]
                out.append(body if in_class else f"[{body}]")
            elif e.lower() in _CLASS_ESCAPES:
                if in_class:
                    raise _Unsupported(f"\\{e} inside a character class")
                out.append(f"[^{_CLASS_ESCAPES[e.lower()]}]")
            elif e in "bB" and not in_class:
                out.append(_BOUNDARY[0] if e == "b" else _BOUNDARY[1])
            elif e == "z":
                out.append("\\Z")
            else:
                out.append("\\" + e)
            continue
        if in_class:
            if ch == "[" and pattern.startswith("[:", i):
                end = pattern.find(":]", i + 2)
                name = pattern[i + 2 : end] if end > 0 else ""
                if name not in _POSIX:
                    raise _Unsupported(f"character class [:{name}:]")
                out.append(_POSIX[name])
                i = end + 2
                continue
            if ch == "]" and not (out and out[-1] in ("[", "[^")):
                in_class = False
            out.append(ch)
        elif ch == "[":
            in_class = True
            if pattern.startswith("[^", i):
                out.append("[^")
                i += 2
                if i < n and pattern[i] == "]":  # a leading ']' is literal
                    out.append("\\]")
                    i += 1
                continue
            out.append("[")
            if i + 1 < n and pattern[i + 1] == "]":
                out.append("\\]")
                i += 1
        elif ch == "$" and not multiline:
            out.append("\\Z")
        else:
            out.append(ch)
        i += 1
    return "".join(out)


@functools.lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str] | str:
    """The compiled pattern, or why it is not supported."""
    if _UNSUPPORTED.search(pattern):
        return "Unicode classes (\\p), backreferences, lookaround and the ungreedy flag"
    for m in re.finditer(r"\(\?[a-zA-Z]*m[a-zA-Z]*[:)]", pattern):
        if m.start() > 0 or m.group(0).endswith(":"):
            return "the multi-line flag (?m) other than for the whole pattern"
    try:
        return re.compile(_translate(pattern))
    except _Unsupported as e:
        return str(e)


def regex(pattern: str, pos: Pos | None) -> re.Pattern[str]:
    """Compile a CUE (RE2) regular expression (``re.error`` if it is invalid)."""
    compiled = _compile(pattern)
    if isinstance(compiled, str):
        raise unsupported(
            pos or Pos("<unknown>", 0, 0), f"regular expression {pattern!r}: {compiled}"
        )
    return compiled


__all__ = ["regex"]
