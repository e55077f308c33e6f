"""The part of Go's ``fmt`` (as of Go 1.15, the Go that built CUE v0.4's WebAssembly) that
``text/template`` reaches: ``Sprint``, ``Sprintln`` and ``Sprintf`` of the Go values a
CUE value decodes to.

Go values are Python values: ``None`` (a nil interface), ``bool``, ``int`` (Go ``int``),
:class:`Uint8`, :class:`BigInt` (a ``*big.Int``), ``float`` (``float64``), ``str``,
``bytes`` (``[]uint8``), ``list`` (``[]interface {}``) and ``dict``
(``map[string]interface {}``). A format this module does not reproduce exactly raises
:class:`GoUnsupported`, never prints something else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._pkg_text import _digits, _fmt_e, _fmt_f, _format_b, _format_x, _is_print, _quote


class GoUnsupported(Exception):
    """A corner of Go's behaviour the built-in evaluator does not reproduce."""


class Uint8(int):
    """A Go ``uint8`` (a byte of a string or of a ``[]uint8``)."""


class BigInt:
    """A Go ``*big.Int``: an integer outside int64, as CUE v0.4 decodes it. A pointer:
    two of them are equal (``eq``) only when they are the same object."""

    __slots__ = ("v",)

    def __init__(self, v: int) -> None:
        self.v = v


