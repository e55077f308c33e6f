"""Tokenizer for CUE source text, including automatic comma insertion and string
interpolation (the tokens of each ``\\(...)`` are lexed in place)."""

from __future__ import annotations

import bisect
import re
from decimal import Decimal

from ._errors import Pos, syntax_error

# Token kinds.
IDENT = "IDENT"
INT = "INT"
FLOAT = "FLOAT"
STRING = "STRING"
# A byte string ('...'): its text parts hold one character per byte (code points below
# 256), so that ``part.encode("latin-1")`` gives the bytes.
BYTES = "BYTES"
BOTTOM = "_|_"
ATTR = "ATTR"
EOF = "EOF"
COMMA = ","

_OPERATORS = (
    "...",
    "&&",
    "||",
    "==",
    "!=",
    "<=",
    ">=",
    "=~",
    "!~",
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    ",",
    ":",
    "?",
    ".",
    "=",
    "&",
    "|",
    "<",
    ">",
    "+",
    "-",
    "*",
    "/",
    "!",
)

# Operators by first character, longest first.
_OPS_BY_CHAR: dict[str, tuple[str, ...]] = {}
for _op in _OPERATORS:
    _OPS_BY_CHAR[_op[0]] = tuple(
        sorted((*_OPS_BY_CHAR.get(_op[0], ()), _op), key=len, reverse=True)
    )
_WS_RE = re.compile(r"[ \t\r]+")

# Tokens after which a newline (or end of file) inserts a comma.
_COMMA_AFTER_PUNCT = frozenset({")", "]", "}", "?", "..."})

_IDENT_RE = re.compile(r"(?:_?#)?[A-Za-z_$\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*")
_NUM_RE = re.compile(
    r"""
    0[xX]_?[0-9a-fA-F](?:_?[0-9a-fA-F])*
  | 0[oO]_?[0-7](?:_?[0-7])*
  | 0[bB]_?[01](?:_?[01])*
  | (?P<dec>
        (?:[0-9](?:_?[0-9])*)?
        (?:\.(?:[0-9](?:_?[0-9])*)?)?
        (?:[eE][+-]?[0-9](?:_?[0-9])*)?
    )
    """,
    re.VERBOSE,
)
_SI_RE = re.compile(r"[KMGTP]i?")
_SI_FACTORS = {"K": 1, "M": 2, "G": 3, "T": 4, "P": 5}

_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "/": "/",
    "\\": "\\",
}


class Token:
    __slots__ = ("implicit", "kind", "parts", "pos", "text", "val")

    def __init__(self, kind: str, val: object, pos: Pos, parts: list | None = None) -> None:
        self.kind = kind
        self.val = val
        self.pos = pos
        self.parts = parts
        self.implicit = False
        self.text: str | None = None  # a number's source text (yaml.Marshal writes it)

    def __repr__(self) -> str:
        return f"Token({self.kind}, {self.val!r}, {self.pos})"


