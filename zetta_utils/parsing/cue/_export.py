"""Export of an evaluated value to data, as ``cue export --out json`` does: regular fields
only, in CUE's field order, every value concrete, and every error reported."""

from __future__ import annotations

from typing import Any

from ._ast import label_is_regular, label_str
from ._errors import CueError, Pos
from ._eval import Evaluator, Vertex, short_str
from ._values import NULLV, Num, num_str, num_to_python

_MAX_ERRORS = 20


def sort_arcs(fronts: list[list[object]]) -> dict[object, int]:
    """Topological merge of the field orders of the struct literals that make up a
    value (a variant of Kahn's algorithm, as ``cue`` does it). Returns a rank per label;
    the highest rank comes first."""
    counts: dict[object, int] = {}
    for a in fronts:
        if len(a) <= 1:
            continue
        for f in a[1:]:
            counts[f] = counts.get(f, 0) + 1
    heads = [0] * len(fronts)
    index = -1
    nfronts = len(fronts)
    while True:
        progressed = False
        for i in range(nfronts):
            a = fronts[i]
            h = heads[i]
            if h >= len(a):
                continue
            f = a[h]
            n = counts.get(f, 0)
            if n > 0:
                continue
            h += 1
            heads[i] = h
            if len(a) - h > 1 and counts.get(a[h], 0) > 0:
                counts[a[h]] -= 1
            if n == 0:
                counts[f] = index
                index -= 1
            progressed = True
            break
        if progressed:
            continue
        for i in range(nfronts):
            if heads[i] < len(fronts[i]):
                counts[fronts[i][heads[i]]] = 0
                progressed = True
                break
        if not progressed:
            return counts


def ordered_labels(v: Vertex) -> list[object]:
    sets = [list(s) for s in v.structs]
    m = sort_arcs(sets)
    extra = [k for k in v.arcs if k not in m]
    sets = [list(s) for s in v.structs]
    if extra:
        sets.append(extra)
    m = sort_arcs(sets)
    return sorted(m, key=lambda f: -m[f])


class Exporter:
    def __init__(self, ev: Evaluator, filename: str) -> None:
        self.ev = ev
        self.errors: list[str] = []
        self.seen: set[str] = set()
        self.filename = filename

    def report(self, v: Vertex, msg: str, pos: Pos | None) -> None:
        if pos is None:
            pos = v.first_pos() or Pos(self.filename, 1, 1)
        path = v.path()
        text = f"{pos}: {path + ': ' if path else ''}{msg}"
        if text not in self.seen and len(self.errors) < _MAX_ERRORS:
            self.seen.add(text)
            self.errors.append(text)

    def value(self, v: Vertex) -> Any:
        """Data of a regular value; reports errors and non-concrete values."""
        if v.err is not None:
            self.report(v, v.err.msg, v.err.pos)
            self.check_all(v)
            return None
        if v.is_list:
            out = []
            for i in sorted(k for k in v.arcs if isinstance(k, int)):
                out.append(self.value(v.arcs[i]))
            self.check_nonregular(v)
            return out
        if v.is_struct:
            obj: dict[str, Any] = {}
            for k in ordered_labels(v):
                arc = v.arcs.get(k)
                if arc is None or arc.optional:
                    continue
                if label_is_regular(k):
                    obj[k] = self.value(arc)  # type: ignore[index]
                else:
                    self.check_all(arc)
            return obj
        if v.scalar is not None:
            self.check_nonregular(v)
            return scalar_to_python(v.scalar)
        self.report(v, f"incomplete value {short_str(v)}", None)
        return None

    def check_nonregular(self, v: Vertex) -> None:
        for k, arc in v.arcs.items():
            if not isinstance(k, int) and not label_is_regular(k) and not arc.optional:
                self.check_all(arc)

    def check_all(self, v: Vertex) -> None:
        """Report permanent errors anywhere below a value that need not be concrete."""
        err = v.err
        if err is not None and err.fatal:
            self.report(v, err.msg, err.pos)
        if v.child_err is None and (err is None or not err.fatal):
            return
        for arc in v.arcs.values():
            if not arc.optional:
                self.check_all(arc)


def scalar_to_python(x: object) -> Any:
    if isinstance(x, Num):
        return num_to_python(x)
    if x is NULLV:
        return None
    return x


def export(ev: Evaluator, root: Vertex, filename: str) -> Any:
    ev.finalize(root)
    ex = Exporter(ev, filename)
    out = ex.value(root)
    if ex.errors:
        raise CueError("\n".join(ex.errors))
    return out


__all__ = ["export", "label_str", "num_str", "ordered_labels", "sort_arcs"]