def type_name(v: object) -> str:
    """Go's ``reflect.Type.String()`` of a value (``%T``)."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, Uint8):
        return "uint8"
    if isinstance(v, int):
        return "int"
    if isinstance(v, BigInt):
        return "*big.Int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, complex):
        return "complex128"
    if isinstance(v, str):
        return "string"
    if isinstance(v, bytes):
        return "[]uint8"
    if isinstance(v, list):
        return "[]interface {}"
    if isinstance(v, dict):
        return "map[string]interface {}"
    raise GoUnsupported(f"a Go value of Python type {type(v).__name__}")


def bytes_text(b: bytes) -> str:
    """A Go string made of bytes ``b`` (only valid UTF-8 is supported)."""
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        raise GoUnsupported("a string that is not valid UTF-8") from None


@dataclass
class _Flags:
    minus: bool = False
    plus: bool = False
    sharp: bool = False
    space: bool = False
    zero: bool = False
    plus_v: bool = False  # %+v (the + flag as a Formatter sees it)
    sharp_v: bool = False  # %#v
    wid: int | None = None
    prec: int | None = None


class _Printer:
    def __init__(self) -> None:
        self.out: list[str] = []
        self.f = _Flags()

    # ------------------------------------------------------------------ padding
    def pad(self, s: str) -> None:
        f = self.f
        if not f.wid:
            self.out.append(s)
            return
        n = f.wid - len(s)
        if n <= 0:
            self.out.append(s)
        elif f.minus:
            self.out.append(s + " " * n)
        else:
            self.out.append(("0" if f.zero else " ") * n + s)

    def fmt_s(self, s: str) -> None:
        if self.f.prec is not None:
            s = s[: self.f.prec]
        self.pad(s)

    # ------------------------------------------------------------------- values
    def bad_verb(self, verb: str, v: object, *, missing_value: bool = False) -> None:
        self.out.append("%!" + verb + "(")
        if v is None and not missing_value:
            self.out.append("<nil>")
        else:
            self.out.append(type_name(v) + "=")
            self.print_arg(v, "v")
        self.out.append(")")

    def go_syntax(self, v: object, depth: int) -> None:
        """%#v: the value as Go source (decoded values only)."""
        out = self.out
        if v is None:
            if depth:
                out.append("interface {}(nil)")
            else:
                self.pad("<nil>")
        elif isinstance(v, Uint8):
            sharp, self.f.sharp = self.f.sharp, True
            self.fmt_integer(v, "x", True)
            self.f.sharp = sharp
        elif isinstance(v, str):
            text = v[: self.f.prec] if self.f.prec is not None else v
            self.pad(_quote(text, '"', _is_print, False))
        elif isinstance(v, bytes):
            if not v:
                raise GoUnsupported("printf's %#v of empty bytes")
            out.append("[]byte{" if depth == 0 else "[]uint8{")
            for i, c in enumerate(v):
                if i:
                    out.append(", ")
                self.go_syntax(Uint8(c), depth + 1)
            out.append("}")
        elif isinstance(v, list):
            if bool(getattr(v, "is_nil", not v)):
                out.append("[]interface {}(nil)")
                return
            out.append("[]interface {}{")
            for i, e in enumerate(v):
                if i:
                    out.append(", ")
                self.go_syntax(e, depth + 1)
            out.append("}")
        elif isinstance(v, dict):
            out.append("map[string]interface {}{")
            for i, k in enumerate(sorted(v, key=lambda k: k.encode())):
                if i:
                    out.append(", ")
                self.go_syntax(k, depth + 1)
                out.append(":")
                self.go_syntax(v[k], depth + 1)
            out.append("}")
        else:  # bool, int, float64, complex128, *big.Int: as %v
            self.f.sharp_v = False
            self.print_arg(v, "v", depth)
            self.f.sharp_v = True

    def print_arg(self, v: object, verb: str, depth: int = 0) -> None:
        if verb == "v" and self.f.sharp_v:
            self.go_syntax(v, depth)
            return
        if v is None:
            if depth > 0 or verb in ("T", "v"):
                self.pad("<nil>")
            else:
                self.bad_verb(verb, None)
            return
        if verb == "T" and depth == 0:
            self.fmt_s(type_name(v))
            return
        if verb == "p":
            raise GoUnsupported("printf's %p")
        if isinstance(v, bool):
            if verb in "tv":
                self.pad("true" if v else "false")
            else:
                self.bad_verb(verb, v)
        elif isinstance(v, int):
            self.fmt_integer(v, verb, isinstance(v, Uint8))
        elif isinstance(v, BigInt):
            self.fmt_big(v, verb)
        elif isinstance(v, float):
            self.fmt_float(v, verb)
        elif isinstance(v, complex):
            self.fmt_complex(v, verb)
        elif isinstance(v, str):
            self.fmt_string(v, verb)
        elif isinstance(v, bytes):
            self.fmt_bytes(v, verb, depth)
        elif isinstance(v, list):
            self.out.append("[")
            for i, e in enumerate(v):
                if i:
                    self.out.append(" ")
                self.print_arg(e, verb, depth + 1)
            self.out.append("]")
        elif isinstance(v, dict):
            self.out.append("map[")
            for i, k in enumerate(sorted(v, key=lambda k: k.encode())):
                if i:
                    self.out.append(" ")
                self.print_arg(k, verb, depth + 1)
                self.out.append(":")
                self.print_arg(v[k], verb, depth + 1)
            self.out.append("]")
        else:
            raise GoUnsupported(f"printing a {type_name(v)}")

    def fmt_integer(self, v: int, verb: str, unsigned: bool) -> None:
        base = {"v": 10, "d": 10, "b": 2, "o": 8, "O": 8, "x": 16, "X": 16}.get(verb)
        if base is None:
            if verb == "c":
                self.pad(_rune_text(v))
            elif verb == "U":
                if self.f.sharp or self.f.prec is not None:
                    raise GoUnsupported("printf's %U with flags")
                self.pad(f"U+{v:04X}" if v >= 0 else "U+" + f"{v & (2**64 - 1):X}")
            elif verb == "q":
                if not 0 <= v <= 0x10FFFF:
                    self.bad_verb(verb, v)
                    return
                if self.f.sharp or self.f.plus:
                    raise GoUnsupported("printf's %q of a rune with flags")
                self.pad(_quote(_rune_text(v), "'", _is_print, False))
            else:
                self.bad_verb(verb, v)
            return
        f = self.f
        neg = v < 0 and not unsigned
        u = abs(v)
        prec = 0
        if f.prec is not None:
            prec = f.prec
            if prec == 0 and u == 0:
                self.out.append(" " * (f.wid or 0))
                return
        elif f.zero and f.wid is not None:
            prec = f.wid
            if neg or f.plus or f.space:
                prec -= 1
        digits = _to_base(u, base, verb == "X").rjust(prec, "0")
        if f.sharp:
            if base == 2:
                digits = "0b" + digits
            elif base == 8 and not digits.startswith("0"):
                digits = "0" + digits
            elif base == 16:
                digits = ("0X" if verb == "X" else "0x") + digits
        if verb == "O":
            digits = "0o" + digits
        sign = "-" if neg else "+" if f.plus else " " if f.space else ""
        zero, f.zero = f.zero, False
        self.pad(sign + digits)
        f.zero = zero

    def fmt_big(self, v: BigInt, verb: str) -> None:
        """big.Int's Format (its own flags: ``+`` is set by ``%+v`` too)."""
        f = self.f
        if verb not in "vds" or f.sharp or f.zero or f.prec is not None:
            raise GoUnsupported(f"printf's %{verb} (with these flags) of a *big.Int")
        sign = "-" if v.v < 0 else "+" if f.plus or f.plus_v else " " if f.space else ""
        self.pad(sign + str(abs(v.v)))

    def fmt_float(self, v: float, verb: str) -> None:
        f = self.f
        if verb == "v":
            verb, prec = "g", -1
        elif verb in "gG":
            prec = -1
        elif verb in "eEfF":
            prec = 6
        elif verb in "bxX":
            prec = -1
        else:
            self.bad_verb(verb, v)
            return
        if f.sharp:
            raise GoUnsupported("printf's # flag with a float64")
        if f.prec is not None:
            prec = f.prec
        num = format_float(v, "f" if verb == "F" else verb, prec)
        if not num.startswith("-"):
            num = "+" + num
        if f.space and num[0] == "+" and not f.plus:
            num = " " + num[1:]
        if f.plus or num[0] != "+":
            if f.zero and f.wid is not None and f.wid > len(num):
                self.out.append(num[0] + "0" * (f.wid - len(num)) + num[1:])
                return
            self.pad(num)
            return
        self.pad(num[1:])

    def fmt_complex(self, v: complex, verb: str) -> None:
        """Go's fmtComplex: (real+imagi), the imaginary part always signed."""
        if verb not in "vbgGxXfFeE":
            self.bad_verb(verb, v)
            return
        plus = self.f.plus
        self.out.append("(")
        self.fmt_float(v.real, verb)
        self.f.plus = True
        self.fmt_float(v.imag, verb)
        self.out.append("i)")
        self.f.plus = plus

    def fmt_string(self, s: str, verb: str) -> None:
        if verb in "vs":
            self.fmt_s(s)
        elif verb in "xX":
            self.fmt_hex(s.encode(), verb)
        elif verb == "q":
            if self.f.sharp:
                raise GoUnsupported("printf's %#q")
            if self.f.prec is not None:
                s = s[: self.f.prec]
            self.pad(_quote(s, '"', _is_print, self.f.plus))
        else:
            self.bad_verb(verb, s)

    def fmt_hex(self, b: bytes, verb: str) -> None:
        """Go's fmtSbx: ``#`` adds 0x (before each byte with the space flag, which
        separates them); the width pads the whole encoding."""
        f = self.f
        if f.prec is not None:
            b = b[: f.prec]
        x = "X" if verb == "X" else "x"
        if not b:
            self.out.append(("0" if f.zero else " ") * (f.wid or 0))
            return
        parts = [f"{c:02{x}}" for c in b]
        if f.space:
            text = " ".join(("0" + x if f.sharp else "") + p for p in parts)
        else:
            text = ("0" + x if f.sharp else "") + "".join(parts)
        pad = ("0" if f.zero else " ") * max((f.wid or 0) - len(text), 0)
        self.out.append(text + pad if f.minus else pad + text)

    def fmt_bytes(self, b: bytes, verb: str, depth: int) -> None:
        if verb in "vd":
            self.out.append("[")
            for i, c in enumerate(b):
                if i:
                    self.out.append(" ")
                self.fmt_integer(Uint8(c), verb, True)
            self.out.append("]")
        elif verb == "s":
            self.fmt_s(bytes_text(b))
        elif verb in "xX":
            self.fmt_hex(b, verb)
        elif verb == "q":
            self.fmt_string(bytes_text(b), verb)
        else:  # each byte as a uint8
            self.out.append("[")
            for i, c in enumerate(b):
                if i:
                    self.out.append(" ")
                self.fmt_integer(Uint8(c), verb, True)
            self.out.append("]")


