"""Builtin functions and the standard packages configs use (``list``, ``math``,
``strings``), with CUE v0.4 semantics (decimal arithmetic at 24 digits, results that
are integral get the int kind)."""

from __future__ import annotations

import decimal
import math
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ._errors import CueError, Pos, unsupported
from ._values import (
    BOOL,
    BYTES,
    CTX,
    EXACT,
    FLOAT,
    INT,
    NULLV,
    NUMBER,
    STRING,
    TOP,
    BasicType,
    Bottom,
    Bound,
    Num,
    compare_nums,
    error,
    incomplete,
    int_div,
    make_int,
)

if TYPE_CHECKING:
    from ._eval import Evaluator


class Builtin:
    __slots__ = ("fn", "name", "nargs")

    def __init__(self, name: str, nargs: int | tuple[int, int], fn: Callable[..., object]) -> None:
        self.name = name
        self.nargs = nargs if isinstance(nargs, tuple) else (nargs, nargs)
        self.fn = fn

    def __repr__(self) -> str:
        return self.name


class _ArgError(Exception):
    def __init__(self, bottom: Bottom) -> None:
        super().__init__()
        self.bottom = bottom


class _Call:
    """Argument access for one builtin call."""

    def __init__(self, ev: Evaluator, fn: Builtin, args: list[object], pos: Pos) -> None:
        self.ev = ev
        self.fn = fn
        self.args = args
        self.pos = pos

    def fail(self, msg: str) -> _ArgError:
        return _ArgError(error(f"error in call to {self.fn.name}: {msg}", self.pos))

    def raw(self, i: int) -> object:
        v = self.args[i]
        if isinstance(v, Bottom):
            raise _ArgError(v)
        if v is TOP or isinstance(v, (BasicType, Bound)):
            raise _ArgError(incomplete(f"non-concrete argument {i} to {self.fn.name}", self.pos))
        return v

    def num(self, i: int) -> Num:
        v = self.raw(i)
        if not isinstance(v, Num):
            raise self.fail(f"argument {i} must be a number")
        return v

    def integer(self, i: int) -> int:
        v = self.num(i)
        if v.kind != INT:
            raise self.fail(f"argument {i} must be an int")
        return int(v.d)

    def string(self, i: int) -> str:
        v = self.raw(i)
        if not isinstance(v, str):
            raise self.fail(f"argument {i} must be a string")
        return v

    def data(self, i: int) -> object:
        v = self.raw(i)
        d = self.ev.to_data_value(v, self.pos)
        if isinstance(d, Bottom):
            raise _ArgError(d)
        return d

    def items(self, i: int) -> list[Any]:
        d = self.data(i)
        if not isinstance(d, list):
            raise self.fail(f"argument {i} must be a list")
        return d

    def nums(self, i: int) -> list[Num]:
        items = self.items(i)
        for x in items:
            if not isinstance(x, Num):
                raise self.fail(f"argument {i} must be a list of numbers")
        return items

    def strings(self, i: int) -> list[str]:
        items = self.items(i)
        for x in items:
            if not isinstance(x, str):
                raise self.fail(f"argument {i} must be a list of strings")
        return items


def call(ev: Evaluator, fn: Builtin, args: list[object], pos: Pos) -> object:
    lo, hi = fn.nargs
    if not lo <= len(args) <= hi:
        want = str(lo) if lo == hi else f"{lo} to {hi}"
        return error(f"{fn.name}: got {len(args)} arguments, want {want}", pos)
    c = _Call(ev, fn, args, pos)
    try:
        out = fn.fn(c)
    except _ArgError as e:
        b = e.bottom
        return b if b.pos is not None else Bottom(b.code, b.msg, pos)
    except (
        decimal.InvalidOperation,
        decimal.DivisionByZero,
        decimal.Overflow,
        ValueError,
        OverflowError,
    ):
        return error(f"error in call to {fn.name}: invalid operation", pos)
    if isinstance(out, Bottom) and out.pos is None:
        return Bottom(out.code, out.msg, pos)
    return wrap(out)


def wrap(out: object) -> object:
    from ._eval import DataVal

    if isinstance(out, (list, dict)):
        return DataVal(out)
    return out


