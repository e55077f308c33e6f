"""The ``math``, ``math/bits``, ``list`` and ``struct`` packages of CUE v0.4.

Functions CUE computes with apd decimals (rounding, ``Pow``, ``Exp``, logarithms) use
Python decimals at CUE's 24 digits; the float64 ones whose result is exact (``Sqrt``,
``Mod``, ``Ldexp``, ...) go through float64 as in Go, including v0.4's refusal of a zero
float64 argument. The float64 transcendental functions (``Sin``, ``Atan2``, ``Gamma``,
``Erfinv``, the Bessel functions, ...) use Go's own algorithms, re-implemented in
``_gomath``, because the C library's last digit differs from Go's for some arguments.
"""

from __future__ import annotations

import decimal
import itertools
import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from . import _gomath
from ._builtins import Builtin, Call, dec_result, float_result, functions
from ._errors import unsupported
from ._gosort import go_sort, is_struct_comparator
from ._values import CTX, EXACT, FLOAT, Num, compare_nums, data_equal, make_int

# ------------------------------------------------------------------------ math
# float64 functions computed with Go's own algorithms (``_gomath``).
_GO_FLOAT_FUNCS = (
    "Sin Cos Tan Asin Acos Atan Sinh Cosh Tanh Asinh Acosh Atanh Expm1 Log1p "
    "Erf Erfc Erfinv Erfcinv Gamma J0 J1 Y0 Y1"
).split()


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


def _jacobi(c: Call) -> object:
    x, y = c.integer(0), c.integer(1)
    if y <= 0 or y % 2 == 0:
        raise c.fail(f"invalid 2nd argument to Jacobi: need odd integer but got {y}")
    x %= y
    result = 1
    while x:
        while x % 2 == 0:
            x //= 2
            if y % 8 in (3, 5):
                result = -result
        x, y = y, x
        if x % 4 == 3 and y % 4 == 3:
            result = -result
        x %= y
    return make_int(result if y == 1 else 0)


def _math_funcs() -> dict[str, Builtin]:
    def one(name: str, f: Callable[[Decimal], Decimal]) -> Builtin:
        return Builtin("math." + name, 1, lambda c: dec_result(f(c.num(0).d)))

    def flt(name: str, f: Callable[[float], float]) -> Builtin:
        return Builtin("math." + name, 1, lambda c: float_result(f(c.float64(0))))

    def flt2(name: str, f: Callable[[float, float], float]) -> Builtin:
        return Builtin("math." + name, 2, lambda c: float_result(f(c.float64(0), c.float64(1))))

    def pow_(c: Call) -> object:
        x, y = c.num(0).d, c.num(1).d
        if x.is_zero() and y.is_zero():
            raise c.fail("invalid operation")
        return dec_result(CTX.power(x, y))

    def log2(d: Decimal) -> Decimal:
        return CTX.divide(_ln(d), CTX.ln(Decimal(2)))

    def multiple_of(c: Call) -> object:
        x, y = c.num(0), c.num(1)
        if y.d.is_zero():
            raise c.fail("division by zero")
        return CTX.remainder(x.d, y.d).is_zero()

    def frexp_exp(x: float) -> int:
        if x == 0 or math.isinf(x) or math.isnan(x):
            raise ValueError("no exponent")
        return math.frexp(x)[1] - 1

    def bessel_n(c: Call, f: Callable[[int, float], float]) -> object:
        n = c.integer(0)
        if abs(n) > 1_000_000:  # Go would loop |n| times; refuse instead of hanging
            raise unsupported(c.pos, f"{c.fn.name} of an order beyond one million")
        return float_result(f(n, c.float64(1)))

    def pow10(c: Call) -> object:
        # An exact decimal in CUE v0.4: Pow10(1) is 1E+1, Pow10(-2) is 0.01.
        return dec_result(Decimal((0, (1,), c.integer(0))))

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
        Builtin("math.MultipleOf", 2, multiple_of, validator=True),
        # A decimal operation in CUE v0.4: x keeps its digits and kind, zero included.
        Builtin("math.Copysign", 2, lambda c: Num(c.num(0).kind, c.num(0).d.copy_sign(c.num(1).d))),
        flt2("Dim", lambda x, y: max(x - y, 0.0)),
        Builtin("math.Ilogb", 1, lambda c: make_int(frexp_exp(c.float64(0)))),
        Builtin("math.Ldexp", 2, lambda c: float_result(math.ldexp(c.float64(0), c.integer(1)))),
        flt("Logb", lambda x: float(frexp_exp(x))),
        flt2("Mod", math.fmod),
        Builtin("math.Pow10", 1, pow10),
        flt2("Remainder", math.remainder),
        Builtin("math.Signbit", 1, lambda c: math.copysign(1.0, c.float64(0)) < 0),
        Builtin("math.Jacobi", 2, _jacobi),
        *(flt(n, getattr(_gomath, n.lower())) for n in _GO_FLOAT_FUNCS),
        flt2("Atan2", _gomath.atan2),
        flt2("Hypot", _gomath.hypot),
        Builtin("math.Jn", 2, lambda c: bessel_n(c, _gomath.jn)),
        Builtin("math.Yn", 2, lambda c: bessel_n(c, _gomath.yn)),
    ]
    return functions("math", fs)