def _rune_text(v: int) -> str:
    if not 0 <= v <= 0x10FFFF or 0xD800 <= v <= 0xDFFF:
        return "\ufffd"
    return chr(v)


def _to_base(u: int, base: int, upper: bool) -> str:
    if base == 10:
        return str(u)
    text = format(u, {2: "b", 8: "o", 16: "x"}[base])
    return text.upper() if upper else text


def format_float(v: float, verb: str, prec: int) -> str:
    """Go's ``strconv.FormatFloat(v, verb, prec, 64)`` for verbs b, e, E, f, g, G, x, X."""
    if math.isinf(v) or math.isnan(v):
        raise GoUnsupported("an infinite or NaN float64")
    if verb == "b":
        return _format_b(v, 64)
    if verb in "xX":
        return _format_x(v, prec, verb == "X")
    neg = math.copysign(1.0, v) < 0
    if prec < 0:
        ds, point = _digits(v, 64)
    else:
        if verb in "eE":
            text = f"{abs(v):.{prec}e}"
        elif verb == "f":
            text = f"{abs(v):.{prec}f}"
        else:
            text = f"{abs(v):.{max(prec, 1) - 1}e}"
        mant, _, exp_text = text.partition("e")
        ds = mant.replace(".", "")
        point = (int(exp_text) + 1) if exp_text else len(mant.split(".")[0])
        if set(ds) == {"0"}:
            point = 1
    if verb in "eE":
        return _fmt_e(neg, ds, point, prec, verb == "E")
    if verb == "f":
        return _fmt_f(neg, ds, point, prec)
    eprec = 6 if prec < 0 else max(prec, 1)
    if prec >= 0:
        ds = ds.rstrip("0") or "0"
        if eprec > len(ds) and len(ds) >= point:
            eprec = len(ds)
    exp = point - 1
    if exp < -4 or exp >= eprec:
        return _fmt_e(neg, ds, point, -1, verb == "G")
    return _fmt_f(neg, ds, point, -1 if prec < 0 else max(len(ds) - point, 0))


