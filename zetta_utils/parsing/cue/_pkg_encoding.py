"""The ``encoding/json``, ``encoding/base64``, ``encoding/hex`` and ``crypto/*``
packages of CUE v0.4 (Go's output formats: JSON with HTML-safe escapes and CUE's number
text, ``hex.Dump``'s layout)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ._ast import BasicLit, Field, Label, ListLit, Node, StructLit
from ._builtins import ArgError, Builtin, Call, functions
from ._errors import Pos
from ._values import FLOAT, NULLV, Num, data_equal, make_int, num_str
from ._yaml_decode import number_node


# ------------------------------------------------------------------------ json
def _json_string(s: str) -> str:
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch in "<>&" or ch in "\u2028\u2029":
            out.append(f"\\u{o:04x}")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif o < 0x20:
            out.append(f"\\u{o:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def marshal(x: object) -> str:
    """Compact JSON of data as CUE's encoding/json writes it."""
    if isinstance(x, dict):
        return "{" + ",".join(f"{_json_string(k)}:{marshal(v)}" for k, v in x.items()) + "}"
    if isinstance(x, list):
        return "[" + ",".join(marshal(v) for v in x) + "]"
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, Num):
        return num_str(x)
    if isinstance(x, str):
        return _json_string(x)
    if isinstance(x, bytes):
        return _json_string(base64.b64encode(x).decode("ascii"))
    if x is NULLV:
        return "null"
    raise ValueError(f"cannot marshal {x!r}")


def _reject_constant(name: str) -> object:
    raise ValueError(f"invalid JSON value {name}")


def unmarshal(text: str) -> object:
    """JSON text to data, numbers keeping their text (``1.0`` stays a float)."""

    def num(s: str) -> Num:
        if re.fullmatch(r"-?[0-9]+", s):
            return make_int(int(s))
        return Num(FLOAT, Decimal(s))

    def convert(x: Any) -> object:
        if isinstance(x, dict):
            return {k: convert(v) for k, v in x.items()}
        if isinstance(x, list):
            return [convert(v) for v in x]
        if x is None:
            return NULLV
        return x

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        # A repeated key unifies its values in CUE: equal ones are fine.
        out: dict[str, Any] = {}
        for k, v in items:
            if k in out and not data_equal(convert(out[k]), convert(v)):
                raise ValueError(f"{k}: conflicting values in JSON object")
            out[k] = v
        return out

    return convert(
        json.loads(
            text,
            parse_float=num,
            parse_int=num,
            parse_constant=_reject_constant,
            object_pairs_hook=pairs,
        )
    )


def json_syntax(text: str, pos: Pos) -> Node:
    """JSON text as the CUE syntax CUE compiles it to (``json.Validate``): repeated keys
    stay repeated fields (they unify), numbers keep their text's kind."""

    def convert(x: Any) -> Node:
        if isinstance(x, Node):
            return x
        if isinstance(x, list):
            return ListLit(pos, [convert(v) for v in x], None)
        if x is None:
            return BasicLit(pos, "null", None)
        if isinstance(x, bool):
            return BasicLit(pos, "bool", x)
        return BasicLit(pos, "string", x)

    def pairs(items: list[tuple[str, Any]]) -> Node:
        return StructLit(
            pos, [Field(pos, Label(pos, "string", k), convert(v), False) for k, v in items]
        )

    return convert(
        json.loads(
            text,
            parse_float=lambda s: number_node(s, pos),
            parse_int=lambda s: number_node(s, pos),
            parse_constant=_reject_constant,
            object_pairs_hook=pairs,
        )
    )


_TOKEN_RE = re.compile(r'"(?:[^"\\]|\\.)*"|[ \t\r\n]+|[{}\[\],:]|[^ \t\r\n{}\[\],:"]+')


def _validate(text: str) -> None:
    """Raise ValueError unless ``text`` is one JSON value (repeated keys allowed)."""
    json.loads(text, parse_constant=_reject_constant)


