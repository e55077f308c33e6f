"""Random values and YAML documents given to CUE's ``encoding/yaml`` (and ``json.Validate``),
evaluated by the built-in evaluator and by the real CUE v0.4, and compared:

- ``yaml.Marshal``/``MarshalStream`` of random spec-like values;
- ``yaml.Unmarshal`` of random documents: block and flow collections, plain, quoted and
  block scalars of tricky text (numbers in every YAML/Go spelling, booleans, nulls, times),
  keys of every kind, anchors, aliases, merge keys, tags, several documents, comments, and
  documents mangled at random (syntax errors);
- ``yaml.Validate``/``ValidatePartial`` and ``json.Validate`` of documents against random
  schemas (open, closed, with defaults, optional and missing fields);
- ``yaml.Unmarshal(yaml.Marshal(v))`` and ``yaml.Marshal(yaml.Unmarshal(doc))``.

Calls the built-in evaluator reports as unsupported are counted, not compared.

    python tests/parsing/cue_yamlcheck.py --seed 1 --count 500   # needs Node and npm
"""

from __future__ import annotations

import argparse
import json
import random
import sys

import cue_checkkit as checkkit

STRINGS = [
    "x", "abc", "gs://bucket/path/to/layer", "file:///tmp/x", "true", "False", "NULL", "null",
    "~", "1", "-5", "+3", "1.0", ".5", "1e3", "0x10", "0o7", "0b1", "1_000", "", "y", "no", "on",
    "a b", "a  b", " lead", "trail ", "#c", "a #c", "a: b", "a:b", "-", "-x", ".x", "x.", "x:",
    "é", "a'b", 'a"b', "x\ny", "x\n", "tab\there", "[1]", "{a}", "*", "&a", "!t", "%", "@x",
    "`x", "?", "|", ">", "1a", "v1.2.3", "_hidden", "/abs/path", "a/b-c_d.e", "NaN", ".inf",
    "-.inf", ".NaN", "Infinity", "<<", "=", "yes", "Yes", "OFF", "0", "00", "007", "1.", "1e",
    "12:30", "2021-01-01", "word " * 12 + "end", "w" * 90, "a b " * 20 + "c",
    "long_key_like_value_with_no_spaces_at_all/but/many/slashes/" * 2, "precomputed://gs://b/c",
    "4 4 40", "A_B", "x-", "--", "x,y",
]  # fmt: skip
KEYS = [
    "a", "b", "@type", "a:b", "#x", "? q", "- x", "x'y", "[k]", "--- x", "...", "name", "@type",
    "src_path", "1", "true", "key with space", "x-y", "_x", "é",
]  # fmt: skip
NUMBERS = ["0", "1", "-7", "1.5", "10.50", "1e-7", "1e100", "-0.0", "2.0", "123456789012345678901"]

