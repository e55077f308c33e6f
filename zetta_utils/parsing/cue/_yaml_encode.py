"""``yaml.Marshal`` as CUE v0.4 writes YAML: its value as a yaml.v3 node tree (strings tagged
``!!str``, several lines in literal style, bytes as a string when they are UTF-8 and as
``!!binary`` base64 otherwise, a float's text with a dot added when it has neither dot nor
exponent), written by yaml.v3's emitter (a libyaml
port) in block style with two-space indentation and lines folded after column 80:

- a string that yaml.v3 would read as something else (``true``, ``1_0``, ``2021-01-01``,
  ``<<``, ...) is double-quoted; other strings are plain unless libyaml's analysis of the
  text forbids it (indicators, leading or trailing spaces, breaks, tabs, characters it does
  not print), then single-quoted, then double-quoted with Go's escapes;
- a string of several lines is a literal block (``|``, with ``-``/``+`` chomping and an
  indentation hint when it starts with a space or break) unless its text forbids one;
- plain, single- and double-quoted text is folded at a space after column 80.

Keys longer than 128 bytes or holding a line break (written as complex ``?`` keys) are
unsupported.
"""

from __future__ import annotations

import base64
import re

from ._values import FLOAT, NULLV, Num, num_str
from ._yaml_decode import _GO_FLOAT, _HINTS, _WORDS, _go_float_ok, _go_int, _is_timestamp

BEST_WIDTH = 80
_BREAKS = "\r\n\x85\u2028\u2029"
_V3_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_ESCAPES = {
    "\x00": "0",
    "\x07": "a",
    "\x08": "b",
    "\t": "t",
    "\n": "n",
    "\x0b": "v",
    "\x0c": "f",
    "\r": "r",
    "\x1b": "e",
    '"': '"',
    "\\": "\\",
    "\x85": "N",
    "\xa0": "_",
    "\u2028": "L",
    "\u2029": "P",
}


class Unsupported(ValueError):
    pass


def _printable(c: str) -> bool:
    """yaml.v3's is_printable (from the UTF-8 bytes: no characters beyond U+FFFF)."""
    o = ord(c)
    return (
        o == 0x0A
        or 0x20 <= o <= 0x7E
        or 0xA0 <= o <= 0xD7FF
        or (0xE000 <= o <= 0xFFFD and o != 0xFEFF)
    )


def _blankz(s: str, i: int) -> bool:
    return i >= len(s) or s[i] in " \t\x00" or s[i] in _BREAKS


def v3_reads_as_string(s: str) -> bool:
    """yaml.v3's resolve of a plain scalar gives ``!!str``."""
    hint = "N" if s == "" else _HINTS.get(s[0])
    if hint is None:
        return True
    if s in _WORDS or s == "<<":
        return False
    if hint == ".":
        return not (_GO_FLOAT.fullmatch(s) and _go_float_ok(s))
    if hint in "DS":
        if _is_timestamp(s):
            return False
        plain = s.replace("_", "")
        if _go_int(plain) is not None:
            return False
        if _V3_FLOAT.fullmatch(plain) and _go_float_ok(plain):
            return False
    return True


class _Analysis:
    """libyaml's yaml_emitter_analyze_scalar (yaml.v3's, with its tab rule)."""

    def __init__(self, s: str) -> None:
        self.multiline = False
        if not s:
            self.block_plain, self.single, self.block = True, True, False
            return
        block_ind = s.startswith(("---", "...")) and len(s) >= 3
        line_breaks = special = tabs = False
        lead_space = lead_break = trail_space = trail_break = False
        break_space = space_break = False
        prev_space = prev_break = False
        preceded_ws = True
        n = len(s)
        for i, c in enumerate(s):
            followed_ws = _blankz(s, i + 1)
            if i == 0:
                if c in "#,[]{}&*!|>'\"%@`" or (c in "?:-" and followed_ws):
                    block_ind = True
            elif (c == ":" and followed_ws) or (c == "#" and preceded_ws):
                block_ind = True
            if c == "\t":
                tabs = True
            elif not _printable(c):
                special = True
            if c in _BREAKS:
                line_breaks = True
            if c == " ":
                lead_space = lead_space or i == 0
                trail_space = trail_space or i == n - 1
                break_space = break_space or prev_break
                prev_space, prev_break = True, False
            elif c in _BREAKS:
                lead_break = lead_break or i == 0
                trail_break = trail_break or i == n - 1
                space_break = space_break or prev_space
                prev_space, prev_break = False, True
            else:
                prev_space = prev_break = False
            preceded_ws = _blankz(s, i)
        self.multiline = line_breaks
        plain = single = block = True
        if lead_space or lead_break or trail_space or trail_break:
            plain = False
        if trail_space:
            block = False
        if break_space:
            plain = single = False
        if space_break or special:
            plain = single = block = False
        if tabs:
            plain = single = False
        if line_breaks or block_ind:
            plain = False
        self.block_plain, self.single, self.block = plain, single, block