def sprint(args: list[object]) -> str:
    """Go's fmt.Sprint: a space between two operands when neither is a string."""
    p = _Printer()
    prev_string = False
    for i, a in enumerate(args):
        is_string = isinstance(a, str)
        if i > 0 and not is_string and not prev_string:
            p.out.append(" ")
        p.print_arg(a, "v")
        prev_string = is_string
    return "".join(p.out)


def sprintln(args: list[object]) -> str:
    """Go's fmt.Sprintln: spaces between all operands, a newline at the end."""
    p = _Printer()
    for i, a in enumerate(args):
        if i:
            p.out.append(" ")
        p.print_arg(a, "v")
    return "".join(p.out) + "\n"


def _parse_num(s: str, i: int, end: int | None = None) -> tuple[int | None, int]:
    """Go's parsenum: digits from ``i``; a number growing past 1e6 before its last
    digit gives up at the end of the text."""
    end = len(s) if end is None else end
    j, n = i, 0
    while j < end and "0" <= s[j] <= "9":
        if n > 1_000_000:
            return None, end
        n = n * 10 + ord(s[j]) - 48
        j += 1
    if j == i:
        return None, i
    if n > 1_000_000:
        raise GoUnsupported("printf with a width or precision beyond a million")
    return n, j


def _int_from_arg(args: list[object], k: int) -> tuple[int | None, int]:
    if k >= len(args):
        return None, k
    a = args[k]
    if isinstance(a, int) and not isinstance(a, bool) and abs(a) <= 1_000_000:
        return a, k + 1
    return None, k + 1


