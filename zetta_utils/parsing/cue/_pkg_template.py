"""CUE v0.4's ``text/template`` package: ``Execute`` (Go 1.15's template language, in
``_gotemplate``, over the Go value CUE decodes the data to) and the escaping functions
(Go's ``template.HTMLEscapeString`` and ``template.JSEscapeString``)."""

from __future__ import annotations

from decimal import Decimal

from ._builtins import ArgError, Builtin, Call, functions
from ._errors import unsupported
from ._gofmt import BigInt, GoUnsupported
from ._gotemplate import GoError, execute, html_escape, js_escape, parse
from ._values import INT, NULLV, Num

_SMALLEST = Decimal("4.940656458412465441765687928682213723651e-324")
_LARGEST = Decimal("1.797693134862315708145274237317043567981e+308")


def go_value(d: object) -> object:
    """The Go value CUE v0.4's ``Value.Decode`` makes of CUE data for an ``interface{}``:
    structs as ``map[string]interface {}``, lists as ``[]interface {}``, ints as ``int``
    (``*big.Int`` beyond int64's magnitude), floats as ``float64`` (zero and values a
    float64 cannot hold are errors, as ``Value.Float64`` reports them), bytes as
    ``[]uint8``, null as nil. ValueError with CUE's message where it fails."""
    if isinstance(d, dict):
        return {k: go_value(v) for k, v in d.items()}
    if isinstance(d, list):
        return [go_value(v) for v in d]
    if d is NULLV:
        return None
    if isinstance(d, Num):
        if d.kind == INT:
            n = int(d.d)
            return n if abs(n) < 2**63 else BigInt(n)
        x = d.d
        if x < 0:
            if x > -_SMALLEST:
                raise ValueError("value was rounded up")
            if x < -_LARGEST:
                raise ValueError("value was rounded down")
        elif x < _SMALLEST:
            raise ValueError("value was rounded down")
        elif x > _LARGEST:
            raise ValueError("value was rounded up")
        return float(x)
    if isinstance(d, (bool, str, bytes)):
        return d
    raise ValueError(f"cannot decode {d!r}")


def _execute(c: Call) -> object:
    text = c.string(0)
    c.raw(1)
    bad = c.ev.argument_error(c.args[1], 1, c.fn.name, c.pos)
    if bad is not None:
        raise ArgError(bad)
    try:
        trees = parse(text)
        try:
            data = go_value(c.data(1))
        except ValueError as e:
            raise c.fail(str(e)) from None
        return execute(text, trees, data)
    except GoError as e:
        raise c.fail(str(e)) from None
    except GoUnsupported as e:
        raise unsupported(c.pos, f"template.Execute: {e}") from None


def _template_funcs() -> dict[str, Builtin]:
    fs = [
        Builtin("template.Execute", 2, _execute),
        Builtin("template.HTMLEscape", 1, lambda c: html_escape(c.string(0))),
        Builtin("template.JSEscape", 1, lambda c: js_escape(c.string(0))),
    ]
    return functions("text/template", fs)


PACKAGES: dict[str, dict[str, object]] = {"text/template": dict(_template_funcs())}

__all__ = ["PACKAGES", "go_value", "html_escape", "js_escape"]
