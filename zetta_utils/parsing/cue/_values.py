"""Scalar values of the CUE subset: kinds, numbers (decimal, typed int or float, with the
24-digit precision CUE uses for arithmetic), types, bounds and errors."""

from __future__ import annotations

import decimal
import json
import re
from decimal import Decimal

from ._errors import Pos

# Kind bit masks.
NULL = 1
BOOL = 2
INT = 4
FLOAT = 8
STRING = 16
BYTES = 32
LIST = 64
STRUCT = 128
NUMBER = INT | FLOAT
SCALAR = NULL | BOOL | NUMBER | STRING | BYTES
TOP_KIND = 255

_KIND_NAMES = {
    NULL: "null",
    BOOL: "bool",
    INT: "int",
    FLOAT: "float",
    STRING: "string",
    BYTES: "bytes",
    LIST: "list",
    STRUCT: "struct",
}


def kind_name(k: int) -> str:
    if k == TOP_KIND:
        return "_"
    if k == NUMBER:
        return "number"
    if k == 0:
        return "_|_"
    names = []
    rest = k
    if k & NUMBER == NUMBER:
        names.append("number")
        rest &= ~NUMBER
    for bit, name in _KIND_NAMES.items():
        if rest & bit:
            names.append(name)
    return "|".join(names)


# CUE evaluates arithmetic with apd decimals rounded half-up to 24 significant digits.
CTX = decimal.Context(
    prec=24,
    rounding=decimal.ROUND_HALF_UP,
    Emax=100000,
    Emin=-100000,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)
# Conversions and comparisons that must not round.
EXACT = decimal.Context(prec=1000, rounding=decimal.ROUND_HALF_UP, Emax=100000, Emin=-100000)


class NullType:
    __slots__ = ()

    def __repr__(self) -> str:
        return "null"


NULLV = NullType()


class TopType:
    __slots__ = ()

    def __repr__(self) -> str:
        return "_"


TOP = TopType()


class Num:
    """A number: ``kind`` is INT or FLOAT; ``d`` keeps CUE's decimal representation
    (``2.0`` and ``2`` print differently)."""

    __slots__ = ("d", "kind")

    def __init__(self, kind: int, d: Decimal) -> None:
        self.kind = kind
        self.d = d

    def __repr__(self) -> str:
        return num_str(self)

    def is_integral(self) -> bool:
        return self.d == self.d.to_integral_value()


def num_str(n: Num) -> str:
    """The text CUE prints for a number (JSON export and interpolation)."""
    return str(n.d)


def make_int(i: int) -> Num:
    return Num(INT, Decimal(i))


class BasicType:
    """A type such as ``int``, ``string`` or ``number``: a set of kinds."""

    __slots__ = ("kind",)

    def __init__(self, kind: int) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return kind_name(self.kind)


class Bound:
    """A bound or validator: ``>=5``, ``!=null``, ``=~"re"``."""

    __slots__ = ("kind", "op", "value")

    def __init__(self, op: str, value: object) -> None:
        self.op = op
        self.value = value
        if op in ("=~", "!~"):
            self.kind = STRING
        elif op in ("!=", "=="):
            self.kind = TOP_KIND
        elif isinstance(value, Num):
            self.kind = NUMBER
        elif isinstance(value, str):
            self.kind = STRING
        elif isinstance(value, bytes):
            self.kind = BYTES
        else:
            self.kind = TOP_KIND

    def __repr__(self) -> str:
        return f"{self.op}{value_str(self.value)}"


# Error codes.
INCOMPLETE = 1
EVAL = 2
CYCLE = 3
STRUCTURAL = 4


class Bottom:
    """An error value. ``code`` INCOMPLETE marks values that are not known yet (allowed in
    definitions and hidden fields, an error when exported)."""

    __slots__ = ("code", "msg", "pos")

    def __init__(self, code: int, msg: str, pos: Pos | None) -> None:
        self.code = code
        self.msg = msg
        self.pos = pos

    @property
    def incomplete(self) -> bool:
        return self.code == INCOMPLETE

    @property
    def fatal(self) -> bool:
        """Errors that make a configuration invalid even where values need not be
        concrete (definitions, hidden fields); incomplete values and reference cycles
        are not."""
        return self.code == EVAL or self.code == STRUCTURAL

    def __repr__(self) -> str:
        return f"_|_({self.msg})"


