"""The ``encoding/yaml`` package of CUE v0.4: ``Marshal`` and ``MarshalStream`` (yaml.v3's
emitter as CUE drives it, ``_yaml_encode``), ``Unmarshal``, ``Validate`` and
``ValidatePartial`` (go-yaml v2's reading as CUE's fork does it, ``_yaml_decode``).
Unsupported: complex keys (over 128 bytes or with a line break), a merge key merging a map
into itself, and two corners where libyaml 0.2.5 reads text otherwise than go-yaml v2 (a
tag followed by ``,``/``[``/``]``, a ``?`` in a plain scalar inside a flow collection).
"""

from __future__ import annotations

from ._builtins import ArgError, Builtin, Call, functions
from ._errors import unsupported
from ._yaml_decode import SpelledNum, YamlError, documents, unmarshal
from ._yaml_encode import Unsupported, yaml_marshal


def _yaml_funcs() -> dict[str, Builtin]:
    def texts(c: Call) -> dict[tuple[object, ...], str]:
        value = c.raw(0)
        out = c.ev.literal_texts(value)
        root = c.arg_texts[0] if c.arg_texts else None
        if root is None and isinstance(value, SpelledNum):
            root = value.text
        if root is not None:
            out[()] = root
        return out

    def marshal(c: Call) -> object:
        try:
            return yaml_marshal(c.data(0), texts(c))
        except Unsupported as e:
            raise unsupported(c.pos, f"yaml.Marshal of {e}") from None

    def marshal_stream(c: Call) -> object:
        spelled = texts(c)
        try:
            return "---\n".join(
                yaml_marshal(v, {p[1:]: t for p, t in spelled.items() if p[:1] == (i,)})
                for i, v in enumerate(c.items(0))
            )
        except Unsupported as e:
            raise unsupported(c.pos, f"yaml.MarshalStream of {e}") from None

    def unmarshal_(c: Call) -> object:
        try:
            return c.ev.expr_value(unmarshal(c.bytes_(0), c.pos))
        except YamlError as e:
            raise c.fail(str(e)) from None

    def validator(name: str, concrete: bool) -> Builtin:
        def validate(c: Call) -> object:
            data = c.bytes_(0)
            schema = c.raw(1)
            bad = c.ev.argument_error(schema, 1, c.fn.name, c.pos)
            if bad is not None:
                raise ArgError(bad)
            try:
                docs = documents(data, name, c.pos)
            except YamlError as e:
                raise c.fail(str(e)) from None
            for doc in docs:
                err = c.ev.unify_error(doc, schema, c.pos, concrete)
                if err is not None:
                    raise c.fail(err.msg)
            return True

        return Builtin(name, 2, validate, validator=True)

    fs = [
        Builtin("yaml.Marshal", 1, marshal),
        Builtin("yaml.MarshalStream", 1, marshal_stream),
        Builtin("yaml.Unmarshal", 1, unmarshal_),
        validator("yaml.Validate", True),
        validator("yaml.ValidatePartial", False),
    ]
    return functions("encoding/yaml", fs)


PACKAGES: dict[str, dict[str, object]] = {"encoding/yaml": dict(_yaml_funcs())}

__all__ = ["PACKAGES", "yaml_marshal"]