def _indent_break(indent: int) -> str:
    return "\n" + " " * indent


def _plain(s: str, col: int, indent: int, breaks: bool) -> str:
    out: list[str] = []
    spaces = False
    for i, c in enumerate(s):
        if c == " ":
            if breaks and not spaces and col > BEST_WIDTH and s[i + 1 : i + 2] != " ":
                out.append(_indent_break(indent))
                col = indent
            else:
                out.append(c)
                col += 1
            spaces = True
        else:
            out.append(c)
            col += 1
            spaces = False
    return "".join(out)


def _single(s: str, col: int, indent: int, breaks: bool) -> str:
    out = ["'"]
    col += 1
    spaces = brk = False
    last = len(s) - 1
    for i, c in enumerate(s):
        if c == " ":
            fold = breaks and not spaces and col > BEST_WIDTH and 0 < i < last
            if fold and s[i + 1] != " ":
                out.append(_indent_break(indent))
                col = indent
            else:
                out.append(c)
                col += 1
            spaces = True
        elif c in _BREAKS:
            if not brk and c == "\n":
                out.append("\n")
            out.append(c)
            col = 0
            brk = True
        else:
            if brk:
                out.append(" " * indent)
                col = indent
            out.append("''" if c == "'" else c)
            col += 2 if c == "'" else 1
            spaces = brk = False
    out.append("'")
    return "".join(out)


def _double(s: str, col: int, indent: int, breaks: bool) -> str:
    out = ['"']
    col += 1
    spaces = False
    last = len(s) - 1
    # yaml.v3's is_bom looks at the start of the text, not at the character: a text
    # starting with U+FEFF has every character escaped.
    bom = s.startswith("\ufeff")
    for i, c in enumerate(s):
        if bom or not _printable(c) or c in _BREAKS or c in '"\\':
            esc = _ESCAPES.get(c)
            o = ord(c)
            if esc is None:
                esc = f"x{o:02X}" if o <= 0xFF else (f"u{o:04X}" if o <= 0xFFFF else f"U{o:08X}")
            out.append("\\" + esc)
            col += 1 + len(esc)
            spaces = False
        elif c == " ":
            if breaks and not spaces and col > BEST_WIDTH and 0 < i < last:
                out.append(_indent_break(indent))
                col = indent
                if s[i + 1] == " ":
                    out.append("\\")
                    col += 1
            else:
                out.append(c)
                col += 1
            spaces = True
        else:
            out.append(c)
            col += 1
            spaces = False
    out.append('"')
    return "".join(out)


def _literal(s: str, indent: int) -> str:
    head = "|"
    if s[0] == " " or s[0] in _BREAKS:
        head += "2"
    if s[-1] not in _BREAKS:
        head += "-"
    elif len(s) == 1 or s[-2] in _BREAKS:
        head += "+"
    out = [head, "\n"]
    brk = True
    for c in s:
        if c in _BREAKS:
            out.append(c)
            brk = True
        else:
            if brk:
                out.append(" " * indent)
            out.append(c)
            brk = False
    return "".join(out)


def string(s: str, col: int, indent: int, key: bool = False) -> str:
    """A string written at column ``col`` (its continuation lines at ``indent``)."""
    a = _Analysis(s)
    if key and (a.multiline or len(s.encode()) > 128):
        raise Unsupported(f"a key written as a complex key ({s[:20]!r}...)")
    if "\n" in s:
        style = "literal"
    elif not v3_reads_as_string(s):
        style = "double"
    else:
        style = "plain"
    if key and a.multiline:
        style = "double"
    if style == "plain" and not a.block_plain:
        style = "single"
    if style == "single" and not a.single:
        style = "double"
    if style == "literal" and (not a.block or key):
        style = "double"
    breaks = not key
    if style == "plain":
        return _plain(s, col, indent, breaks)
    if style == "single":
        return _single(s, col, indent, breaks)
    if style == "double":
        return _double(s, col, indent, breaks)
    return _literal(s, indent)