def incomplete(msg: str, pos: Pos | None) -> Bottom:
    return Bottom(INCOMPLETE, msg, pos)


def error(msg: str, pos: Pos | None) -> Bottom:
    return Bottom(EVAL, msg, pos)


def kind_of(v: object) -> int:
    if isinstance(v, Num):
        return v.kind
    if isinstance(v, str):
        return STRING
    if isinstance(v, bool):
        return BOOL
    if v is NULLV:
        return NULL
    if isinstance(v, bytes):
        return BYTES
    raise TypeError(f"not an atom: {v!r}")


def is_atom(v: object) -> bool:
    return isinstance(v, (Num, str, bool, bytes)) or v is NULLV


def value_str(v: object) -> str:
    """CUE-like text of a value for error messages."""
    if isinstance(v, Num):
        return num_str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if v is NULLV:
        return "null"
    if v is TOP:
        return "_"
    if isinstance(v, bytes):
        return bytes_str(v)
    return repr(v)


def bytes_str(b: bytes) -> str:
    """CUE's text of a byte string: ``'abc'``, other bytes escaped."""
    out = []
    for ch in b.decode("utf-8", errors="backslashreplace"):
        if ch == "'" or ch == "\\":
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        else:
            out.append(ch)
    return "'" + "".join(out) + "'"


def atoms_equal(a: object, b: object) -> bool:
    if isinstance(a, Num) and isinstance(b, Num):
        return bool(EXACT.compare(a.d, b.d) == 0)
    if type(a) is not type(b):
        return False
    return a == b


# ---------------------------------------------------------------------- arithmetic
def arith(op: str, a: Num, b: Num) -> Num | Bottom | None:
    """Numeric binary operation; returns None for an unknown operator."""
    kind = INT if a.kind == INT and b.kind == INT else FLOAT
    try:
        if op == "+":
            return Num(kind, CTX.add(a.d, b.d))
        if op == "-":
            return Num(kind, CTX.subtract(a.d, b.d))
        if op == "*":
            return Num(kind, CTX.multiply(a.d, b.d))
        if op == "/":
            if b.d.is_zero():
                return error("failed arithmetic: division by zero", None)
            return Num(FLOAT, CTX.divide(a.d, b.d))
    except decimal.Overflow:
        return error("failed arithmetic: number overflow", None)
    except decimal.InvalidOperation:
        return error("failed arithmetic: invalid operation", None)
    if op in ("div", "mod", "quo", "rem"):
        return int_div(op, a, b)
    return None


def int_div(op: str, a: Num, b: Num) -> Num | Bottom:
    if a.kind != INT or b.kind != INT:
        return error(
            f"invalid operands {value_str(a)} and {value_str(b)} to '{op}' (type must be int)", None
        )
    x = int(a.d)
    y = int(b.d)
    if y == 0:
        return error(f"division by zero in '{op}'", None)
    if op in ("div", "mod"):
        q = x // y if y > 0 else -(x // -y)
        r = x - y * q
        return make_int(q if op == "div" else r)
    q = abs(x) // abs(y)
    if (x < 0) != (y < 0):
        q = -q
    r = x - y * q
    return make_int(q if op == "quo" else r)


def negate(a: Num) -> Num:
    return Num(a.kind, EXACT.minus(a.d))  # exact, as apd's Neg (CTX would round big ints)


def compare_nums(a: Num, b: Num) -> int:
    return int(EXACT.compare(a.d, b.d))


_NUM_STRICT_RE = re.compile(r"^-?[0-9]+$")


def num_to_python(n: Num) -> int | float:
    text = num_str(n)
    if _NUM_STRICT_RE.match(text):
        return int(text)
    return float(text)


class DataVal:
    """A list or struct computed by a builtin (Python lists/dicts of atoms)."""

    __slots__ = ("data",)

    def __init__(self, data: object) -> None:
        self.data = data


def data_equal(a: object, b: object) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(data_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(data_equal(a[k], b[k]) for k in a)
    if isinstance(a, Num) and isinstance(b, Num):
        return compare_nums(a, b) == 0
    return type(a) is type(b) and a == b