def dec_result(d: Decimal) -> Num:
    """A decimal computed by a builtin: int kind if integral, as CUE converts it."""
    if d.is_finite() and d == d.to_integral_value():
        return Num(INT, d)
    return Num(FLOAT, d)


def float_result(f: float) -> Num:
    if math.isnan(f) or math.isinf(f):
        raise ValueError("not finite")
    text = repr(f)
    if text.endswith(".0"):
        text = text[:-2]
    return dec_result(Decimal(text))


# ------------------------------------------------------------------ predeclared
_INT_BOUNDS = {
    "uint": (0, None),
    "uint8": (0, 255),
    "int8": (-128, 127),
    "uint16": (0, 65535),
    "int16": (-32768, 32767),
    "rune": (0, 0x10FFFF),
    "uint32": (0, 4294967295),
    "int32": (-2147483648, 2147483647),
    "uint64": (0, 18446744073709551615),
    "int64": (-9223372036854775808, 9223372036854775807),
    "uint128": (0, 340282366920938463463374607431768211455),
    "int128": (-170141183460469231731687303715884105728, 170141183460469231731687303715884105727),
}
_FLOAT_BOUNDS = {
    "float32": Decimal("3.40282346638528859811704183484516925440e+38"),
    "float64": Decimal("1.797693134862315708145274237317043567981e+308"),
}
_TYPES = {
    "int": INT,
    "float": FLOAT,
    "number": NUMBER,
    "string": STRING,
    "bool": BOOL,
    "bytes": BYTES,
}


def _len(c: _Call) -> object:
    from ._eval import DataVal, Vertex

    v = c.raw(0)
    if isinstance(v, str):
        return make_int(len(v.encode()))
    if isinstance(v, DataVal):
        return make_int(len(v.data))  # type: ignore[arg-type]
    if isinstance(v, Vertex):
        if v.is_list:
            return make_int(sum(1 for k in v.arcs if isinstance(k, int)))
        if v.is_struct:
            from ._ast import label_is_regular

            return make_int(
                sum(1 for k, a in v.arcs.items() if label_is_regular(k) and not a.optional)
            )
    raise c.fail("invalid argument (must be list, struct, string or bytes)")


def _intop(name: str) -> Callable[[_Call], object]:
    def f(c: _Call) -> object:
        return int_div(name, c.num(0), c.num(1))

    return f


_FUNCS: dict[str, Builtin] = {
    "len": Builtin("len", 1, _len),
    "div": Builtin("div", 2, _intop("div")),
    "mod": Builtin("mod", 2, _intop("mod")),
    "quo": Builtin("quo", 2, _intop("quo")),
    "rem": Builtin("rem", 2, _intop("rem")),
}


def builtin_value(name: str, pos: Pos) -> object:
    if name in _TYPES:
        return BasicType(_TYPES[name])
    if name in _INT_BOUNDS:
        lo, hi = _INT_BOUNDS[name]
        parts: list[object] = [BasicType(INT), Bound(">=", make_int(lo))]
        if hi is not None:
            parts.append(Bound("<=", make_int(hi)))
        return tuple(parts)
    if name in _FLOAT_BOUNDS:
        m = _FLOAT_BOUNDS[name]
        return (BasicType(NUMBER), Bound(">=", Num(FLOAT, -m)), Bound("<=", Num(FLOAT, m)))
    if name in _FUNCS:
        return _FUNCS[name]
    raise unsupported(pos, f"builtin {name}")


# ------------------------------------------------------------------------ math
def _ln(d: Decimal) -> Decimal:
    if d <= 0:
        raise ValueError("log of non-positive number")
    return CTX.ln(d)


def _log10(d: Decimal) -> Decimal:
    if d <= 0:
        raise ValueError("log of non-positive number")
    hi = decimal.Context(prec=CTX.prec + 6, rounding=decimal.ROUND_HALF_EVEN)
    q = hi.divide(hi.ln(d), hi.ln(Decimal(10)))
    return CTX.plus(q)


def _integral(d: Decimal, rounding: str) -> Decimal:
    """``d`` rounded to an integer with exponent 0 (as apd's Ceil/Floor/... return)."""
    return d.quantize(Decimal(1), rounding=rounding, context=EXACT)