def _const(text: str) -> Num:
    return Num(FLOAT, Decimal(text))


MATH_CONSTS: dict[str, object] = {
    "Pi": _const("3.14159265358979323846264338327950288419716939937510582097494459"),
    "E": _const("2.71828182845904523536028747135266249775724709369995957496696763"),
    "Phi": _const("1.61803398874989484820458683436563811772030917980576286213544861"),
    "Sqrt2": _const("1.41421356237309504880168872420969807856967187537694807317667974"),
    "SqrtE": _const("1.64872127070012814684865078781416357165377610071014801157507931"),
    "SqrtPi": _const("1.77245385090551602729816748334114518279754945612238712821380779"),
    "SqrtPhi": _const("1.27201964951406896425242246173749149171560804184009624861664038"),
    "Ln2": _const("0.693147180559945309417232121458176568075500134360255254120680009"),
    "Log2E": _const("1.442695040888963407359924681001892137426645954152985934135449408"),
    "Ln10": _const("2.3025850929940456840179914546843642076011014886287729760333278"),
    "Log10E": _const("0.43429448190325182765112891891660508229439700580366656611445378"),
    "MaxExp": make_int(2147483647),
    "MinExp": make_int(-2147483648),
    "MaxPrec": make_int(4294967295),
    "ToNearestEven": make_int(0),
    "ToNearestAway": make_int(1),
    "ToZero": make_int(2),
    "AwayFromZero": make_int(3),
    "ToNegativeInf": make_int(4),
    "ToPositiveInf": make_int(5),
}


# ------------------------------------------------------------------- math/bits
def _bits_funcs() -> dict[str, Builtin]:
    def nonneg(c: Call, i: int) -> int:
        n = c.integer(i)
        if n < 0:
            raise c.fail(f"argument {i} must not be negative")
        return n

    def set_(c: Call) -> object:
        x, i, bit = c.integer(0), nonneg(c, 1), c.integer(2)
        if bit not in (0, 1):
            raise c.fail("bit must be 0 or 1")
        return make_int(x | (1 << i) if bit else x & ~(1 << i))

    fs = [
        Builtin("bits.And", 2, lambda c: make_int(c.integer(0) & c.integer(1))),
        Builtin("bits.Or", 2, lambda c: make_int(c.integer(0) | c.integer(1))),
        Builtin("bits.Xor", 2, lambda c: make_int(c.integer(0) ^ c.integer(1))),
        Builtin("bits.Clear", 2, lambda c: make_int(c.integer(0) & ~c.integer(1))),
        Builtin("bits.Lsh", 2, lambda c: make_int(c.integer(0) << nonneg(c, 1))),
        Builtin("bits.Rsh", 2, lambda c: make_int(c.integer(0) >> nonneg(c, 1))),
        Builtin("bits.At", 2, lambda c: make_int((c.integer(0) >> nonneg(c, 1)) & 1)),
        Builtin("bits.Set", 3, set_),
        Builtin("bits.OnesCount", 1, lambda c: make_int(bin(abs(c.integer(0))).count("1"))),
        Builtin("bits.Len", 1, lambda c: make_int(abs(c.integer(0)).bit_length())),
    ]
    return functions("math/bits", fs)


