"""The ``uuid`` and ``encoding/csv`` packages of CUE v0.4, with v0.4's quirks:
``uuid.ToInt`` reads the text of the UUID as a big-endian number, ``uuid.ToString``
returns its argument, ``uuid.FromInt`` takes the magnitude, ``uuid.Valid`` fails on
every call."""

from __future__ import annotations

import re
import uuid

from ._builtins import Builtin, Call, functions
from ._values import DataVal, Num, make_int, num_str

_HEX32 = re.compile(r"[0-9a-fA-F]{32}")


def parse_uuid(s: str) -> uuid.UUID:
    """Go's uuid.Parse: 36 characters with dashes, optionally in braces or after
    ``urn:uuid:``, or 32 hex digits (ValueError otherwise)."""
    n = len(s)
    if n == 45:
        if s[:9].lower() != "urn:uuid:":
            raise ValueError(f"invalid urn prefix: {s[:9]!r}")
        s = s[9:]
    elif n == 38:
        if s[0] != "{" or s[-1] != "}":
            raise ValueError("invalid UUID format")
        s = s[1:-1]
    elif n == 32:
        if not _HEX32.fullmatch(s):
            raise ValueError("invalid UUID format")
        return uuid.UUID(hex=s)
    elif n != 36:
        raise ValueError(f"invalid UUID length: {n}")
    if any(s[i] != "-" for i in (8, 13, 18, 23)) or not _HEX32.fullmatch(s.replace("-", "")):
        raise ValueError("invalid UUID format")
    return uuid.UUID(s)


def _variant(u: uuid.UUID) -> int:
    b = u.bytes[8]
    if b & 0xC0 == 0x80:
        return 1  # RFC 4122
    if b & 0xE0 == 0xC0:
        return 3  # Microsoft
    if b & 0xE0 == 0xE0:
        return 4  # future
    return 2  # reserved


def _uuid_funcs() -> dict[str, Builtin]:
    def parsed(c: Call, i: int) -> uuid.UUID:
        try:
            return parse_uuid(c.string(i))
        except ValueError as e:
            raise c.fail(str(e)) from None

    def from_int(c: Call) -> object:
        n = abs(c.integer(0))  # the magnitude's bytes, as CUE v0.4 takes them
        if n >= 1 << 128:
            raise c.fail(f"invalid UUID (got {(n.bit_length() + 7) // 8} bytes)")
        return str(uuid.UUID(int=n))

    def valid(c: Call) -> object:
        parsed(c, 0)
        # CUE v0.4 fails here too (an internal assertion) instead of returning true.
        raise c.fail("uuid.Valid cannot succeed in CUE v0.4")

    fs = [
        Builtin("uuid.SHA1", 2, lambda c: str(uuid.uuid5(parsed(c, 0), c.string(1)))),
        Builtin("uuid.MD5", 2, lambda c: str(uuid.uuid3(parsed(c, 0), c.string(1)))),
        Builtin("uuid.Parse", 1, lambda c: str(parsed(c, 0))),
        Builtin("uuid.ToString", 1, lambda c: c.string(0)),  # unchanged, as in v0.4
        Builtin("uuid.URN", 1, lambda c: parsed(c, 0).urn),
        Builtin("uuid.FromInt", 1, from_int),
        Builtin("uuid.ToInt", 1, lambda c: make_int(int.from_bytes(c.string(0).encode(), "big"))),
        Builtin("uuid.Variant", 1, lambda c: make_int(_variant(parsed(c, 0)))),
        Builtin("uuid.Version", 1, lambda c: make_int(parsed(c, 0).bytes[6] >> 4)),
        Builtin("uuid.Valid", 1, valid, validator=True),
    ]
    return functions("uuid", fs)


_NAMESPACES = {
    "DNS": str(uuid.NAMESPACE_DNS),
    "URL": str(uuid.NAMESPACE_URL),
    "OID": str(uuid.NAMESPACE_OID),
    "X500": str(uuid.NAMESPACE_X500),
    "Nil": str(uuid.UUID(int=0)),
}


# ------------------------------------------------------------------------- csv
def _csv_field(c: Call, x: object) -> str:
    if isinstance(x, str):
        s = x
    elif isinstance(x, bool):
        s = "true" if x else "false"
    elif isinstance(x, Num):
        s = num_str(x)
    else:
        raise c.fail("csv fields must be strings, numbers or bools")
    needs_quotes = s != "" and (
        s == "\\." or any(ch in s for ch in ',"\r\n') or s[0] in " \t\n\v\f\r\x85\xa0"
    )
    return '"' + s.replace('"', '""') + '"' if needs_quotes else s


def _csv_encode(c: Call) -> object:
    out = []
    for row in c.items(0):
        if not isinstance(row, list):
            raise c.fail("argument 0 must be a list of lists")
        out.append(",".join(_csv_field(c, x) for x in row) + "\n")
    return "".join(out)


def csv_decode(text: str) -> list[list[str]]:
    """Go's csv.Reader with its defaults: quoted fields, ``""`` for a quote, records
    with as many fields as the first (ValueError otherwise)."""
    text = text.replace("\r\n", "\n")
    records: list[list[str]] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] == "\n":  # empty lines are skipped
            i += 1
            continue
        record: list[str] = []
        while True:
            if i < n and text[i] == '"':
                buf = []
                i += 1
                while True:
                    j = text.find('"', i)
                    if j < 0:
                        raise ValueError('extraneous or missing " in quoted-field')
                    buf.append(text[i:j])
                    if text.startswith('""', j):
                        buf.append('"')
                        i = j + 2
                        continue
                    i = j + 1
                    break
                if i < n and text[i] not in ",\n":
                    raise ValueError('extraneous or missing " in quoted-field')
                record.append("".join(buf))
            else:
                j = i
                while j < n and text[j] not in ",\n":
                    if text[j] == '"':
                        raise ValueError('bare " in non-quoted-field')
                    j += 1
                record.append(text[i:j])
                i = j
            if i < n and text[i] == ",":
                i += 1
                continue
            i += 1  # the newline (or the end)
            break
        if records and len(record) != len(records[0]):
            raise ValueError("wrong number of fields")
        records.append(record)
    return records


def _csv_funcs() -> dict[str, Builtin]:
    def decode(c: Call) -> object:
        try:
            return csv_decode(c.bytes_(0).decode())
        except (ValueError, UnicodeDecodeError) as e:
            raise c.fail(f"csv: {e}") from None

    fs = [Builtin("csv.Encode", 1, _csv_encode), Builtin("csv.Decode", 1, decode)]
    return functions("encoding/csv", fs)


def _comparer() -> object:
    """``list.Comparer`` as CUE v0.4 defines it: a struct with the regular fields ``T``,
    ``x``, ``y`` and ``less`` (v0.4 spells ``T`` as a field, so it is exported too)."""
    from ._parser import parse
    from ._resolve import resolve

    f = parse("T: _\nx: T\ny: T\nless: bool\n", "<list.Comparer>")
    resolve(f)
    return f.struct


COMPARER = _comparer()

PACKAGES: dict[str, dict[str, object]] = {
    "uuid": {**_uuid_funcs(), "ns": DataVal(_NAMESPACES)},
    "encoding/csv": dict(_csv_funcs()),
}
LIST_MEMBERS: dict[str, object] = {"Comparer": COMPARER}