def _tokens(text: str) -> list[str]:
    _validate(text)
    return [t for t in _TOKEN_RE.findall(text) if not t.isspace()]


def indent(text: str, prefix: str, step: str) -> str:
    """Go's json.Indent (white space after the value is kept, as Go does)."""
    toks = _tokens(text)
    out: list[str] = []
    depth = 0
    for i, t in enumerate(toks):
        if t in "{[":
            out.append(t)
            if i + 1 < len(toks) and toks[i + 1] in "}]":
                continue
            depth += 1
            out.append("\n" + prefix + step * depth)
        elif t in "}]":
            if out and out[-1] in "{[":
                out.append(t)
                continue
            depth -= 1
            out.append("\n" + prefix + step * depth + t)
        elif t == ",":
            out.append(",\n" + prefix + step * depth)
        elif t == ":":
            out.append(": ")
        else:
            out.append(t)
    return "".join(out) + text[len(text.rstrip(" \t\r\n")) :]


def _html_escape(text: str) -> str:
    return re.sub("[<>&\u2028\u2029]", lambda m: f"\\u{ord(m.group(0)):04x}", text)


def _json_funcs() -> dict[str, Builtin]:
    def text(c: Call, i: int) -> str:
        try:
            return c.bytes_(i).decode()
        except UnicodeDecodeError:
            raise c.fail("invalid UTF-8") from None

    def guarded(f: Callable[[Call], object]) -> Callable[[Call], object]:
        def g(c: Call) -> object:
            try:
                return f(c)
            except (ValueError, RecursionError) as e:
                raise c.fail(f"json: {e}") from None

        return g

    def valid(c: Call) -> object:
        try:
            _validate(text(c, 0))
        except ValueError:
            return False
        return True

    def marshal_stream(c: Call) -> object:
        return "".join(marshal(v) + "\n" for v in c.items(0))

    def validate(c: Call) -> object:
        data = text(c, 0)
        schema = c.raw(1)
        bad = c.ev.argument_error(schema, 1, c.fn.name, c.pos)
        if bad is not None:
            raise ArgError(bad)
        try:
            doc = json_syntax(data, c.pos)
        except (ValueError, RecursionError):
            raise c.fail("json: invalid JSON") from None
        err = c.ev.unify_error(doc, schema, c.pos, False)
        if err is not None:
            raise c.fail(err.msg)
        return True

    fs = [
        Builtin("json.Marshal", 1, guarded(lambda c: marshal(c.data(0)))),
        Builtin("json.MarshalStream", 1, guarded(marshal_stream)),
        Builtin("json.Unmarshal", 1, guarded(lambda c: unmarshal(text(c, 0)))),
        Builtin("json.Valid", 1, valid, validator=True),
        Builtin("json.Compact", 1, guarded(lambda c: "".join(_tokens(text(c, 0))))),
        Builtin("json.Indent", 3, guarded(lambda c: indent(text(c, 0), c.string(1), c.string(2)))),
        Builtin("json.HTMLEscape", 1, lambda c: _html_escape(text(c, 0))),
        Builtin("json.Validate", 2, validate, validator=True),
    ]
    return functions("encoding/json", fs)


