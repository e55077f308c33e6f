"""Export of an evaluated value to data, as ``cue export --out json`` does: regular fields
only, in CUE's field order, every value concrete, and every error reported."""

from __future__ import annotations

import base64
from typing import Any

from ._ast import label_is_regular, label_str
from ._errors import CueError, Pos
from ._eval import Evaluator, Vertex, ordered_labels, short_str, sort_arcs
from ._values import NULLV, Num, num_str, num_to_python

_MAX_ERRORS = 20


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
    if isinstance(x, bytes):
        return base64.b64encode(x).decode("ascii")
    return x


def export(ev: Evaluator, root: Vertex, filename: str) -> Any:
    ev.finalize(root)
    ex = Exporter(ev, filename)
    out = ex.value(root)
    if ex.errors:
        raise CueError("\n".join(ex.errors))
    return out


__all__ = ["export", "label_str", "num_str", "ordered_labels", "sort_arcs"]
