"""``Vec3D``: a small immutable 3-vector of numbers with elementwise arithmetic."""

from __future__ import annotations

import builtins
import math
import numbers
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar, overload

T_co = TypeVar("T_co", bound=float, covariant=True)  # mypy treats int as a subtype of float

Number = float  # int is accepted wherever float is (PEP 484 numeric tower)


def _normalise(value: Any) -> int | float:
    # NumPy / torch scalars become Python numbers so that reprs and hashing stay plain.
    if type(value) is int or type(value) is float:
        return value
    if isinstance(value, bool):
        raise TypeError(f"Vec3D elements must be numbers, got bool {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    item = getattr(value, "item", None)  # zero-dimensional arrays and tensors
    if callable(item):
        return _normalise(item())
    raise TypeError(f"Vec3D elements must be numbers, got {type(value).__name__} {value!r}")


_PLAIN = (int, float)  # exact types: bool and NumPy scalars take the checked path


def _plain_vec(a: Any, b: Any, c: Any) -> Vec3D[Any]:
    """A Vec3D of three plain Python numbers (results of arithmetic on normalised elements)."""
    v = object.__new__(Vec3D)
    object.__setattr__(v, "_vec", (a, b, c))
    return v


class Vec3D(Sequence[T_co]):
    """Three numbers with elementwise ``+ - * / // %`` (with vectors or scalars).

    >>> Vec3D(1, 2, 3) * Vec3D(2, 3, 4)
    Vec3D(2, 6, 12)
    >>> Vec3D(1, 2, 3) / Vec3D(3, 2, 1)
    Vec3D(0.3333333333333333, 1.0, 3.0)

    Comparisons ``<``, ``<=``, ``>``, ``>=`` hold when they hold for every element.
    """

    __slots__ = ("_vec",)
    _vec: tuple[T_co, T_co, T_co]

    @overload
    def __init__(self, x: T_co, y: T_co, z: T_co, /) -> None: ...
    @overload
    def __init__(self, xyz: Sequence[T_co] | Vec3D[T_co], /) -> None: ...
    def __init__(self, *args: Any) -> None:
        if (
            len(args) == 3
            and type(args[0]) in _PLAIN
            and type(args[1]) in _PLAIN
            and type(args[2]) in _PLAIN
        ):
            object.__setattr__(self, "_vec", args)  # the common case, already plain numbers
            return
        if len(args) == 1 and not isinstance(args[0], (int, float, numbers.Number)):
            try:
                args = tuple(args[0])
            except TypeError:
                raise TypeError(
                    f"Vec3D needs three numbers or a sequence of three, got {args[0]!r}"
                ) from None
        if len(args) != 3:
            raise ValueError(f"Vec3D needs exactly three elements, got {len(args)}: {args!r}")
        object.__setattr__(self, "_vec", tuple(_normalise(a) for a in args))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Vec3D is immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return (Vec3D, self._vec)

    # --- sequence behaviour -------------------------------------------------------------------
    @overload
    def __getitem__(self, key: int) -> T_co: ...
    @overload
    def __getitem__(self, key: slice) -> tuple[T_co, ...]: ...
    def __getitem__(self, key: int | slice) -> T_co | tuple[T_co, ...]:
        return self._vec[key]

    def __iter__(self) -> Iterator[T_co]:
        return iter(self._vec)

    def __len__(self) -> int:
        return 3

    @property
    def x(self) -> T_co:
        return self._vec[0]

    @property
    def y(self) -> T_co:
        return self._vec[1]

    @property
    def z(self) -> T_co:
        return self._vec[2]

    def __repr__(self) -> str:
        return f"Vec3D({self._vec[0]!r}, {self._vec[1]!r}, {self._vec[2]!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Vec3D):
            return self._vec == other._vec
        if isinstance(other, tuple):
            return self._vec == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._vec)

    # --- arithmetic --------------------------------------------------------------------------
    @staticmethod
    def _other(other: Any) -> tuple[Any, Any, Any] | None:
        if isinstance(other, Vec3D):
            return other._vec
        if type(other) in _PLAIN:
            return (other, other, other)
        if isinstance(other, (tuple, list)) and len(other) == 3:
            return (_normalise(other[0]), _normalise(other[1]), _normalise(other[2]))
        if isinstance(other, numbers.Real):
            v = _normalise(other)
            return (v, v, v)
        return None

    @overload
    def __add__(self: Vec3D[int], other: Vec3D[int] | int) -> Vec3D[int]: ...
    @overload
    def __add__(self, other: Vec3D[float] | float) -> Vec3D[float]: ...
    def __add__(self, other: Any) -> Any:
        o = self._other(other)
        if o is None:
            return NotImplemented
        return _plain_vec(self._vec[0] + o[0], self._vec[1] + o[1], self._vec[2] + o[2])

    @overload
    def __radd__(self: Vec3D[int], other: int) -> Vec3D[int]: ...
    @overload
    def __radd__(self, other: float) -> Vec3D[float]: ...
    def __radd__(self, other: Any) -> Any:
        return self.__add__(other)

    @overload
    def __sub__(self: Vec3D[int], other: Vec3D[int] | int) -> Vec3D[int]: ...
    @overload
    def __sub__(self, other: Vec3D[float] | float) -> Vec3D[float]: ...
    def __sub__(self, other: Any) -> Any:
        o = self._other(other)
        if o is None:
            return NotImplemented
        return _plain_vec(self._vec[0] - o[0], self._vec[1] - o[1], self._vec[2] - o[2])

    @overload
    def __rsub__(self: Vec3D[int], other: int) -> Vec3D[int]: ...
    @overload
    def __rsub__(self, other: float) -> Vec3D[float]: ...
    def __rsub__(self, other: Any) -> Any:
        o = self._other(other)
        if o is None:
            return NotImplemented
        return _plain_vec(o[0] - self._vec[0], o[1] - self._vec[1], o[2] - self._vec[2])

    @overload
    def __mul__(self: Vec3D[int], other: Vec3D[int] | int) -> Vec3D[int]: ...
    @overload
    def __mul__(self, other: Vec3D[float] | float) -> Vec3D[float]: ...
    def __mul__(self, other: Any) -> Any:
        o = self._other(other)
        if o is None:
            return NotImplemented
        return _plain_vec(self._vec[0] * o[0], self._vec[1] * o[1], self._vec[2] * o[2])

    @overload
    def __rmul__(self: Vec3D[int], other: int) -> Vec3D[int]: ...
    @overload
    def __rmul__(self, other: float) -> Vec3D[float]: ...
    def __rmul__(self, other: Any) -> Any:
        return self.__mul__(other)

    def __truediv__(self, other: Vec3D[float] | float) -> Vec3D[float]:
        o = self._other(other)
        if o is None:
            return NotImplemented
        return _plain_vec(self._vec[0] / o[0], self._vec[1] / o[1], self._vec[2] / o[2])

    def __rtruediv__(self, other: float) -> Vec3D[float]:
        o = self._other(other)
        if o is None:
            return NotImplemented
        return _plain_vec(o[0] / self._vec[0], o[1] / self._vec[1], o[2] / self._vec[2])

    @overload
    def __floordiv__(self: Vec3D[int], other: Vec3D[int] | int) -> Vec3D[int]: ...
    @overload
    def __floordiv__(self, other: Vec3D[float] | float) -> Vec3D[float]: ...
    def __floordiv__(self, other: Any) -> Any:
        o = self._other(other)
        if o is None:
            return NotImplemented
        return _plain_vec(self._vec[0] // o[0], self._vec[1] // o[1], self._vec[2] // o[2])

    @overload
    def __rfloordiv__(self: Vec3D[int], other: int) -> Vec3D[int]: ...
    @overload
    def __rfloordiv__(self, other: float) -> Vec3D[float]: ...
    def __rfloordiv__(self, other: Any) -> Any:
        o = self._other(other)
        if o is None:
            return NotImplemented
        return _plain_vec(o[0] // self._vec[0], o[1] // self._vec[1], o[2] // self._vec[2])

    @overload
    def __mod__(self: Vec3D[int], other: Vec3D[int] | int) -> Vec3D[int]: ...
    @overload
    def __mod__(self, other: Vec3D[float] | float) -> Vec3D[float]: ...
    def __mod__(self, other: Any) -> Any:
        o = self._other(other)
        if o is None:
            return NotImplemented
        return _plain_vec(self._vec[0] % o[0], self._vec[1] % o[1], self._vec[2] % o[2])

    @overload
    def __rmod__(self: Vec3D[int], other: int) -> Vec3D[int]: ...
    @overload
    def __rmod__(self, other: float) -> Vec3D[float]: ...
    def __rmod__(self, other: Any) -> Any:
        o = self._other(other)
        if o is None:
            return NotImplemented
        return _plain_vec(o[0] % self._vec[0], o[1] % self._vec[1], o[2] % self._vec[2])

    def __neg__(self) -> Vec3D[T_co]:
        return Vec3D(-self._vec[0], -self._vec[1], -self._vec[2])  # type: ignore[arg-type]

    def __pos__(self) -> Vec3D[T_co]:
        return self

    def __abs__(self) -> Vec3D[T_co]:
        return Vec3D(abs(self._vec[0]), abs(self._vec[1]), abs(self._vec[2]))  # type: ignore[arg-type]

    def _all(self, other: Any, op: Any) -> bool:
        o = self._other(other)
        if o is None:
            return NotImplemented
        return all(op(a, b) for a, b in zip(self._vec, o, strict=True))

    def __lt__(self, other: Vec3D[float] | float) -> bool:
        return self._all(other, lambda a, b: a < b)

    def __le__(self, other: Vec3D[float] | float) -> bool:
        return self._all(other, lambda a, b: a <= b)

    def __gt__(self, other: Vec3D[float] | float) -> bool:
        return self._all(other, lambda a, b: a > b)

    def __ge__(self, other: Vec3D[float] | float) -> bool:
        return self._all(other, lambda a, b: a >= b)

    # --- conversions -------------------------------------------------------------------------
    def int(self) -> Vec3D[builtins.int]:
        """Truncate each element toward zero, like Python's ``int()``."""
        return Vec3D(int(self._vec[0]), int(self._vec[1]), int(self._vec[2]))

    def round(self) -> Vec3D[builtins.int]:
        """Round each element to the nearest integer (halves to even, like ``round()``)."""
        return _plain_vec(round(self._vec[0]), round(self._vec[1]), round(self._vec[2]))

    def __round__(self) -> Vec3D[builtins.int]:
        return self.round()

    def floor(self) -> Vec3D[builtins.int]:
        return Vec3D(math.floor(self._vec[0]), math.floor(self._vec[1]), math.floor(self._vec[2]))

    def ceil(self) -> Vec3D[builtins.int]:
        return Vec3D(math.ceil(self._vec[0]), math.ceil(self._vec[1]), math.ceil(self._vec[2]))

    def float(self) -> Vec3D[builtins.float]:
        return Vec3D(float(self._vec[0]), float(self._vec[1]), float(self._vec[2]))

    def is_integral(self, abs_tol: builtins.float = 1e-6) -> builtins.bool:
        """Whether every element is within ``abs_tol`` of an integer."""
        return all(abs(e - round(e)) <= abs_tol for e in self._vec)

    def int_checked(
        self, what: builtins.str = "value", abs_tol: builtins.float = 1e-6
    ) -> Vec3D[builtins.int]:
        """Round to integers, raising ``ValueError`` if an element is not (nearly) integral."""
        if not self.is_integral(abs_tol):
            raise ValueError(f"{what} must be whole numbers, got {self!r}")
        return self.round()

    def allclose(
        self,
        other: Vec3D[builtins.float] | Sequence[builtins.float],
        rel_tol: builtins.float = 1e-9,
        abs_tol: builtins.float = 1e-9,
    ) -> builtins.bool:
        return all(
            math.isclose(a, b, rel_tol=rel_tol, abs_tol=abs_tol)
            for a, b in zip(self._vec, other, strict=True)
        )

    def prod(self) -> T_co:
        return self._vec[0] * self._vec[1] * self._vec[2]  # type: ignore[return-value]

    def max(self) -> T_co:
        return max(self._vec)

    def min(self) -> T_co:
        return min(self._vec)

    def tuple(self) -> builtins.tuple[T_co, T_co, T_co]:
        return self._vec


IntVec3D = Vec3D[int]
"""``Vec3D`` of ints, for annotations (``IntVec3D(1, 2, 3)`` also constructs one)."""


def to_vec3d(value: Vec3D[Any] | Sequence[float] | float, name: str = "value") -> Vec3D[Any]:
    """Accept a ``Vec3D``, a sequence of three numbers, or one number for all three."""
    if isinstance(value, Vec3D):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Vec3D(value, value, value)
    try:
        return Vec3D(*value)  # type: ignore[misc]
    except (TypeError, ValueError) as e:
        raise ValueError(f"`{name}` must be three numbers, got {value!r}") from e
