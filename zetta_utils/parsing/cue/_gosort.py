"""``list.Sort`` and ``list.SortStable`` with a struct comparator (``{x: _, y: _, less:
x < y}``, ``{list.Comparer, ...}``), as CUE v0.4 runs them: ``less`` of the comparator
filled with ``x`` and ``y`` decides each comparison, made in the order of Go's
``sort.Stable`` (both functions are stable in v0.4, measured; the order of the comparisons
matters for a comparator that is not a strict order). A comparison whose ``less`` is not
a bool fails the call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._builtins import ArgError, Call
from ._values import Bottom, DataVal, Num


def is_struct_comparator(c: Call, i: int) -> bool:
    v = c.raw(i)
    if isinstance(v, (Num, str, bytes, bool, DataVal)):
        return False
    return bool(getattr(v, "is_struct", False)) and not getattr(v, "is_list", True)


def _less_fn(c: Call, items: list[Any]) -> Callable[[int, int], bool]:
    cmp = c.args[1]

    def less(i: int, j: int) -> bool:
        out = c.ev.fill_select(cmp, {"x": items[i], "y": items[j]}, "less", c.pos)
        if isinstance(out, Bottom):
            raise ArgError(out)
        if not isinstance(out, bool):
            raise c.fail("less of the comparator is not a bool")
        return out

    return less


def go_sort(c: Call, items: list[Any]) -> list[Any]:
    data = list(items)
    _stable(data, _less_fn(c, data))
    return data


def _swap(d: list[Any], i: int, j: int) -> None:
    d[i], d[j] = d[j], d[i]


def _insertion_sort(d: list[Any], less: Callable[[int, int], bool], a: int, b: int) -> None:
    for i in range(a + 1, b):
        j = i
        while j > a and less(j, j - 1):
            _swap(d, j, j - 1)
            j -= 1


# ----------------------------------------------------------- Go 1.15 sort.Stable
def _sym_merge(d: list[Any], less: Callable[[int, int], bool], a: int, m: int, b: int) -> None:
    if m - a == 1:
        i, j = m, b
        while i < j:
            h = (i + j) >> 1
            if less(h, a):
                i = h + 1
            else:
                j = h
        for k in range(a, i - 1):
            _swap(d, k, k + 1)
        return
    if b - m == 1:
        i, j = a, m
        while i < j:
            h = (i + j) >> 1
            if not less(m, h):
                i = h + 1
            else:
                j = h
        for k in range(m, i, -1):
            _swap(d, k, k - 1)
        return
    mid = (a + b) >> 1
    n = mid + m
    if m > mid:
        start, r = n - b, mid
    else:
        start, r = a, m
    p = n - 1
    while start < r:
        c = (start + r) >> 1
        if not less(p - c, c):
            start = c + 1
        else:
            r = c
    end = n - start
    if start < m < end:
        _rotate(d, start, m, end)
    if a < start < mid:
        _sym_merge(d, less, a, start, mid)
    if mid < end < b:
        _sym_merge(d, less, mid, end, b)


def _swap_range(d: list[Any], a: int, b: int, n: int) -> None:
    for i in range(n):
        _swap(d, a + i, b + i)


def _rotate(d: list[Any], a: int, m: int, b: int) -> None:
    i, j = m - a, b - m
    while i != j:
        if i > j:
            _swap_range(d, m - i, m, j)
            i -= j
        else:
            _swap_range(d, m - i, m + j - i, i)
            j -= i
    _swap_range(d, m - i, m, i)


def _stable(d: list[Any], less: Callable[[int, int], bool]) -> None:
    n = len(d)
    block = 20
    a, b = 0, block
    while b <= n:
        _insertion_sort(d, less, a, b)
        a, b = b, b + block
    _insertion_sort(d, less, a, n)
    while block < n:
        a, b = 0, 2 * block
        while b <= n:
            _sym_merge(d, less, a, a + block, b)
            a, b = b, b + 2 * block
        m = a + block
        if m < n:
            _sym_merge(d, less, a, m, n)
        block *= 2


__all__ = ["go_sort", "is_struct_comparator"]