class Lexer:
    """Turns source text into a list of tokens."""

    def __init__(self, src: str, filename: str) -> None:
        if src.startswith("\ufeff"):
            src = src[1:]
        self.src = src
        self.filename = filename
        self.n = len(src)
        # Offsets of line starts, for position computation.
        self.line_starts = [0]
        for m in re.finditer("\n", src):
            self.line_starts.append(m.end())
        self._line = 0

    def pos(self, offset: int) -> Pos:
        starts = self.line_starts
        i = self._line
        # Offsets mostly grow: try the current line and the next before searching.
        if not (starts[i] <= offset and (i + 1 == len(starts) or offset < starts[i + 1])):
            i = bisect.bisect_right(starts, offset) - 1
            self._line = i
        return Pos(self.filename, i + 1, offset - starts[i] + 1)

    # ------------------------------------------------------------------ tokens
    def tokenize(self) -> list[Token]:
        bom = self.src.find("\ufeff")
        if bom >= 0:  # allowed only as the file's first character, as in CUE's scanner
            raise syntax_error(self.pos(bom), "illegal byte order mark")
        tokens, end = self._scan(0, interp=False)
        assert end == self.n
        return tokens

    def _scan(self, i: int, interp: bool) -> tuple[list[Token], int]:
        """Scan tokens from offset ``i``. In interpolation mode, stop at the ``)`` that
        closes the interpolation and return the offset after it."""
        src = self.src
        n = self.n
        tokens: list[Token] = []
        depth = 0
        comma_ok = False  # whether a newline here inserts a comma

        def newline(at: int) -> None:
            nonlocal comma_ok
            if comma_ok and not interp:
                t = Token(COMMA, ",", self.pos(at))
                t.implicit = True
                tokens.append(t)
            comma_ok = False

        while True:
            if i >= n:
                if interp:
                    raise syntax_error(self.pos(n), "unterminated string interpolation")
                newline(n)
                tokens.append(Token(EOF, None, self.pos(n)))
                return tokens, n
            c = src[i]
            if c == "\n":
                newline(i)
                i += 1
                continue
            if c in " \t\r":
                i = _WS_RE.match(src, i).end()  # type: ignore[union-attr]
                continue
            if c == "/" and src.startswith("//", i):
                j = src.find("\n", i)
                if j < 0:
                    j = n
                newline(i)
                i = j
                continue
            if c == "/" and src.startswith("/*", i):
                raise syntax_error(self.pos(i), "block comments are not CUE syntax; use //")
            start = i
            # Strings (optionally raw with #).
            if c == '"' or c == "'" or (c == "#" and self._raw_string_start(i)):
                tok, i = self._string(i)
                tokens.append(tok)
                comma_ok = True
                continue
            if c == "_" and src.startswith("_|_", i):
                tokens.append(Token(BOTTOM, "_|_", self.pos(i)))
                i += 3
                comma_ok = True
                continue
            if c == "@":
                tok, i = self._attribute(i)
                tokens.append(tok)
                continue
            m = _IDENT_RE.match(src, i)
            if m is not None and not c.isdigit():
                word = m.group(0)
                tokens.append(Token(IDENT, word, self.pos(i)))
                i = m.end()
                comma_ok = True
                continue
            if c.isdigit() or (c == "." and i + 1 < n and src[i + 1].isdigit() and not comma_ok):
                tok, i = self._number(i)
                tokens.append(tok)
                comma_ok = True
                continue
            for op in _OPS_BY_CHAR.get(c, ()):
                if src.startswith(op, i):
                    break
            else:
                raise syntax_error(self.pos(i), f"illegal character {c!r}")
            if interp:
                if op == "(":
                    depth += 1
                elif op == ")":
                    if depth == 0:
                        return [*tokens, Token(EOF, None, self.pos(i))], i + 1
                    depth -= 1
            tokens.append(Token(op, op, self.pos(start)))
            i += len(op)
            comma_ok = op in _COMMA_AFTER_PUNCT

    def _attribute(self, i: int) -> tuple[Token, int]:
        src = self.src
        m = _IDENT_RE.match(src, i + 1)
        if m is None or m.end() >= self.n or src[m.end()] != "(":
            raise syntax_error(self.pos(i), "invalid attribute")
        j = m.end()
        depth = 0
        while j < self.n:
            ch = src[j]
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth -= 1
                if depth == 0:
                    return Token(ATTR, src[i : j + 1], self.pos(i)), j + 1
            elif ch == '"':
                k = j + 1
                while k < self.n and src[k] != '"':
                    k += 2 if src[k] == "\\" else 1
                j = k
            elif ch == "\n":
                break
            j += 1
        raise syntax_error(self.pos(i), "unterminated attribute")

    def _number(self, i: int) -> tuple[Token, int]:
        tok, end = self._number_value(i)
        tok.text = self.src[i:end]
        return tok, end

    def _number_value(self, i: int) -> tuple[Token, int]:
        src = self.src
        pos = self.pos(i)
        m = _NUM_RE.match(src, i)
        assert m is not None
        text = m.group(0)
        end = m.end()
        if text.endswith(".") and src.startswith("..", end - 1):
            # `1...` is not a float: the dot belongs to an ellipsis.
            text = text[:-1]
            end -= 1
        body = text.replace("_", "")
        si = _SI_RE.match(src, end)
        if si is not None and not _ident_continues(src, si.end()):
            mult = si.group(0)
            if m.group("dec") is None or "e" in body.lower():
                raise syntax_error(pos, f"invalid number literal {text + mult}")
            base = 1024 if mult.endswith("i") else 1000
            value = Decimal(body) * (base ** _SI_FACTORS[mult[0]])
            return Token(INT, int(value), pos), si.end()
        if _ident_continues(src, end):
            raise syntax_error(pos, f"invalid number literal starting with {text!r}")
        low = body.lower()
        if low.startswith("0x"):
            return Token(INT, int(body[2:], 16), pos), end
        if low.startswith("0o"):
            return Token(INT, int(body[2:], 8), pos), end
        if low.startswith("0b"):
            return Token(INT, int(body[2:], 2), pos), end
        if "." in body or "e" in low:
            return Token(FLOAT, Decimal(body if not body.startswith(".") else "0" + body), pos), end
        if len(body) > 1 and body.startswith("0"):
            # CUE reads 0755 as an error-prone octal; reject like `cue` does.
            raise syntax_error(pos, f"illegal integer number {text!r}: use 0o for octal")
        return Token(INT, int(body), pos), end

    # ----------------------------------------------------------------- strings
    def _raw_string_start(self, i: int) -> bool:
        j = i
        while j < self.n and self.src[j] == "#":
            j += 1
        return j < self.n and self.src[j] in "\"'" and j > i

    def string_at(self, i: int) -> tuple[Token, int]:
        """The string or bytes literal starting at offset ``i`` and the offset after it."""
        return self._string(i)

    def _string(self, i: int) -> tuple[Token, int]:
        src = self.src
        start = i
        hashes = 0
        while src[i] == "#":
            hashes += 1
            i += 1
        quote = src[i]
        pos = self.pos(start)
        if src.startswith(quote * 3, i):
            return self._multiline(start, i + 3, hashes, pos, quote)
        i += 1
        close = quote + "#" * hashes
        esc = "\\" + "#" * hashes
        parts: list[object] = []
        buf: list[str] = []
        while True:
            if i >= self.n or src[i] == "\n":
                raise syntax_error(pos, "string literal not terminated")
            if src.startswith(close, i):
                i += len(close)
                break
            if src.startswith(esc, i):
                i = self._escape(i + len(esc), buf, parts, pos, quote)
                continue
            self._char(src[i], buf, quote)
            i += 1
        if buf or not parts:
            parts.append("".join(buf))
        return _string_token(parts, pos, quote), i

    @staticmethod
    def _char(ch: str, buf: list[str], quote: str) -> None:
        if quote == "'" and ord(ch) > 0x7F:
            buf.append(ch.encode().decode("latin-1"))
        else:
            buf.append(ch)

    def _escape(self, i: int, buf: list[str], parts: list[object], pos: Pos, quote: str) -> int:
        """Process an escape whose delimiter ended just before offset ``i``. Byte strings
        also have ``\\'``, ``\\xHH`` and octal ``\\OOO`` escapes, strings ``\\"``."""
        src = self.src
        if i >= self.n:
            raise syntax_error(pos, "string literal not terminated")
        c = src[i]
        if c in _SIMPLE_ESCAPES:
            buf.append(_SIMPLE_ESCAPES[c])
            return i + 1
        if c == quote:
            buf.append(quote)
            return i + 1
        if quote == "'" and (c == "x" or c in "01234567"):
            width, base = (2, 16) if c == "x" else (3, 8)
            first = i + 1 if c == "x" else i
            digits = src[first : first + width]
            allowed = "0123456789abcdefABCDEF" if base == 16 else "01234567"
            if len(digits) != width or not all(ch in allowed for ch in digits):
                raise syntax_error(self.pos(i), "invalid byte escape sequence")
            code = int(digits, base)
            if code > 0xFF:
                raise syntax_error(self.pos(i), "octal escape value > 255")
            buf.append(chr(code))
            return first + width
        if c == "u" or c == "U":
            width = 4 if c == "u" else 8
            digits = src[i + 1 : i + 1 + width]
            if len(digits) != width or not all(ch in "0123456789abcdefABCDEF" for ch in digits):
                raise syntax_error(self.pos(i), "invalid unicode escape sequence")
            code = int(digits, 16)
            if code > 0x10FFFF or 0xD800 <= code < 0xE000:
                raise syntax_error(self.pos(i), "escape sequence is invalid Unicode code point")
            self._char(chr(code), buf, quote)
            return i + 1 + width
        if c == "(":
            toks, end = self._scan(i + 1, interp=True)
            if buf:
                parts.append("".join(buf))
                buf.clear()
            parts.append(toks)
            return end
        if c == "\n":
            raise syntax_error(self.pos(i), "unknown escape sequence")
        raise syntax_error(self.pos(i), f"unknown escape sequence \\{c}")

    def _multiline(
        self, start: int, i: int, hashes: int, pos: Pos, quote: str
    ) -> tuple[Token, int]:
        src = self.src
        # The opening quotes must be followed by a newline.
        j = i
        while j < self.n and src[j] in " \t\r":
            j += 1
        if j >= self.n or src[j] != "\n":
            raise syntax_error(pos, f"expected newline after multiline quote {quote * 3}")
        body_start = j + 1
        close = quote * 3 + "#" * hashes
        # Find the closing line: optional whitespace then the closing quotes.
        k = body_start
        close_line = -1
        while k <= self.n:
            line_end = src.find("\n", k)
            if line_end < 0:
                line_end = self.n
            stripped = src[k:line_end].lstrip(" \t")
            if stripped.startswith(close):
                close_line = k
                break
            if line_end >= self.n:
                break
            k = line_end + 1
        if close_line < 0:
            raise syntax_error(pos, "multiline string literal not terminated")
        close_end = src.find("\n", close_line)
        line_text = src[close_line : close_end if close_end >= 0 else self.n]
        indent = line_text[: len(line_text) - len(line_text.lstrip(" \t"))]
        close_at = close_line + len(indent)
        esc = "\\" + "#" * hashes
        parts: list[object] = []
        buf: list[str] = []
        i = body_start
        at_line_start = True
        while i < close_at:
            if at_line_start:
                at_line_start = False
                if src.startswith(indent, i):
                    i += len(indent)
                else:
                    rest = src[i : src.find("\n", i)] if src.find("\n", i) >= 0 else src[i:]
                    if rest.strip(" \t\r") != "":
                        raise syntax_error(self.pos(i), "invalid whitespace in multiline string")
                    i += len(rest)
                continue
            if i >= close_at:
                break
            ch = src[i]
            if ch == "\n":
                buf.append("\n")
                i += 1
                at_line_start = True
                continue
            if ch == "\r":
                i += 1
                continue
            if src.startswith(esc, i):
                i = self._escape(i + len(esc), buf, parts, pos, quote)
                continue
            self._char(ch, buf, quote)
            i += 1
        # The newline before the closing quotes is not part of the string.
        if buf and buf[-1] == "\n":
            buf.pop()
        elif not buf and parts and isinstance(parts[-1], str) and parts[-1].endswith("\n"):
            parts[-1] = parts[-1][:-1]
        if buf or not parts:
            parts.append("".join(buf))
        return _string_token(parts, pos, quote), close_at + len(close)


def _ident_continues(src: str, i: int) -> bool:
    return i < len(src) and (src[i].isalnum() or src[i] in "_$")


def _string_token(parts: list[object], pos: Pos, quote: str) -> Token:
    kind = BYTES if quote == "'" else STRING
    if len(parts) == 1 and isinstance(parts[0], str):
        return Token(kind, parts[0], pos)
    return Token(kind, None, pos, parts=parts)


def tokenize(src: str, filename: str) -> list[Token]:
    return Lexer(src, filename).tokenize()