# ---------------------------------------------------------------- base64 / hex
def _base64_funcs() -> dict[str, Builtin]:
    def decode(c: Call) -> object:
        c.null(0)
        try:
            return base64.b64decode(c.bytes_(1), validate=True)
        except binascii.Error as e:
            raise c.fail(f"illegal base64 data: {e}") from None

    def encoded_len(c: Call) -> object:
        c.null(0)
        return make_int((c.integer(1) + 2) // 3 * 4)

    def decoded_len(c: Call) -> object:
        c.null(0)
        return make_int(c.integer(1) // 4 * 3)

    def encode(c: Call) -> object:
        c.null(0)
        return base64.b64encode(c.bytes_(1)).decode("ascii")

    fs = [
        Builtin("base64.Encode", 2, encode),
        Builtin("base64.Decode", 2, decode),
        Builtin("base64.EncodedLen", 2, encoded_len),
        Builtin("base64.DecodedLen", 2, decoded_len),
    ]
    return functions("encoding/base64", fs)


def hex_dump(data: bytes) -> str:
    """Go's hex.Dump: offset, 16 bytes in two groups of 8, the printable characters."""
    lines = []
    for off in range(0, len(data), 16):
        row = data[off : off + 16]
        cells = "".join(
            (f"{row[i]:02x} " if i < len(row) else "   ") + (" " if i == 7 else "")
            for i in range(16)
        )
        text = "".join(chr(b) if 32 <= b <= 126 else "." for b in row)
        lines.append(f"{off:08x}  {cells} |{text}|\n")
    return "".join(lines)


def _hex_funcs() -> dict[str, Builtin]:
    def decode(c: Call) -> object:
        try:
            return binascii.unhexlify(c.bytes_(0))
        except (binascii.Error, ValueError) as e:
            raise c.fail(f"encoding/hex: {e}") from None

    fs = [
        Builtin("hex.Encode", 1, lambda c: c.bytes_(0).hex()),
        Builtin("hex.Decode", 1, decode),
        Builtin("hex.EncodedLen", 1, lambda c: make_int(c.integer(0) * 2)),
        Builtin("hex.DecodedLen", 1, lambda c: make_int(c.integer(0) // 2)),
        Builtin("hex.Dump", 1, lambda c: hex_dump(c.bytes_(0))),
    ]
    return functions("encoding/hex", fs)


# ---------------------------------------------------------------------- crypto
def _digest(pkg: str, name: str, algo: str) -> Builtin:
    return Builtin(f"{pkg}.{name}", 1, lambda c: hashlib.new(algo, c.bytes_(0)).digest())


_HMAC_HASHES = {
    "MD5": "md5",
    "SHA1": "sha1",
    "SHA224": "sha224",
    "SHA256": "sha256",
    "SHA384": "sha384",
    "SHA512": "sha512",
    "SHA512_224": "sha512_224",
    "SHA512_256": "sha512_256",
}


def _hmac_sign(c: Call) -> object:
    name = c.string(0)
    algo = _HMAC_HASHES.get(name)
    if algo is None:
        raise c.fail(f"unsupported hash function {name}")
    return hmac.new(c.bytes_(1), c.bytes_(2), algo).digest()


PACKAGES: dict[str, dict[str, object]] = {
    "encoding/json": dict(_json_funcs()),
    "encoding/base64": dict(_base64_funcs()),
    "encoding/hex": dict(_hex_funcs()),
    "crypto/md5": {
        "Sum": _digest("md5", "Sum", "md5"),
        "Size": make_int(16),
        "BlockSize": make_int(64),
    },
    "crypto/sha1": {
        "Sum": _digest("sha1", "Sum", "sha1"),
        "Size": make_int(20),
        "BlockSize": make_int(64),
    },
    "crypto/sha256": {
        "Sum256": _digest("sha256", "Sum256", "sha256"),
        "Sum224": _digest("sha256", "Sum224", "sha224"),
        "Size": make_int(32),
        "Size224": make_int(28),
        "BlockSize": make_int(64),
    },
    "crypto/sha512": {
        "Sum512": _digest("sha512", "Sum512", "sha512"),
        "Sum384": _digest("sha512", "Sum384", "sha384"),
        "Sum512_224": _digest("sha512", "Sum512_224", "sha512_224"),
        "Sum512_256": _digest("sha512", "Sum512_256", "sha512_256"),
        "Size": make_int(64),
        "Size224": make_int(28),
        "Size256": make_int(32),
        "Size384": make_int(48),
        "BlockSize": make_int(128),
    },
    "crypto/hmac": {
        "Sign": Builtin("hmac.Sign", 3, _hmac_sign),
        **{k: k for k in _HMAC_HASHES},
    },
}
