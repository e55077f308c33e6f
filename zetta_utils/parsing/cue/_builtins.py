"""Builtin functions: the predeclared ones (``len``, ``div``, ``int8``, ...) and the
machinery the standard packages (``_pkg_*`` modules, listed by ``_packages``) share:
argument conversion and result conversion with CUE v0.4 semantics.

Nothing here imports the evaluator: a call receives it as an object with
``to_data_value``, ``length_of`` and ``defaulted_elements``.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol

from ._errors import CueError, Pos, unsupported
from ._values import (
    BOOL,
    BYTES,
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
    DataVal,
    Num,
    error,
    incomplete,
    int_div,
    make_int,
)


class Evaluator(Protocol):
    """What builtins use of the evaluator (``_eval.Evaluator``, which imports this module: the
    protocol keeps the dependency one way)."""

    def length_of(self, v: object) -> int | None: ...

    def defaulted_elements(self, v: object) -> list[tuple[int, str]]: ...

    def to_data_value(self, val: object, pos: Pos) -> object: ...

    def expr_value(self, expr: Any) -> object: ...

    def argument_error(self, val: object, i: int, name: str, pos: Pos) -> Bottom | None: ...

    def fill_select(
        self, base: object, fills: dict[str, object], name: str, pos: Pos
    ) -> object: ...

    def literal_texts(self, val: object) -> dict[tuple[object, ...], str]: ...

    def unify_error(self, expr: Any, schema: object, pos: Pos, concrete: bool) -> Bottom | None: ...


class Builtin:
    """A function. ``nargs`` is the (min, max) number of arguments; ``validator``
    functions (``strings.MinRunes``, ``list.UniqueItems``, ...) may also be used as a
    constraint with their first argument left out, which the built-in evaluator does
    not support."""

    __slots__ = ("fn", "name", "nargs", "validator")

    def __init__(
        self,
        name: str,
        nargs: int | tuple[int, int],
        fn: Callable[[Call], object],
        validator: bool = False,
    ) -> None:
        self.name = name
        self.nargs = nargs if isinstance(nargs, tuple) else (nargs, nargs)
        self.fn = fn
        self.validator = validator

    def __repr__(self) -> str:
        return self.name


class ArgError(Exception):
    """Raised by argument accessors and functions: the call's result is ``bottom``."""

    def __init__(self, bottom: Bottom) -> None:
        super().__init__()
        self.bottom = bottom


class Call:
    """Argument access for one builtin call."""

    def __init__(
        self,
        ev: Evaluator,
        fn: Builtin,
        args: list[object],
        pos: Pos,
        arg_pos: list[Pos] | None = None,
        arg_texts: list[str | None] | None = None,
    ) -> None:
        self.ev = ev
        self.fn = fn
        self.args = args
        self.pos = pos
        self.arg_pos = arg_pos
        # The source text of each argument that is a number literal (or refers to a field
        # that is one), for the functions that write it (``yaml.Marshal``).
        self.arg_texts = arg_texts

    def fail(self, msg: str, arg: int | None = None) -> ArgError:
        """The call fails, at argument ``arg`` if given."""
        pos = self.pos
        if arg is not None and self.arg_pos is not None and arg < len(self.arg_pos):
            pos = self.arg_pos[arg]
        return ArgError(error(f"error in call to {self.fn.name}: {msg}", pos))

    def has(self, i: int) -> bool:
        return i < len(self.args)

    def raw(self, i: int) -> object:
        v = self.args[i]
        if isinstance(v, Bottom):
            raise ArgError(v)
        if v is TOP or isinstance(v, (BasicType, Bound)):
            raise ArgError(incomplete(f"non-concrete argument {i} to {self.fn.name}", self.pos))
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

    def float64(self, i: int) -> float:
        """A number as a float64 argument. CUE v0.4 refuses zero here ("value was
        rounded down"), and so does this."""
        d = self.num(i).d
        if d.is_zero():
            raise self.fail(f"cannot use {d} as float64 in argument {i}: value was rounded down")
        f = float(d)
        if math.isinf(f):
            raise self.fail(f"argument {i} out of range for float64")
        return f

    def boolean(self, i: int) -> bool:
        v = self.raw(i)
        if not isinstance(v, bool):
            raise self.fail(f"argument {i} must be a bool")
        return v

    def string(self, i: int) -> str:
        v = self.raw(i)
        if not isinstance(v, str):
            raise self.fail(f"argument {i} must be a string")
        return v

    def bytes_(self, i: int) -> bytes:
        """A bytes argument; a string is accepted as its UTF-8 bytes (as CUE does)."""
        v = self.raw(i)
        if isinstance(v, bytes):
            return v
        if isinstance(v, str):
            return v.encode()
        raise self.fail(f"argument {i} must be bytes or a string")

    def null(self, i: int) -> None:
        if self.raw(i) is not NULLV:
            raise self.fail(f"argument {i} must be null")

    def data(self, i: int) -> object:
        v = self.raw(i)
        d = self.ev.to_data_value(v, self.pos)
        if isinstance(d, Bottom):
            raise ArgError(d)
        return d

    def items(self, i: int) -> list[Any]:
        d = self.data(i)
        if not isinstance(d, list):
            raise self.fail(f"argument {i} must be a list")
        return d

    def struct(self, i: int) -> dict[str, Any]:
        d = self.data(i)
        if not isinstance(d, dict):
            raise self.fail(f"argument {i} must be a struct")
        return d

    def nums(self, i: int) -> list[Num]:
        items = self.items(i)
        self.no_defaults(i, "number")
        for x in items:
            if not isinstance(x, Num):
                raise self.fail(f"argument {i} must be a list of numbers")
        return items

    def strings(self, i: int) -> list[str]:
        items = self.items(i)
        self.no_defaults(i, "string")
        for x in items:
            if not isinstance(x, str):
                raise self.fail(f"argument {i} must be a list of strings")
        return items

    def no_defaults(self, i: int, what: str) -> None:
        """CUE v0.4 does not take the default of an element of a number or string list
        argument (``list.Sum([a])`` with ``a: *1 | 2`` fails): neither does this."""
        hits = self.ev.defaulted_elements(self.args[i])
        if hits:
            k, text = hits[0]
            raise ArgError(
                incomplete(
                    f"non-concrete value {text} for element {k} of {what} list argument {i}",
                    self.pos,
                )
            )