# ------------------------------------------------------------------------ list
class Comparator:
    """list.Ascending / list.Descending (only usable as the comparator of list.Sort)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


ASCENDING = Comparator("list.Ascending")
DESCENDING = Comparator("list.Descending")


def _sort_key(c: Call, items: list[Any]) -> Callable[[Any], Any]:
    if all(isinstance(x, Num) for x in items):
        return lambda x: x.d
    if all(isinstance(x, str) for x in items):
        return lambda x: x.encode()
    raise c.fail("list.Ascending/Descending sort lists of numbers or of strings")


def _comparator(c: Call, i: int) -> Comparator:
    cmp = c.args[i]
    if isinstance(cmp, Comparator):
        return cmp
    raise unsupported(
        c.pos, f"{c.fn.name} with a comparator other than list.Ascending or list.Descending"
    )


def _list_funcs() -> dict[str, Builtin]:
    def range_(c: Call) -> object:
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

    def minmax(want: int) -> Callable[[Call], object]:
        def f(c: Call) -> object:
            items = c.nums(0)
            if not items:
                raise c.fail("empty list")
            best = items[0]
            for x in items[1:]:
                if compare_nums(x, best) * want > 0:
                    best = x
            return best

        return f

    def sum_(c: Call) -> object:
        total = Decimal(0)
        for x in c.nums(0):
            total = CTX.add(total, x.d)
        return dec_result(total)

    def product(c: Call) -> object:
        total = Decimal(1)
        for x in c.nums(0):
            total = CTX.multiply(total, x.d)
        return dec_result(total)

    def avg(c: Call) -> object:
        items = c.nums(0)
        if not items:
            raise c.fail("empty list")
        total = Decimal(0)
        for x in items:
            total = CTX.add(total, x.d)
        return dec_result(CTX.divide(total, Decimal(len(items))))

    def concat(c: Call) -> object:
        out: list[object] = []
        for x in c.items(0):
            if not isinstance(x, list):
                raise c.fail("argument must be a list of lists")
            out.extend(x)
        return out

    def repeat(c: Call) -> object:
        n = c.integer(1)
        if n < 0:
            raise c.fail("negative count")
        return c.items(0) * n

    def take(c: Call) -> object:
        n = c.integer(1)
        if n < 0:
            raise c.fail("negative index")
        return c.items(0)[:n]

    def drop(c: Call) -> object:
        n = c.integer(1)
        if n < 0:
            raise c.fail("negative index")
        return c.items(0)[n:]

    def slice_(c: Call) -> object:
        items = c.items(0)
        i, j = c.integer(1), c.integer(2)
        if i < 0 or j < i or j > len(items):
            raise c.fail("slice bounds out of range")
        return items[i:j]

    def contains(c: Call) -> object:
        items = c.items(0)
        x = c.data(1)
        # CUE v0.4 compares an element that is a disjunction with a default as the
        # disjunction, which equals no value.
        skip = {k for k, _text in c.ev.defaulted_elements(c.args[0])}
        return any(data_equal(a, x) for k, a in enumerate(items) if k not in skip)

    def flatten_n(c: Call) -> object:
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

    def sort_(c: Call) -> object:
        if not isinstance(c.args[1], Comparator) and is_struct_comparator(c, 1):
            return go_sort(c, c.items(0))
        cmp = _comparator(c, 1)
        items = c.items(0)
        return sorted(items, key=_sort_key(c, items), reverse=cmp is DESCENDING)

    def is_sorted(c: Call) -> object:
        cmp = _comparator(c, 1)
        items = c.items(0)
        keys = [_sort_key(c, items)(x) for x in items]
        if cmp is DESCENDING:
            keys.reverse()
        return all(a <= b for a, b in itertools.pairwise(keys))

    def sort_strings(c: Call) -> object:
        return sorted(c.strings(0), key=lambda s: s.encode())

    def is_sorted_strings(c: Call) -> object:
        keys = [s.encode() for s in c.strings(0)]
        return all(a <= b for a, b in itertools.pairwise(keys))

    def unique_items(c: Call) -> object:
        items = c.items(0)
        return not any(
            data_equal(items[i], items[j])
            for i in range(len(items))
            for j in range(i + 1, len(items))
        )

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
        Builtin("list.IsSorted", 2, is_sorted, validator=True),
        Builtin("list.IsSortedStrings", 1, is_sorted_strings, validator=True),
        Builtin("list.UniqueItems", 1, unique_items, validator=True),
        Builtin("list.MinItems", 2, lambda c: len(c.items(0)) >= c.integer(1), validator=True),
        Builtin("list.MaxItems", 2, lambda c: len(c.items(0)) <= c.integer(1), validator=True),
    ]
    return functions("list", fs)


# ---------------------------------------------------------------------- struct
def _struct_funcs() -> dict[str, Builtin]:
    def min_fields(c: Call) -> object:
        n, want = len(c.struct(0)), c.integer(1)
        if n < want:
            raise c.fail(f"len(fields) < MinFields({want}) ({n} < {want})")
        # CUE v0.4 fails here too (an internal assertion), instead of returning true.
        raise c.fail("struct.MinFields cannot succeed in CUE v0.4")

    fs = [
        Builtin("struct.MinFields", 2, min_fields, validator=True),
        Builtin("struct.MaxFields", 2, lambda c: len(c.struct(0)) <= c.integer(1), validator=True),
    ]
    return functions("struct", fs)


PACKAGES: dict[str, dict[str, object]] = {
    "math": {**_math_funcs(), **MATH_CONSTS},
    "math/bits": dict(_bits_funcs()),
    "list": {**_list_funcs(), "Ascending": ASCENDING, "Descending": DESCENDING},
    "struct": dict(_struct_funcs()),
}