def _math_funcs() -> dict[str, Builtin]:
    def one(name: str, f: Callable[[Decimal], Decimal]) -> Builtin:
        return Builtin("math." + name, 1, lambda c: dec_result(f(c.num(0).d)))

    def flt(name: str, f: Callable[[float], float]) -> Builtin:
        return Builtin("math." + name, 1, lambda c: float_result(f(float(c.num(0).d))))

    def pow_(c: _Call) -> object:
        x, y = c.num(0).d, c.num(1).d
        if x.is_zero() and y.is_zero():
            raise c.fail("invalid operation")
        return dec_result(CTX.power(x, y))

    def log2(d: Decimal) -> Decimal:
        return CTX.divide(_ln(d), CTX.ln(Decimal(2)))

    def multiple_of(c: _Call) -> object:
        x, y = c.num(0), c.num(1)
        if y.d.is_zero():
            raise c.fail("division by zero")
        return CTX.remainder(x.d, y.d).is_zero()

    fs = [
        Builtin("math.Pow", 2, pow_),
        one("Ceil", lambda d: _integral(d, decimal.ROUND_CEILING)),
        one("Floor", lambda d: _integral(d, decimal.ROUND_FLOOR)),
        one("Trunc", lambda d: _integral(d, decimal.ROUND_DOWN)),
        one("Round", lambda d: _integral(d, decimal.ROUND_HALF_UP)),
        one("RoundToEven", lambda d: _integral(d, decimal.ROUND_HALF_EVEN)),
        one("Abs", lambda d: d.copy_abs()),
        one("Log2", log2),
        one("Log10", _log10),
        one("Log", _ln),
        one("Exp", lambda d: CTX.exp(d)),
        one("Exp2", lambda d: CTX.power(Decimal(2), d)),
        one("Cbrt", lambda d: CTX.power(d, CTX.divide(Decimal(1), Decimal(3)))),
        flt("Sqrt", math.sqrt),
        Builtin("math.MultipleOf", 2, multiple_of),
    ]
    return {b.name.split(".", 1)[1]: b for b in fs}


_MATH_CONSTS = {
    "Pi": Num(FLOAT, Decimal("3.14159265358979323846264338327950288419716939937510582097494459")),
    "E": Num(FLOAT, Decimal("2.71828182845904523536028747135266249775724709369995957496696763")),
    "Sqrt2": Num(
        FLOAT, Decimal("1.41421356237309504880168872420969807856967187537694807317667974")
    ),
    "Ln2": Num(FLOAT, Decimal("0.693147180559945309417232121458176568075500134360255254120680009")),
    "Log2E": Num(
        FLOAT, Decimal("1.44269504088896340735992468100189213742664595415298593413544940")
    ),
    "Ln10": Num(FLOAT, Decimal("2.30258509299404568401799145468436420760110148862877297603332790")),
    "Log10E": Num(
        FLOAT, Decimal("0.434294481903251827651128918916605082294397005803666566114453783")
    ),
}


