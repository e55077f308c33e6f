"""Reading YAML as CUE v0.4's ``encoding/yaml`` does, for ``yaml.Unmarshal``, ``yaml.Validate``
and ``yaml.ValidatePartial``.

CUE v0.4 reads YAML with its fork of go-yaml v2 (a port of libyaml) and turns each document
into CUE syntax, which is then evaluated like any CUE. This module does the same in three
steps:

1. events: libyaml itself (PyYAML's binding), so the scanner and parser, their errors and
   their corners are libyaml's;
2. composition into nodes with anchors and aliases, as go-yaml's parser does;
3. translation into the syntax tree of the built-in evaluator, with CUE v0.4's rules, which
   were measured against the real CUE (``tests/parsing/cue_yamlcheck.py``):

   - plain scalars resolve with YAML 1.2's booleans (``true``/``True``/``TRUE``, never
     ``yes``/``on``), ``null``/``Null``/``NULL``/``~``/empty, Go's integer syntax (``0x1F``,
     ``0o17``, ``017`` (octal), ``0b11``, underscores ignored) and floats that have a dot or
     a signed exponent (``1e3`` is a string, ``1e+3`` a float); timestamps stay strings;
   - the number's text is then read as a CUE number literal, so ``+1``, ``.inf``, ``0O17``,
     ``09`` and ``!!float 1`` are errors and an integer too large for 64 bits is an int;
   - keys that are identifiers starting with ``_`` make hidden fields; other keys are
     labels with the scalar's text (``1``, ``true``, ``~``); repeated keys unify;
   - merge keys (``<<``) override the fields before them and make later keys override too;
   - only the first document is read by ``Unmarshal``; ``Validate`` reads them all;
   - a string of several lines with a control character other than ``\\a\\b\\t\\v\\f`` is an
     error (CUE's multi-line string cannot hold the ``\\x`` escape go-yaml writes for it).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import unicodedata
from decimal import Decimal
from typing import Any

import yaml as _pyyaml

from ._ast import BasicLit, DataLit, Field, Label, ListLit, Node, StructLit
from ._errors import Pos, unsupported
from ._gotime import go_parse
from ._values import FLOAT, INT, NULLV, Num, error

_CParser: Any
try:  # libyaml through PyYAML: the scanner and parser go-yaml was ported from
    from yaml._yaml import CParser as _CParser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _CParser = None

_P = "tag:yaml.org,2002:"
STR, BOOL, INT_TAG, FLOAT_TAG = _P + "str", _P + "bool", _P + "int", _P + "float"
NULL_TAG, TIMESTAMP, BINARY, MERGE = _P + "null", _P + "timestamp", _P + "binary", _P + "merge"
_RESOLVABLE = frozenset(("", STR, BOOL, INT_TAG, FLOAT_TAG, NULL_TAG, TIMESTAMP))

_HINTS = {"+": "S", "-": "S", ".": "."}
_HINTS.update(dict.fromkeys("0123456789", "D"))
_HINTS.update(dict.fromkeys("yYnNtTfFoO~", "M"))
_WORDS: dict[str, tuple[str, object]] = {
    **dict.fromkeys(("true", "True", "TRUE"), (BOOL, True)),
    **dict.fromkeys(("false", "False", "FALSE"), (BOOL, False)),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), (NULL_TAG, None)),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), (FLOAT_TAG, math.nan)),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), (FLOAT_TAG, math.inf)),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), (FLOAT_TAG, -math.inf)),
}
_YAML_FLOAT = re.compile(r"[-+]?[0-9]*\.?[0-9]+(?:[eE][-+][0-9]+)?")
_GO_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_GO_INT = re.compile(
    r"([-+]?)(?:0[xX]([0-9a-fA-F]+)|0[bB]([01]+)|0[oO]([0-7]+)|0([0-7]*)|([1-9][0-9]*))"
)
_TIMESTAMP_LAYOUTS = (
    "2006-1-2T15:4:5.999999999Z07:00",
    "2006-1-2t15:4:5.999999999Z07:00",
    "2006-1-2 15:4:5.999999999",
    "2006-1-2",
)
# Control characters Go's strconv.Quote writes as \x escapes: not allowed in the
# multi-line CUE string go-yaml makes of a string with several lines.
_MULTILINE_BAD = frozenset(chr(c) for c in (*range(0x07), *range(0x0E, 0x20)))


class YamlError(Exception):
    """The call fails with this message (go-yaml's error text)."""


class Node_:
    """A node of a YAML document as go-yaml's parser builds it."""

    __slots__ = ("children", "implicit", "kind", "line", "tag", "target", "value")

    def __init__(self, kind: str, line: int, tag: str = "", value: str = "") -> None:
        self.kind = kind  # "scalar", "mapping", "sequence" or "alias"
        self.line = line  # 0-based line of its start
        self.tag = tag
        self.value = value  # a scalar's text; an alias's anchor name
        self.implicit = False
        self.children: list[Node_] = []
        self.target: Node_ | None = None


def _short(tag: str) -> str:
    return "!!" + tag[len(_P) :] if tag.startswith(_P) else tag


def _line(ev: Any) -> int:
    mark = ev.start_mark
    return 0 if mark is None else int(mark.line)


def check_go_yaml_corners(data: bytes, pos: Pos) -> None:
    """Refuse, as unsupported, the corners where libyaml 0.2.5 reads text otherwise than the
    older libyaml that go-yaml v2 ported: a tag followed by ``,``, ``[`` or ``]`` (go-yaml
    reads them as part of the tag) and a ``?`` in a plain scalar inside a flow collection
    (go-yaml ends the scalar there). (A ``:`` before a flow indicator in a flow collection,
    which go-yaml keeps in the scalar, is refused when libyaml reports it.)"""
    if b"!" not in data and b"?" not in data:
        return
    text = data.decode("utf-8", errors="replace")

    def refuse(what: str) -> None:
        raise unsupported(pos, f"YAML with {what} (libyaml and go-yaml v2 read it differently)")

    tokens = _CParser(data or b"\n")
    level = 0
    try:
        while True:
            tok = tokens.get_token()
            if isinstance(tok, _pyyaml.StreamEndToken):
                return
            if isinstance(tok, (_pyyaml.FlowSequenceStartToken, _pyyaml.FlowMappingStartToken)):
                level += 1
            elif isinstance(tok, (_pyyaml.FlowSequenceEndToken, _pyyaml.FlowMappingEndToken)):
                level -= 1
            elif isinstance(tok, _pyyaml.TagToken):
                end = tok.end_mark.index
                if end < len(text) and text[end] in ",[]":
                    refuse("a tag followed by ',', '[' or ']'")
            elif isinstance(tok, _pyyaml.ScalarToken) and tok.plain and level and "?" in tok.value:
                refuse("a '?' in a plain scalar inside a flow collection")
    except _pyyaml.MarkedYAMLError as e:
        mark = e.problem_mark
        if (
            mark is not None
            and "whitespace or line break" in (e.problem or "")
            and text[mark.index : mark.index + 1] in (",", "[", "]")
        ):
            refuse("a tag followed by ',', '[' or ']'")


class Documents:
    """The documents of a YAML stream, read one at a time as go-yaml's Decoder does (a
    syntax error in a later document does not stop the reading of an earlier one)."""

    def __init__(self, data: bytes, name: str, pos: Pos) -> None:
        if _CParser is None:  # pragma: no cover
            raise unsupported(pos, "YAML decoding without libyaml (PyYAML built without it)")
        check_go_yaml_corners(data, pos)
        self.parser = _CParser(data or b"\n")
        self.pos = pos
        self.name = name
        self.started = False

    def fail(self, line: int, msg: str) -> YamlError:
        return YamlError(f"{self.name}:{line + 1}: {msg}")

    def _event(self, peek: bool = False) -> Any:
        try:
            return self.parser.peek_event() if peek else self.parser.get_event()
        except _pyyaml.MarkedYAMLError as e:
            if e.problem == "found unexpected ':'":
                # libyaml 0.2.5's check of "x:" before a flow indicator; go-yaml v2 (as
                # CUE forked it) reads the ':' as part of the plain scalar.
                raise unsupported(
                    self.pos,
                    "YAML with a ':' followed by ',', '?', '[', ']', '{' or '}' in a flow "
                    "collection (libyaml and go-yaml v2 read it differently)",
                ) from None
            line = 0
            if e.problem_mark is not None and e.problem_mark.line != 0:
                line = e.problem_mark.line
                if not isinstance(e, _pyyaml.scanner.ScannerError):
                    line -= 1
            elif e.context_mark is not None and e.context_mark.line != 0:
                line = e.context_mark.line - 1
            raise self.fail(line, e.problem or "unknown problem parsing YAML content") from None
        except _pyyaml.YAMLError as e:
            raise self.fail(0, str(e)) from None

    def next(self) -> tuple[Node_, dict[str, Node_]] | None:
        """The next document's root node and its anchors, or None at the end."""
        if not self.started:
            self._event()  # stream start
            self.started = True
        ev = self._event()
        if isinstance(ev, _pyyaml.StreamEndEvent):
            return None
        assert isinstance(ev, _pyyaml.DocumentStartEvent)
        if ev.version is not None and ev.version != (1, 1):
            raise self.fail(_line(ev), "found incompatible YAML document")
        anchors: dict[str, Node_] = {}
        root = self._node(anchors)
        self._event()  # document end
        return root, anchors

    def _node(self, anchors: dict[str, Node_]) -> Node_:
        ev = self._event()
        line = _line(ev)
        if isinstance(ev, _pyyaml.AliasEvent):
            name = str(ev.anchor)
            n = Node_("alias", line, value=name)
            n.target = anchors.get(name)
            if n.target is None:
                raise self.fail(line, f"unknown anchor '{name}' referenced")
            return n
        if isinstance(ev, _pyyaml.ScalarEvent):
            n = Node_("scalar", line, ev.tag or "", ev.value)
            n.implicit = bool(ev.implicit[0])
        elif isinstance(ev, _pyyaml.SequenceStartEvent):
            n = Node_("sequence", line, ev.tag or "")
        else:
            assert isinstance(ev, _pyyaml.MappingStartEvent)
            n = Node_("mapping", line, ev.tag or "")
        if ev.anchor is not None:
            anchors[ev.anchor] = n
        if n.kind != "scalar":
            while True:
                child = self._node_or_end(anchors)
                if child is None:
                    break
                n.children.append(child)
        return n

    def _node_or_end(self, anchors: dict[str, Node_]) -> Node_ | None:
        if isinstance(self._event(peek=True), (_pyyaml.SequenceEndEvent, _pyyaml.MappingEndEvent)):
            self._event()
            return None
        return self._node(anchors)


# ------------------------------------------------------------------ numbers
class _NumError(Exception):
    pass


def parse_cue_number(s: str) -> Num:
    """A number literal as CUE v0.4's literal.ParseNum reads it (no sign, no multiplier:
    YAML never gives them here). Raises _NumError with CUE's message."""
    n = len(s)
    i = 0

    def mantissa(digits: str) -> bool:
        nonlocal i
        seen, last = False, ""
        while i < n and (s[i] == "_" or s[i] in digits):
            seen = seen or s[i] != "_"
            last = s[i]
            i += 1
        if last == "_":
            raise _NumError("illegal '_' in number")
        return seen

    if n == 0:
        raise _NumError('invalid number ""')
    base, is_float, fraction = 10, False, True
    if s[0] == ".":
        i = 1
        is_float, fraction = True, False
        if not mantissa(_DEC):
            raise _NumError(f'illegal fraction "{s}"')
    elif s[0] == "0":
        i = 1
        c = s[i] if i < n else ""
        if c in _PREFIXES:
            i += 1
            base, digits, name = _PREFIXES[c]
            if not mantissa(digits):
                raise _NumError(f'illegal {name} number "{s}"')
            fraction = False
        else:
            mantissa(_DEC[:8])
            if i < n and s[i] in "89":
                mantissa(_DEC)
                if i >= n or s[i] not in ".eE":
                    raise _NumError(f'illegal integer number "{s}"')
            if i >= n or s[i] not in ".eE":
                fraction = False
                if i > 1:
                    base = 8
    elif not mantissa(_DEC):
        raise _NumError(f'illegal number start "{s}"')
    if fraction and i < n and s[i] == ".":
        is_float = True
        i += 1
        mantissa(_DEC)
    if base == 10 and i < n and s[i] in "eE":
        is_float = True
        i += 1
        if i < n and s[i] in "+-":
            i += 1
        if not mantissa(_DEC):
            raise _NumError(f'illegal exponent "{s}"')
    if i < n:
        raise _NumError(f'invalid number "{s}"')
    body = s.replace("_", "")
    if base == 8:
        return Num(INT, Decimal(int(body[1:].lstrip("o") or "0", 8)))
    if base != 10:
        return Num(INT, Decimal(int(body[2:], base)))
    if is_float:
        return Num(FLOAT, Decimal("0" + body if body.startswith(".") else body))
    return Num(INT, Decimal(int(body)))


_DEC = "0123456789"
_PREFIXES = {
    "x": (16, _DEC + "abcdefABCDEF", "hexadecimal"),
    "X": (16, _DEC + "abcdefABCDEF", "hexadecimal"),
    "b": (2, "01", "binary"),
    "o": (8, _DEC[:8], "octal"),
}


def _go_int(s: str) -> int | None:
    """Go's strconv.ParseInt(s, 0, 64), or else ParseUint(s, 0, 64); None if neither."""
    m = _GO_INT.fullmatch(s)
    if m is None:
        return None
    sign, hx, bn, oc, oc0, dec = m.groups()
    if hx is not None:
        v = int(hx, 16)
    elif bn is not None:
        v = int(bn, 2)
    elif oc is not None:
        v = int(oc, 8)
    elif oc0 is not None:
        v = int(oc0 or "0", 8)
    else:
        v = int(dec)
    if sign == "-":
        v = -v
    if -(2**63) <= v < 2**63:
        return v
    if sign == "" and 0 <= v < 2**64:
        return v
    return None


def _go_float_ok(s: str) -> bool:
    """Go's strconv.ParseFloat(s, 64) of decimal text succeeds (no overflow)."""
    return _GO_FLOAT.fullmatch(s) is not None and not math.isinf(float(s))


def _is_timestamp(s: str) -> bool:
    if len(s) < 5 or not s[:4].isdigit() or not s[:4].isascii() or s[4] != "-":
        return False
    for layout in _TIMESTAMP_LAYOUTS:
        try:
            go_parse(layout, s)
        except ValueError:
            continue
        return True
    return False


# ----------------------------------------------------------------- decoding
class Decoder:
    """One document's nodes as the CUE syntax go-yaml's decoder makes of them."""

    def __init__(self, docs: Documents, anchors: dict[str, Node_], pos: Pos) -> None:
        self.docs = docs
        self.anchors = anchors
        self.pos = pos
        self.active: set[int] = set()
        self.inserting: set[int] = set()
        self.terrors: list[str] = []

    def decode(self, root: Node_) -> Node:
        out = self.expr(root)
        if self.terrors:
            raise YamlError("yaml: unmarshal errors:\n  " + "\n  ".join(self.terrors))
        return out

    def fail(self, line: int, msg: str) -> YamlError:
        return self.docs.fail(line, msg)

    def expr(self, n: Node_) -> Node:
        if n.kind == "alias":
            if id(n) in self.active:
                raise self.fail(n.line, f"anchor '{n.value}' value contains itself")
            self.active.add(id(n))
            assert n.target is not None
            out = self.expr(n.target)
            self.active.discard(id(n))
            return out
        if n.kind == "scalar":
            return self.scalar(n)
        if n.kind == "sequence":
            return ListLit(self.pos, [self.expr(c) for c in n.children], None)
        fields: list[Field] = []
        self.insert_map(n, fields, False)
        return StructLit(self.pos, list(fields))

    # -------------------------------------------------------------- scalars
    def resolve(self, n: Node_) -> tuple[str, object]:
        tag, text = n.tag, n.value
        if tag not in _RESOLVABLE:
            return tag, text
        rtag, out = self._resolve_plain(tag, text)
        if tag in ("", rtag, STR, BINARY):
            return rtag, out
        if tag == FLOAT_TAG and rtag == INT_TAG:
            return FLOAT_TAG, out
        raise self.fail(n.line, f"cannot decode {_short(rtag)} `{text}` as a {_short(tag)}")

    @staticmethod
    def _resolve_plain(tag: str, text: str) -> tuple[str, object]:
        hint = "N" if text == "" else _HINTS.get(text[0])
        if hint is None or tag in (STR, BINARY):
            return STR, text
        word = _WORDS.get(text)
        if word is not None:
            return word
        if hint == ".":
            if _go_float_ok(text):
                return FLOAT_TAG, text
        elif hint in "DS":
            if tag in ("", TIMESTAMP) and _is_timestamp(text):
                return TIMESTAMP, text
            plain = text.replace("_", "")
            if _go_int(plain) is not None:
                return INT_TAG, text
            if _YAML_FLOAT.fullmatch(plain) and _go_float_ok(plain):
                return FLOAT_TAG, text
        return STR, text

    def scalar(self, n: Node_) -> Node:
        tag: str
        resolved: object
        if n.tag == "" and not n.implicit:
            tag, resolved = STR, n.value
        else:
            tag, resolved = self.resolve(n)
            if tag == BINARY:
                try:
                    raw = n.value.replace("\r", "").replace("\n", "")
                    resolved = base64.b64decode(raw.encode("ascii"), validate=True)
                except (binascii.Error, ValueError, UnicodeEncodeError):
                    raise self.fail(n.line, "!!binary value contains invalid base64 data") from None
        if resolved is None:
            return BasicLit(self.pos, "null", None)
        if tag == TIMESTAMP:
            return BasicLit(self.pos, "string", n.value)
        if tag == STR:
            return self.string(n.value)
        if tag == BINARY:
            return BasicLit(self.pos, "bytes", resolved)
        if tag == BOOL:
            return BasicLit(self.pos, "bool", bool(resolved))
        if tag == INT_TAG:
            s = n.value
            if len(s) > 1 and s[0] == "0" and s[1] <= "9":
                s = "0o" + s[1:]  # YAML's octal as CUE's
            return self.number(s)
        if tag == FLOAT_TAG:
            s = n.value
            if isinstance(resolved, float) and (math.isinf(resolved) or math.isnan(resolved)):
                s = "NaN" if math.isnan(resolved) else ("+Inf" if resolved > 0 else "-Inf")
            if n.tag != "" and not any(c in s for c in ".eEiInN"):
                s = "float & " + s
            return self.number(s)
        if tag == NULL_TAG:
            return BasicLit(self.pos, "null", None)
        value = n.value if len(n.value) <= 10 else n.value[:7] + "..."
        self.terrors.append(f"line {n.line + 1}: cannot unmarshal {_short(tag)} `{value}`")
        return DataLit(self.pos, error("cannot unmarshal", self.pos))

    def string(self, s: str) -> Node:
        if "\n" in s and "\r" not in s and not _MULTILINE_BAD.isdisjoint(s):
            return DataLit(self.pos, error("invalid string: invalid syntax", self.pos))
        return BasicLit(self.pos, "string", s)

    def number(self, s: str) -> Node:
        return number_node(s, self.pos)

    # ------------------------------------------------------------- mappings
    def label(self, n: Node_) -> Label:
        if n.tag == "" and not n.implicit:
            tag = STR
        else:
            tag, _ = self.resolve(n)
        name = n.value
        if tag == STR and _identifier(name):
            return Label(self.pos, "ident", name)
        return Label(self.pos, "string", name)

    def insert_map(self, n: Node_, fields: list[Field], merge: bool) -> None:
        if id(n) in self.inserting:
            # go-yaml recurses until the stack overflows: CUE v0.4 crashes.
            raise unsupported(self.pos, "a YAML merge key (<<) that merges a map into itself")
        self.inserting.add(id(n))
        try:
            self._insert_map(n, fields, merge)
        finally:
            self.inserting.discard(id(n))

    def _insert_map(self, n: Node_, fields: list[Field], merge: bool) -> None:
        kids = n.children
        for i in range(0, len(kids) - 1, 2):
            key, val = kids[i], kids[i + 1]
            if key.kind == "scalar" and key.value == "<<" and (key.implicit or key.tag == MERGE):
                merge = True
                self.merge(val, fields)
                continue
            if key.kind in ("mapping", "sequence"):
                what = "map" if key.kind == "mapping" else "sequence"
                raise self.fail(n.line, f"invalid map key: {what}")
            label = self.label(key)
            if merge and label.name != "":  # CUE v0.4 never finds an empty label here
                old = next((f for f in fields if f.label.name == label.name), None)
                if old is not None:
                    old.value = self.expr(val)
                    continue
            fields.append(Field(self.pos, label, self.expr(val), False))

    def merge(self, n: Node_, fields: list[Field]) -> None:
        def want_map() -> YamlError:
            return self.fail(n.line, "map merge requires map or sequence of maps as the value")

        if n.kind == "mapping":
            self.insert_map(n, fields, True)
        elif n.kind == "alias":
            target = self.anchors[n.value]
            if target.kind != "mapping":
                raise want_map()
            self.insert_map(target, fields, True)
        elif n.kind == "sequence":
            for item in reversed(n.children):  # earlier maps take precedence
                if item.kind == "alias":
                    item = self.anchors[item.value]
                if item.kind != "mapping":
                    raise want_map()
                self.insert_map(item, fields, True)
        else:
            raise want_map()


def number_node(s: str, pos: Pos) -> Node:
    """The literal CUE makes of number text ``s`` with leading minus signs (an error
    value if CUE cannot read it: ``+1``, ``float & 1``, ``+Inf``)."""
    neg = False
    while s.startswith("-"):
        neg = not neg
        s = s[1:]
    try:
        num = parse_cue_number(s)
    except _NumError as e:
        return DataLit(pos, error(f"parse error: {e}", pos))
    text: str | None = s  # a literal's spelling (yaml.Marshal keeps it in lists)
    if neg:  # CUE negates the literal: no spelling kept
        d = num.d.copy_negate()
        num = Num(num.kind, d.copy_abs() if d.is_zero() else d)
        text = None
    if num.kind == INT:
        lit = BasicLit(pos, "int", int(num.d), text)
    else:
        lit = BasicLit(pos, "float", num.d, text)
    if text is not None:  # the value keeps the spelling (yaml.Marshal of a document's root)
        lit.atom = SpelledNum(num.kind, num.d, text)
    return lit


class SpelledNum(Num):
    """A number read from YAML that remembers its literal's spelling."""

    __slots__ = ("text",)

    def __init__(self, kind: int, d: Decimal, text: str) -> None:
        super().__init__(kind, d)
        self.text = text


def _identifier(name: str) -> bool:
    """go-yaml's test for a key it writes as a CUE identifier (letters, ``_``, digits after
    the first character)."""
    for i, ch in enumerate(name):
        if ch == "_" or unicodedata.category(ch).startswith("L"):
            continue
        if i == 0 or not unicodedata.category(ch).startswith("N"):
            return False
    return True


def unmarshal(data: bytes, pos: Pos) -> Node:
    """The first document of ``data`` as syntax; YamlError if it cannot be read."""
    docs = Documents(data, "", pos)
    first = docs.next()
    if first is None:  # CUE v0.4 panics ("nil return value"), even inside a disjunction
        raise unsupported(pos, "yaml.Unmarshal of YAML without a document")
    root, anchors = first
    return Decoder(docs, anchors, pos).decode(root)


def documents(data: bytes, name: str, pos: Pos) -> list[Node]:
    """Every document of ``data`` as syntax (for the validators)."""
    docs = Documents(data, name, pos)
    out: list[Node] = []
    while True:
        doc = docs.next()
        if doc is None:
            return out
        out.append(Decoder(docs, doc[1], pos).decode(doc[0]))


__all__ = [
    "NULLV",
    "SpelledNum",
    "YamlError",
    "documents",
    "number_node",
    "parse_cue_number",
    "unmarshal",
]