# Plain scalars whose resolution differs between YAML versions, Go and CUE.
SCALARS = [
    "0", "1", "-1", "+1", "-0", "00", "017", "-017", "08", "09", "0o17", "0O17", "-0o17", "0x1f",
    "0X1F", "-0x1F", "0x_1f", "0b101", "0B101", "-0b11", "1_000", "1__0", "1_", "_1", "0_1",
    "9223372036854775807", "9223372036854775808", "18446744073709551615", "18446744073709551616",
    "-9223372036854775808", "-9223372036854775809", "123456789012345678901234567890",
    "1.5", "-1.5", "+1.5", "1.", ".5", "-.5", "+.5", "1.0", "3.0", "-0.0", "0.0", "1e3", "1e+3",
    "1E-3", "1.5e3", "1.5e+3", "1.5E-3", ".5e+3", ".5e3", "1e+400", "1e-400", "1_0.5", "0.1_0",
    "012.5", "1.2.3", ".inf", "-.inf", "+.inf", ".Inf", ".INF", ".nan", ".NaN", ".NAN", "inf",
    "nan", "Infinity", "true", "True", "TRUE", "tRUE", "false", "False", "FALSE", "yes", "Yes",
    "YES", "no", "No", "on", "On", "off", "OFF", "y", "Y", "n", "N", "null", "Null", "NULL", "nULL",
    "~", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10", "2001-13-01",
    "2001-1-2", "12:30", "190:20:30", "1:2", "<<", "=", "x", "abc", "a b", "é", "日本", "_", "__x",
    "a1", "1a", "x-y", "gs://b/c", "@x", "`x", "%x", "!", "a#b", "a:b", "a,b", "a]", "a}",
]  # fmt: skip
QUOTED = [
    "", "1", "true", "null", "a\\nb", "a\\tb", "\\u00e9", "\\x01", "\\x41", "a\\\\b", "\\e",
    "x\\ny\\n", "\\r\\n", "\\a\\n", "\\x1f\\nz", "it''s", "\\\"", "\\u2028", "\\0",
]  # fmt: skip
TAGS = ["!!str", "!!int", "!!float", "!!bool", "!!null", "!!binary", "!!timestamp", "!!map",
        "!!seq", "!foo", "!", "!!merge", "!<tag:yaml.org,2002:str>"]  # fmt: skip
YKEYS = [
    "a", "b", "c", "_h", "__h", "_", "x1", "1", "1.5", "true", "null", "~", "'q k'", '"d"',
    "a b", "é", "#k", "<<", "'<<'", "-k", "k-", "for", "if", "\"\"", "''", "0x1f", "y",
]  # fmt: skip


# ------------------------------------------------------------------- Marshal
# Pieces of strings for yaml.Marshal: indicators, spaces, breaks (also Unicode's), tabs,
# characters YAML does not print, non-ASCII, beyond U+FFFF; long runs to fold.
PIECES = [
    "a", "b", "x", " ", "  ", "\n", "\n\n", "\t", "\r", ":", "#", "-", "?", "'", '"', "\\",
    ",", "[", "{", "&", "*", "!", "|", ">", "%", "@", "`", "é", "日本", "\u0085", "\u00a0",
    "\u2028", "\u2029", "\ufeff", "\x01", "\x7f", "\x1b", "\U0001F600", "\u0378", "1", ".",
    "word ", "word " * 17, "w" * 40, "---", "...", "true", "0x1F", "1e+3",
]  # fmt: skip


def cue_string(s: str) -> str:
    """A CUE string literal of ``s`` (escapes for everything but printable ASCII)."""
    out = []
    for c in s:
        if c in '"\\':
            out.append("\\" + c)
        elif " " <= c <= "~":
            out.append(c)
        elif ord(c) <= 0xFFFF:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(f"\\U{ord(c):08x}")
    return '"' + "".join(out) + '"'


def _string(rng: random.Random) -> str:
    text = "".join(rng.choice(PIECES) for _ in range(rng.randrange(1, 7)))
    if rng.random() < 0.1:
        text = text * rng.randrange(2, 6)
    return text


def _value(rng: random.Random, depth: int) -> str:
    k = rng.randrange(9 if depth < 3 else 5)
    if k == 8:
        return rng.choice(("'abc'", "'\\x00\\xff'", "'" + "y" * 70 + "'", "1e10", "1.5e-7",
                           "4 / 2", "0.1e1", "-1e-7", "2.0 * 1", "1e1 + 1e1", "0x10", "1_000", ".5",
                           "0o17", "1.50", "1.e3", "X", "Y"))  # fmt: skip
    if k == 4:
        return cue_string(_string(rng))
    if k == 0:
        if rng.random() < 0.5:
            chars = "ab:#-?' ,[]{}&*!|>\"%@`/.~=<"
            text = "".join(rng.choice(chars) for _ in range(rng.randrange(1, 8)))
            return json.dumps(text)
        return json.dumps(rng.choice(STRINGS), ensure_ascii=False)
    if k == 1:
        return rng.choice(NUMBERS)
    if k == 2:
        return rng.choice(("true", "false", "null", json.dumps(rng.choice(STRINGS[:20]))))
    if k == 3:
        return json.dumps(rng.choice(STRINGS[:12]))
    if k in (5, 6):
        keys = rng.sample(KEYS, rng.randrange(0, 4))
        if rng.random() < 0.2:
            keys.append(_string(rng))
        fields = [f"{cue_string(key)}: {_value(rng, depth + 1)}" for key in keys]
        return "{" + ", ".join(fields) + "}"
    return "[" + ", ".join(_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))) + "]"