# ------------------------------------------------------------------------ list
def _list_funcs() -> dict[str, Builtin]:
    def range_(c: _Call) -> object:
        start, limit, step = c.num(0), c.num(1), c.num(2)
        if step.d.is_zero():
            raise c.fail("step must be non zero")
        if step.d > 0 and limit.d < start.d:
            raise c.fail("end must be greater than start when step is positive")
        if step.d < 0 and limit.d > start.d:
            raise c.fail("end must be less than start when step is negative")
        out: list[object] = []
        cur = start.d
        while (step.d > 0 and cur < limit.d) or (step.d < 0 and cur > limit.d):
            out.append(dec_result(cur) if cur is not start.d else start)
            cur = CTX.add(cur, step.d)
            if len(out) > 10_000_000:
                raise c.fail("range too large")
        return out

    def minmax(want: int) -> Callable[[_Call], object]:
        def f(c: _Call) -> object:
            items = c.nums(0)
            if not items:
                raise c.fail("empty list")
            best = items[0]
            for x in items[1:]:
                if compare_nums(x, best) * want > 0:
                    best = x
            return best

        return f

    def sum_(c: _Call) -> object:
        total = Decimal(0)
        for x in c.nums(0):
            total = CTX.add(total, x.d)
        return dec_result(total)

    def product(c: _Call) -> object:
        total = Decimal(1)
        for x in c.nums(0):
            total = CTX.multiply(total, x.d)
        return dec_result(total)

    def avg(c: _Call) -> object:
        items = c.nums(0)
        if not items:
            raise c.fail("empty list")
        total = Decimal(0)
        for x in items:
            total = CTX.add(total, x.d)
        return dec_result(CTX.divide(total, Decimal(len(items))))

    def concat(c: _Call) -> object:
        out: list[object] = []
        for x in c.items(0):
            if not isinstance(x, list):
                raise c.fail("argument must be a list of lists")
            out.extend(x)
        return out

    def repeat(c: _Call) -> object:
        n = c.integer(1)
        if n < 0:
            raise c.fail("negative count")
        return c.items(0) * n

    def take(c: _Call) -> object:
        n = c.integer(1)
        if n < 0:
            raise c.fail("negative index")
        return c.items(0)[:n]

    def drop(c: _Call) -> object:
        n = c.integer(1)
        if n < 0:
            raise c.fail("negative index")
        return c.items(0)[n:]

    def slice_(c: _Call) -> object:
        items = c.items(0)
        i, j = c.integer(1), c.integer(2)
        if i < 0 or j < i or j > len(items):
            raise c.fail("slice bounds out of range")
        return items[i:j]

    def contains(c: _Call) -> object:
        from ._eval import data_equal

        items = c.items(0)
        x = c.data(1)
        return any(data_equal(a, x) for a in items)

    def flatten_n(c: _Call) -> object:
        depth = c.integer(1)

        def flat(xs: list[object], d: int) -> list[object]:
            out: list[object] = []
            for x in xs:
                if isinstance(x, list) and d != 0:
                    out.extend(flat(x, d - 1))
                else:
                    out.append(x)
            return out

        return flat(c.items(0), depth)

    def sort_(c: _Call) -> object:
        cmp = c.args[1]
        if cmp is _ASCENDING or cmp is _DESCENDING:
            items = c.items(0)
            if all(isinstance(x, Num) for x in items):
                key: Callable[[Any], Any] = lambda x: x.d  # noqa: E731
            elif all(isinstance(x, str) for x in items):
                key = lambda x: x.encode()  # noqa: E731
            else:
                raise c.fail("list.Ascending/Descending sort lists of numbers or of strings")
            return sorted(items, key=key, reverse=cmp is _DESCENDING)
        raise unsupported(
            c.pos, "list.Sort with a comparator other than list.Ascending or list.Descending"
        )

    def sort_strings(c: _Call) -> object:
        return sorted(c.strings(0), key=lambda s: s.encode())

    fs = [
        Builtin("list.Range", 3, range_),
        Builtin("list.Min", 1, minmax(-1)),
        Builtin("list.Max", 1, minmax(1)),
        Builtin("list.Sum", 1, sum_),
        Builtin("list.Product", 1, product),
        Builtin("list.Avg", 1, avg),
        Builtin("list.Concat", 1, concat),
        Builtin("list.Repeat", 2, repeat),
        Builtin("list.Take", 2, take),
        Builtin("list.Drop", 2, drop),
        Builtin("list.Slice", 3, slice_),
        Builtin("list.Contains", 2, contains),
        Builtin("list.FlattenN", 2, flatten_n),
        Builtin("list.SortStrings", 1, sort_strings),
        Builtin("list.Sort", 2, sort_),
        Builtin("list.SortStable", 2, sort_),
    ]
    return {b.name.split(".", 1)[1]: b for b in fs}


# --------------------------------------------------------------------- strings
def _byte_index(s: str, sub: str, last: bool = False) -> int:
    bs, bsub = s.encode(), sub.encode()
    return bs.rfind(bsub) if last else bs.find(bsub)


def _go_fields(s: str) -> list[str]:
    return s.split()


def _go_split(s: str, sep: str, n: int) -> list[str]:
    if n == 0:
        return []
    if sep == "":
        chars = list(s)
        if n < 0 or n >= len(chars):
            return chars
        return [*chars[: n - 1], "".join(chars[n - 1 :])]
    if n < 0:
        return s.split(sep)
    return s.split(sep, n - 1)


def _title(s: str) -> str:
    out = []
    prev_letter = False
    for ch in s:
        out.append(ch.upper() if not prev_letter and ch.isalpha() else ch)
        prev_letter = ch.isalnum() or ch == "_" or ch == "'"
    return "".join(out)