def call(
    ev: Evaluator,
    fn: Builtin,
    args: list[object],
    pos: Pos,
    arg_pos: list[Pos] | None = None,
    arg_texts: list[str | None] | None = None,
) -> object:
    lo, hi = fn.nargs
    if fn.validator and len(args) == lo - 1:
        raise unsupported(pos, f"{fn.name} used as a validator (with its first argument left out)")
    if not lo <= len(args) <= hi:
        want = str(lo) if lo == hi else f"{lo} to {hi}"
        return error(f"{fn.name}: got {len(args)} arguments, want {want}", pos)
    c = Call(ev, fn, args, pos, arg_pos, arg_texts)
    try:
        out = fn.fn(c)
    except ArgError as e:
        b = e.bottom
        return b if b.pos is not None else Bottom(b.code, b.msg, pos)
    except CueError:
        raise  # an unsupported construct: not a failed call
    except (
        decimal.InvalidOperation,
        decimal.DivisionByZero,
        decimal.Overflow,
        ValueError,
        OverflowError,
        ZeroDivisionError,
    ):
        return error(f"error in call to {fn.name}: invalid operation", pos)
    if isinstance(out, Bottom) and out.pos is None:
        return Bottom(out.code, out.msg, pos)
    return wrap(out)


def wrap(out: object) -> object:
    """A function's Python result as a value: lists and dicts become data values,
    Python ints and floats numbers."""
    if isinstance(out, (list, dict)):
        return DataVal(to_cue_data(out))
    if isinstance(out, bool):
        return out
    if isinstance(out, int):
        return make_int(out)
    if isinstance(out, float):
        return float_result(out)
    return out


def to_cue_data(x: object) -> object:
    if isinstance(x, list):
        return [to_cue_data(e) for e in x]
    if isinstance(x, dict):
        return {k: to_cue_data(v) for k, v in x.items()}
    if isinstance(x, bool):
        return x
    if isinstance(x, int):
        return make_int(x)
    if isinstance(x, float):
        return float_result(x)
    if x is None:
        return NULLV
    return x


def dec_result(d: Decimal) -> Num:
    """A decimal computed by a builtin: int kind if its exponent is not negative
    (``2`` but ``2.0``), as CUE converts an apd decimal."""
    if d.is_finite() and d.as_tuple().exponent >= 0:  # type: ignore[operator]
        return Num(INT, d)
    return Num(FLOAT, d)


def float_result(f: float) -> Num:
    """A float64 result as CUE v0.4 converts it: a float with the decimal digits Go's
    ``strconv.FormatFloat(f, 'g', -1, 64)`` writes (shortest digits; exponent form below
    1e-4 and from 1e6 on), so 1000 is 1000 and 1048576 is 1048576, but 1e6 is 1E+6 and
    2**60 is 1.152921504606847E+18. Even a whole number is a float
    (``math.Sqrt(4) & int`` is a conflict)."""
    if math.isnan(f) or math.isinf(f):
        raise ValueError("not finite")
    if f == 0:
        return Num(FLOAT, Decimal(0).copy_sign(Decimal(f)))
    d = Decimal(repr(f)).normalize(context=EXACT)
    if -4 <= d.adjusted() < 6 and d.as_tuple().exponent > 0:  # type: ignore[operator]
        d = d.quantize(Decimal(1), context=EXACT)  # written without an exponent
    return Num(FLOAT, d)


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


def _len(c: Call) -> object:
    v = c.raw(0)
    if isinstance(v, str):
        return make_int(len(v.encode()))
    if isinstance(v, bytes):
        return make_int(len(v))
    if isinstance(v, DataVal):
        return make_int(len(v.data))  # type: ignore[arg-type]
    n = c.ev.length_of(v)
    if n is None:
        raise c.fail("invalid argument (must be list, struct, string or bytes)")
    return make_int(n)


def _intop(name: str) -> Callable[[Call], object]:
    def f(c: Call) -> object:
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


def functions(pkg: str, fs: list[Builtin]) -> dict[str, Builtin]:
    """A package's functions by name (their ``name`` is ``pkg.Name``)."""
    out = {}
    for b in fs:
        prefix, _, short = b.name.rpartition(".")
        assert prefix == pkg.rsplit("/", 1)[-1], b.name
        out[short] = b
    return out


__all__ = [
    "NULLV",
    "ArgError",
    "Builtin",
    "Call",
    "builtin_value",
    "call",
    "dec_result",
    "float_result",
    "functions",
]