# ------------------------------------------------------------------ YAML text
class _Doc:
    """A random YAML document (block style with flow parts), with anchors to refer to."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.anchors: list[str] = []
        self.maps: list[str] = []  # anchors of mappings (for merge keys)

    def scalar(self) -> str:
        rng = self.rng
        k = rng.randrange(10)
        if k < 5:
            s = rng.choice(SCALARS)
        elif k == 5:
            s = "'" + rng.choice(QUOTED).replace("\\", "") + "'"
        elif k == 6:
            s = '"' + rng.choice(QUOTED).replace("''", "'") + '"'
        elif k == 7 and self.anchors:
            return "*" + rng.choice(self.anchors)
        elif k == 8:
            s = rng.choice(TAGS) + " " + rng.choice(SCALARS)
        else:
            s = rng.choice(SCALARS[:40]) + rng.choice(("", "_", "0", ".", "e+1", " x"))
        if rng.random() < 0.1:
            s = self.anchor(s, False)
        return s

    def anchor(self, text: str, is_map: bool) -> str:
        name = f"a{len(self.anchors)}"
        self.anchors.append(name)
        if is_map:
            self.maps.append(name)
        return f"&{name} {text}"

    def flow(self, depth: int) -> str:
        rng = self.rng
        if depth > 2 or rng.random() < 0.4:
            return self.scalar()
        if rng.random() < 0.5:
            return "[" + ", ".join(self.flow(depth + 1) for _ in range(rng.randrange(4))) + "]"
        items = [f"{rng.choice(YKEYS)}: {self.flow(depth + 1)}" for _ in range(rng.randrange(4))]
        text = "{" + ", ".join(items) + "}"
        return self.anchor(text, True) if rng.random() < 0.2 else text

    def block(self, indent: int, depth: int) -> list[str]:
        rng = self.rng
        pad = " " * indent
        out: list[str] = []
        if rng.random() < 0.5:
            for _ in range(rng.randrange(1, 4)):
                out += self.entry(pad + "- ", indent + 2, depth)
            return out
        for _ in range(rng.randrange(1, 5)):
            if self.maps and rng.random() < 0.1:
                target = rng.choice(self.maps)
                many = rng.random() < 0.3
                out.append(f"{pad}<<: " + (f"[*{target}]" if many else f"*{target}"))
                continue
            key = rng.choice(YKEYS)
            if rng.random() < 0.05:
                key = rng.choice(TAGS[:5]) + " " + key
            out += self.entry(f"{pad}{key}:" + " ", indent + 2, depth)
        return out

    def entry(self, head: str, indent: int, depth: int) -> list[str]:
        rng = self.rng
        k = rng.randrange(10)
        if depth < 3 and k < 3:
            name = f"a{len(self.anchors)}" if rng.random() < 0.15 else ""
            lines = self.block(indent, depth + 1)
            if name:  # known only after its own lines: a map merging itself crashes CUE
                self.anchors.append(name)
                if not lines[0].lstrip().startswith("- "):
                    self.maps.append(name)
            return [head.rstrip() + (f" &{name}" if name else "")] + lines
        if k == 3:
            style = rng.choice(("|", ">", "|-", ">-", "|+", ">+", "|2"))
            body = [" " * indent + rng.choice(("a", "b c", "", "  d", "#e", "f: g")) for _ in
                    range(rng.randrange(1, 4))]  # fmt: skip
            return [head + style] + body
        if k == 4:
            return [head + self.flow(0)]
        if k == 5 and rng.random() < 0.5:
            return [head + self.scalar() + " # note"]
        return [head + self.scalar()]

    def text(self) -> str:
        rng = self.rng
        lines = self.block(0, 0) if rng.random() < 0.85 else [self.flow(0)]
        if rng.random() < 0.15:
            lines = ["---"] + lines
        if rng.random() < 0.1:
            lines = ["# comment", *lines]
        if rng.random() < 0.1:
            lines += ["---"] + _Doc(rng).block(0, 1)
        if rng.random() < 0.05:
            lines = ["%YAML 1.1" if rng.random() < 0.5 else "%YAML 1.2", "---", *lines]
        if rng.random() < 0.1:
            lines.append(rng.choice(FLOW_LINES))
        text = "\n".join(lines) + "\n"
        if rng.random() < 0.25:  # mangle: syntax errors and odd corners
            for _ in range(rng.randrange(1, 4)):
                i = rng.randrange(len(text))
                text = text[:i] + rng.choice(MANGLE) + text[i + rng.randrange(2) :]
        if rng.random() < 0.05:
            text = text.replace("\n", "\r\n")
        if rng.random() < 0.03:
            text = "\ufeff" + text
        return text


MANGLE = [
    "", ":", "-", "[", "]", "{", "}", ",", "\t", "'", '"', "&", "*", "!", "|", ">", "?", " ", "\n",
    "#", "%", "@", "`", "\\", "\r", "  ", "? ", ": ", "- ", "!!", "&x ", "*x", "...", "---", "\n  ",
]  # fmt: skip
# Flow collections with the spacing corners of YAML 1.1/1.2 scanners.
FLOW_LINES = [
    'f1: {"a":1, b: 2}', "f2: [a:1, ? b, c: d]", "f3: {a: [b, c], ? d : e}", "f4: [ 'x':y ]",
    'f5: {"a" : 1,"b":[2]}', "f6: [a, b]: c", "f7: {a: b\n  c}", "f8: [a\n  , b]",
    "f9: {? [x] : y}", "f10: [-1, - 2]", "f11: {a: *x}", "f12: &x {a: 1}",
]  # fmt: skip


def yaml_doc(rng: random.Random) -> str:
    return _Doc(rng).text()


SCHEMAS = [
    "{a: int}", "{a: int, b: int}", "{a: int, b?: int}", "{a: *1 | int}", "{...}", "{}",
    "#S", "#S & {b?: _}", "{a: string}", "{a: number, b: [...int]}", "{a: >0}",
    "[...]", "[int, int]", "[1, ...int]", "1", "*1 | int", "1 | 2", "int", "\"x\"",
    "{a: _, b: a}", "{[string]: int}", "null", "{_h: int}", "{a: {b: int}}", "{c: {d: null}}",
]  # fmt: skip


def _json_doc(rng: random.Random) -> str:
    def val(depth: int) -> str:
        k = rng.randrange(7 if depth < 3 else 4)
        if k == 0:
            return rng.choice(("1", "-0", "1.0", "1e3", "1e400", "0.5", "12345678901234567890"))
        if k == 1:
            return rng.choice(('"x"', '"_h"', '""', "true", "null"))
        if k in (2, 3):
            return rng.choice(("1", '"s"', "false"))
        if k in (4, 5):
            keys = [rng.choice(("a", "b", "c", "_h", "#k", "d")) for _ in range(rng.randrange(4))]
            return "{" + ", ".join(f'"{key}": {val(depth + 1)}' for key in keys) + "}"
        return "[" + ", ".join(val(depth + 1) for _ in range(rng.randrange(3))) + "]"

    text = val(0)
    if rng.random() < 0.1:
        i = rng.randrange(len(text))
        text = text[:i] + rng.choice(("", "}", ",", " 1")) + text[i + 1 :]
    return text


# ------------------------------------------------------------------- programs
HEADER = """import "encoding/yaml"
import "encoding/json"
#S: {a: int}
X: 1e10
Y: {a: [0x10, 1e3, "x\\ny"], b: 1.50}"""


CASE = "feat_pkg_yaml_random"


def calls(seed: int, count: int) -> list[tuple[str, str]]:
    """``count`` random calls (group, call text) from ``seed``."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        kind = rng.randrange(10)
        if kind == 0:
            call = f"yaml.MarshalStream([{_value(rng, 1)}, {_value(rng, 1)}])"
            group = "Marshal"
        elif kind == 1:
            call = f"yaml.Marshal({_value(rng, 0)})"
            group = "Marshal"
        elif kind == 2:
            call = f"yaml.Unmarshal(yaml.Marshal({_value(rng, 0)}))"
            group = "RoundTrip"
        elif kind in (3, 4, 5):
            call = f"yaml.Unmarshal({cue_string(yaml_doc(rng))})"
            group = "Unmarshal"
        elif kind == 6:
            call = f"yaml.Marshal(yaml.Unmarshal({cue_string(yaml_doc(rng))}))"
            group = "RoundTrip"
        elif kind in (7, 8):
            fn = rng.choice(("Validate", "ValidatePartial"))
            doc = cue_string(yaml_doc(rng) if rng.random() < 0.5 else _small_yaml(rng))
            call = f"yaml.{fn}({doc}, {rng.choice(SCHEMAS)})"
            group = "Validate"
        else:
            call = f"json.Validate({json.dumps(_json_doc(rng))}, {rng.choice(SCHEMAS)})"
            group = "JSONValidate"
        out.append((group, call))
    return out


