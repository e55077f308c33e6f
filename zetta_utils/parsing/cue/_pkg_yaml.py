"""``yaml.Marshal`` and ``yaml.MarshalStream`` of CUE v0.4 for the values run specs hold:
structs, lists, numbers (CUE's number text, without exponent), booleans, null and one-line
strings of printable ASCII, written in block style with two-space indentation as CUE writes
them: a string that YAML would read as a number, boolean or null is double-quoted, one that
cannot be plain (libyaml's rules) single-quoted. Other strings (non-ASCII, several lines,
tabs, starting with a digit, sign or dot but not a number, ...), numbers with an exponent,
long lines with spaces and bytes are unsupported, as are ``Unmarshal`` and the validators.
"""

from __future__ import annotations

import re

from ._builtins import ArgError, Builtin, Call, functions
from ._errors import unsupported
from ._values import NULLV, Num, num_str
from ._yaml_decode import YamlError, documents, unmarshal

_NUMBER = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|0x[0-9a-fA-F]+")
_WORDS = frozenset(
    "true True TRUE false False FALSE null Null NULL ~".split()
)  # the YAML 1.2 core schema's booleans and null


class Unsupported(ValueError):
    pass


def _plain_allowed(s: str) -> bool:
    """libyaml's analysis of a one-line printable ASCII scalar in block context."""
    if s[0] == " " or s[-1] == " ":
        return False
    if s.startswith(("---", "...")) and (len(s) == 3 or s[3] in " \t"):
        return False
    for i, ch in enumerate(s):
        followed_by_space = i + 1 >= len(s) or s[i + 1] in " \t"
        if i == 0:
            if ch in "#,[]{}&*!|>'\"%@`":
                return False
            if ch in "?:-" and followed_by_space:
                return False
        elif ch == ":" and followed_by_space:
            return False
        elif ch == "#" and s[i - 1] in " \t":
            return False
    return True


def _string(s: str) -> str:
    if s == "" or s in _WORDS or _NUMBER.fullmatch(s):
        return f'"{s}"'
    if not all(" " <= ch <= "~" for ch in s) or s[0] in "0123456789+-." or s == "<<":
        raise Unsupported(f"a string such as {s!r}")
    if _plain_allowed(s):
        return s
    return "'" + s.replace("'", "''") + "'"


def _scalar(x: object) -> str | None:
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, Num):
        text = num_str(x)
        if "e" in text.lower():  # CUE keeps a literal's own exponent form in some places
            raise Unsupported(f"a number with an exponent ({text})")
        return text
    if isinstance(x, str):
        return _string(x)
    if x is NULLV:
        return "null"
    if isinstance(x, dict) and not x:
        return "{}"
    if isinstance(x, list) and not x:
        return "[]"
    if isinstance(x, (dict, list)):
        return None
    raise Unsupported("bytes")


def _line(line: str) -> str:
    # Go's YAML emitter may fold a long line at a space: not modelled.
    if len(line) > 70 and " " in line.lstrip(" -"):
        raise Unsupported(f"a long line with spaces ({line.strip()[:30]}...)")
    return line


def _block(x: object, indent: int) -> list[str]:
    pad = " " * indent
    out: list[str] = []
    if isinstance(x, dict):
        for k, v in x.items():
            s = _scalar(v)
            if s is not None:
                out.append(_line(f"{pad}{_string(k)}: {s}"))
            else:
                out.append(f"{pad}{_string(k)}:")
                out += _block(v, indent + 2 if isinstance(v, dict) else indent)
        return out
    assert isinstance(x, list)
    for v in x:
        s = _scalar(v)
        if s is not None:
            out.append(_line(f"{pad}- {s}"))
        else:
            lines = _block(v, indent + 2)
            out.append(f"{pad}- {lines[0][indent + 2 :]}")
            out += lines[1:]
    return out


def yaml_marshal(x: object) -> str:
    s = _scalar(x)
    if s is not None:
        return _line(s) + "\n"
    return "\n".join(_block(x, 0)) + "\n"


def _yaml_funcs() -> dict[str, Builtin]:
    def marshal(c: Call) -> object:
        try:
            return yaml_marshal(c.data(0))
        except Unsupported as e:
            raise unsupported(c.pos, f"yaml.Marshal of {e}") from None

    def marshal_stream(c: Call) -> object:
        try:
            return "---\n".join(yaml_marshal(v) for v in c.items(0))
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