def _strings_funcs() -> dict[str, Builtin]:
    def s1(name: str, f: Callable[[str], object]) -> Builtin:
        return Builtin("strings." + name, 1, lambda c: f(c.string(0)))

    def s2(name: str, f: Callable[[str, str], object]) -> Builtin:
        return Builtin("strings." + name, 2, lambda c: f(c.string(0), c.string(1)))

    def replace(c: _Call) -> object:
        s, old, new, n = c.string(0), c.string(1), c.string(2), c.integer(3)
        return s.replace(old, new, n if n >= 0 else -1)

    def repeat(c: _Call) -> object:
        n = c.integer(1)
        if n < 0:
            raise c.fail("negative Repeat count")
        return c.string(0) * n

    def join(c: _Call) -> object:
        return c.string(1).join(c.strings(0))

    def split_n(c: _Call) -> object:
        return _go_split(c.string(0), c.string(1), c.integer(2))

    def byte_at(c: _Call) -> object:
        b = c.string(0).encode()
        i = c.integer(1)
        if not 0 <= i < len(b):
            raise c.fail("index out of range")
        return make_int(b[i])

    def slice_runes(c: _Call) -> object:
        s = c.string(0)
        i, j = c.integer(1), c.integer(2)
        if i < 0 or j < i or j > len(s):
            raise c.fail("index out of range")
        return s[i:j]

    fs = [
        Builtin("strings.Join", 2, join),
        s2("Split", lambda s, sep: _go_split(s, sep, -1)),
        Builtin("strings.SplitN", 3, split_n),
        s2("Contains", lambda s, sub: sub in s),
        s2("ContainsAny", lambda s, chars: any(ch in s for ch in chars)),
        s2("HasPrefix", lambda s, p: s.startswith(p)),
        s2("HasSuffix", lambda s, p: s.endswith(p)),
        Builtin("strings.Replace", 4, replace),
        s1("ToUpper", str.upper),
        s1("ToLower", str.lower),
        s1("ToTitle", _title),
        s1("TrimSpace", str.strip),
        s2("Trim", lambda s, cut: s.strip(cut)),
        s2("TrimLeft", lambda s, cut: s.lstrip(cut)),
        s2("TrimRight", lambda s, cut: s.rstrip(cut)),
        s2("TrimPrefix", lambda s, p: s[len(p) :] if p and s.startswith(p) else s),
        s2("TrimSuffix", lambda s, p: s[: len(s) - len(p)] if p and s.endswith(p) else s),
        Builtin("strings.Repeat", 2, repeat),
        s2("Index", lambda s, sub: make_int(_byte_index(s, sub))),
        s2("LastIndex", lambda s, sub: make_int(_byte_index(s, sub, last=True))),
        s2("Count", lambda s, sub: make_int(len(s) + 1 if sub == "" else s.count(sub))),
        s1("Fields", _go_fields),
        s1("Runes", lambda s: [make_int(ord(ch)) for ch in s]),
        Builtin("strings.ByteAt", 2, byte_at),
        Builtin("strings.SliceRunes", 3, slice_runes),
    ]
    return {b.name.split(".", 1)[1]: b for b in fs}


class _Comparator:
    """list.Ascending / list.Descending (only usable as the comparator of list.Sort)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_ASCENDING = _Comparator("list.Ascending")
_DESCENDING = _Comparator("list.Descending")

_PACKAGES: dict[str, dict[str, Builtin]] = {
    "math": _math_funcs(),
    "list": _list_funcs(),
    "strings": _strings_funcs(),
}


def package_member(path: str, name: str, pos: Pos) -> object:
    if path == "math" and name in _MATH_CONSTS:
        return _MATH_CONSTS[name]
    if path == "list" and name == "Ascending":
        return _ASCENDING
    if path == "list" and name == "Descending":
        return _DESCENDING
    pkg = _PACKAGES.get(path)
    if pkg is None:  # pragma: no cover - imports are checked by the resolver
        raise CueError(f"{pos}: unknown package {path}")
    fn = pkg.get(name)
    if fn is None:
        raise unsupported(
            pos, f"{path}.{name} (not one of the supported functions of package {path})"
        )
    return fn


__all__ = ["NULLV", "Builtin", "builtin_value", "call", "package_member"]