def programs(seed: int, count: int) -> checkkit.Batch:
    batch = checkkit.Batch(HEADER)
    for k, (group, call) in enumerate(calls(seed, count)):
        batch.add(group, f"v{k}", call)
    return batch


def case_text(seed: int = 1, count: int = 60) -> str:
    """A conformance case: random calls (fixed seed) the built-in evaluator supports, each
    as ``*call | "ERR"`` so that the calls that fail are compared too."""
    lines = [HEADER, ""]
    for k, (_, call) in enumerate(calls(seed, count)):
        line = f'v{k}: *{call} | "ERR"'
        if checkkit.builtin_outcome(f"{HEADER}\n{line}\n") == "ok":
            lines.append(line)
    return "\n".join(lines) + "\n"


def _small_yaml(rng: random.Random) -> str:
    """Documents near the schemas' fields."""
    parts = []
    for key in rng.sample(["a", "b", "c", "_h", "d"], rng.randrange(0, 4)):
        parts.append(f"{key}: {rng.choice(('1', '2', 'x', '~', '[1, 2]', '{b: 1}', '{d: ~}'))}")
    text = "\n".join(parts) + "\n"
    if rng.random() < 0.2:
        text += "---\n" + rng.choice(("a: 1\n", "a: x\n", "", "b: 2\n"))
    return text


def _options(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--write-case", action="store_true", help=f"(re)write {CASE}.cue")


def main(argv: list[str]) -> int:
    a = checkkit.parse_args(__doc__, argv, extra=_options)
    if a.write_case:
        comment = (
            "Packages encoding/yaml and encoding/json: random Marshal, Unmarshal, Validate,\n"
            "ValidatePartial and json.Validate calls (seed 1). Written by\n"
            "tests/parsing/cue_yamlcheck.py --write-case."
        )
        print(f"wrote {checkkit.write_case(CASE, comment, case_text())}")
        return 0
    batch = programs(a.seed, a.count)
    print(f"{batch.unsupported} calls unsupported by the built-in evaluator (not compared)")
    return checkkit.compare_programs(batch.programs(), "\nv")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