Path = tuple[object, ...]

# Go's math/big text syntax (base 0): underscores only between digits or after a prefix.
_DIGITS = r"[0-9](?:_?[0-9])*"
_GO_BIG_INT = re.compile(
    r"[-+]?(?:0[xX](?:_?[0-9a-fA-F])+|0[bB](?:_?[01])+|0[oO](?:_?[0-7])+|0(?:_?[0-7])*"
    r"|[1-9](?:_?[0-9])*)"
)
_GO_BIG_FLOAT = re.compile(
    rf"[-+]?(?:{_DIGITS}(?:\.(?:{_DIGITS})?)?|\.{_DIGITS})(?:[eE][-+]?{_DIGITS})?"
)


def _spelled(x: Num, text: str) -> str:
    """A number given by a literal as a list element: CUE v0.4 keeps the literal's
    spelling when Go's big.Int/big.Float reads it, else writes literal.ParseNum's text
    (digits without underscores for a decimal, the value otherwise)."""
    go = _GO_BIG_FLOAT if x.kind == FLOAT else _GO_BIG_INT
    if go.fullmatch(text):
        return text
    low = text.lower()
    if low.startswith(("0x", "0o", "0b")) or not all(c in "0123456789_.e+-" for c in low):
        return num_str(x)  # another base or a multiplier: the value
    body = low.replace("_", "")
    return "0" + body if body.startswith(".") else body


def _scalar(x: object, col: int, indent: int, text: str | None = None) -> str | None:
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, Num) and text is not None:
        return _spelled(x, text)
    if isinstance(x, Num):
        text = num_str(x)
        if x.kind == FLOAT and not any(c in text for c in ".eEIN"):
            text += "."  # CUE writes a whole float with a trailing dot
        return text
    if isinstance(x, str):
        return string(x, col, indent)
    if x is NULLV:
        return "null"
    if isinstance(x, bytes):
        try:  # yaml.v3's SetString: valid UTF-8 is a string
            return string(x.decode("utf-8"), col, indent)
        except UnicodeDecodeError:
            return "!!binary " + base64.b64encode(x).decode("ascii")
    if isinstance(x, dict) and not x:
        return "{}"
    if isinstance(x, list) and not x:
        return "[]"
    return None


def _block(x: object, indent: int, out: list[str], path: Path, texts: dict[Path, str]) -> None:
    """Append the lines of a struct or list whose entries start at column ``indent``
    (a scalar's text may hold line breaks; one ending in a break ends its line)."""
    pad = " " * indent
    if isinstance(x, dict):
        for k, v in x.items():
            key = string(k, indent, indent, key=True)
            col = indent + len(key) + 2
            s = _scalar(v, col, indent + 2)
            if s is not None:
                out.append(f"{pad}{key}: {s}")
            else:
                out.append(f"{pad}{key}:")
                sub_indent = indent + 2 if isinstance(v, dict) else indent
                _block(v, sub_indent, out, (*path, k), texts)
        return
    assert isinstance(x, list)
    for i, v in enumerate(x):
        s = _scalar(v, indent + 2, indent + 2, texts.get((*path, i)))
        if s is not None:
            out.append(f"{pad}- {s}")
        else:
            sub: list[str] = []
            _block(v, indent + 2, sub, (*path, i), texts)
            out.append(f"{pad}- {sub[0][indent + 2 :]}")
            out += sub[1:]


def yaml_marshal(x: object, texts: dict[Path, str] | None = None) -> str:
    """The YAML document of data ``x``; ``texts`` holds the source text of the numbers
    given by a literal alone as a list element (or as ``x`` itself, path ``()``)."""
    texts = texts or {}
    s = _scalar(x, 0, 2, texts.get(()))
    lines = [s] if s is not None else []
    if s is None:
        _block(x, 0, lines, (), texts)
    text = ""
    for line in lines:  # a line ending in a break (a literal block's) ends there
        text += line if not text or text[-1] in _BREAKS else "\n" + line
    return text if text[-1] in _BREAKS else text + "\n"


__all__ = ["Unsupported", "string", "v3_reads_as_string", "yaml_marshal"]