def _parse_arg_number(text: str) -> tuple[int, int, bool]:
    """Go's parseArgNumber of ``[n]...``: (index, width of the bracket, ok)."""
    if len(text) < 3:
        return 0, 1, False
    j = text.find("]", 1)
    if j < 0:
        return 0, 1, False
    num, newi = _parse_num(text, 1, j)
    if num is None or newi != j:
        return 0, j + 1, False
    return num - 1, j + 1, True


def sprintf(fmt: str, args: list[object]) -> str:
    """Go's fmt.Sprintf (doPrintf: flags, width, precision, ``*``, ``%[n]`` indexes)."""
    p = _Printer()
    out = p.out
    k = 0
    i = 0
    end = len(fmt)
    reordered = False

    def arg_number(k: int, i: int) -> tuple[int, int, bool, bool]:
        """(argument, position, an index was there, it was good)."""
        nonlocal reordered
        if i >= end or fmt[i] != "[":
            return k, i, False, True
        reordered = True
        index, wid, ok = _parse_arg_number(fmt[i:])
        if ok and 0 <= index < len(args):
            return index, i + wid, True, True
        return k, i + wid, ok, False

    while i < end:
        j = fmt.find("%", i)
        if j < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:j])
        i = j + 1
        f = p.f = _Flags()
        while i < end and fmt[i] in "#0+- ":
            c = fmt[i]
            if c == "#":
                f.sharp = True
            elif c == "0":
                f.zero = not f.minus
            elif c == "+":
                f.plus = True
            elif c == "-":
                f.minus, f.zero = True, False
            else:
                f.space = True
            i += 1
        k, i, after_index, good = arg_number(k, i)
        if i < end and fmt[i] == "*":
            i += 1
            f.wid, k = _int_from_arg(args, k)
            if f.wid is None:
                out.append("%!(BADWIDTH)")
            elif f.wid < 0:
                f.wid, f.minus, f.zero = -f.wid, True, False
            after_index = False
        else:
            f.wid, i = _parse_num(fmt, i)
            if after_index and f.wid is not None:  # "%[3]2d"
                good = False
        if i + 1 < end and fmt[i] == ".":
            i += 1
            if after_index:  # "%[3].2d"
                good = False
            k, i, after_index, good2 = arg_number(k, i)
            good = good and good2
            if i < end and fmt[i] == "*":
                i += 1
                f.prec, k = _int_from_arg(args, k)
                if f.prec is not None and f.prec < 0:
                    f.prec = None
                if f.prec is None:
                    out.append("%!(BADPREC)")
                after_index = False
            else:
                f.prec, i = _parse_num(fmt, i)
                if f.prec is None:
                    f.prec = 0
        if not after_index:
            k, i, after_index, good2 = arg_number(k, i)
            good = good and good2
        if i >= end:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
        elif not good:
            out.append(f"%!{verb}(BADINDEX)")
        elif k >= len(args):
            out.append(f"%!{verb}(MISSING)")
        else:
            if verb == "v":
                f.sharp_v, f.sharp = f.sharp, False  # %#v: Go syntax
                f.plus_v, f.plus = f.plus, False  # %+v: struct field names (none here)
            p.print_arg(args[k], verb)
            k += 1
    if not reordered and k < len(args):
        p.f = _Flags()
        out.append("%!(EXTRA ")
        for n, a in enumerate(args[k:]):
            if n:
                out.append(", ")
            if a is None:
                out.append("<nil>")
            else:
                out.append(type_name(a) + "=")
                p.print_arg(a, "v")
        out.append(")")
    return "".join(out)


__all__ = [
    "BigInt",
    "GoUnsupported",
    "Uint8",
    "bytes_text",
    "format_float",
    "sprint",
    "sprintf",
    "sprintln",
    "type_name",
]
