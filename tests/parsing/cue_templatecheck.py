"""Random calls of CUE's ``text/template``, evaluated by the built-in evaluator and by the
real CUE v0.4, and compared:

- ``template.Execute`` of random templates (actions, pipelines, if/else if/range/with,
  variables, define/template/block, comments and trim markers, every builtin function,
  printf formats, literals of every kind, mangled at random into syntax errors) over
  random data (structs, lists, ints beyond int64, floats, strings, bytes, null);
- ``template.HTMLEscape`` and ``template.JSEscape`` of random and edge strings.

A call is written ``*call | "ERR"`` so that failures are compared too; calls the built-in
evaluator reports as unsupported are counted, not compared.

    python tests/parsing/cue_templatecheck.py --seed 1 --count 500   # needs Node and npm
    python tests/parsing/cue_templatecheck.py --write-case   # rewrite the conformance case
"""

from __future__ import annotations

import argparse
import json
import random
import sys

import cue_checkkit as checkkit

# ASCII specials, controls, non-ASCII printable and not (spaces, format, private use,
# unassigned, line separators), astral runes, runes assigned in recent Unicode versions.
SPECIAL = "<>&'\"=\\\0\t\n\r\x01\x1f\x7f /`$"
UNICODE = (
    "\x80\x85\x9f\xa0\xa9\xad\xe9\u0378\u0600\u0870\u115f\u1680\u180e\u2000\u200b\u200d"
    "\u2028\u2029\u202e\u2060\u2066\u3000\ud7ff\ue000\uf8ff\ufff9\ufffd\ufffe\uffff\u00a0"
    "\U00010000\U0001f600\U0001fae0\U0001fad0\u08be\U0001f972\U0001f6d5\u0d81\U00030000\U000e0001\U000f0000\U0010ffff\u4e2d\u00e9\u0301"
)


def _rand_string(rng: random.Random) -> str:
    pool = rng.choice((SPECIAL, UNICODE, SPECIAL + UNICODE + "abcXYZ019"))
    return "".join(rng.choice(pool) for _ in range(rng.randrange(0, 12)))


# ------------------------------------------------------------- Execute: data
KEYS = ["a", "b", "x", "name", "list", "B", "n", "k-y", "@t"]
FIELDS = ["a", "b", "x", "name", "list", "B", "Z"]
FLOATS = ["1.5", "2.0", "1e21", "1e-7", "123456.789", "0.1", "-3.25", "1e6", "1234567.0", "1e300"]
INTS = ["0", "1", "-7", "42", "9223372036854775807", "9223372036854775808", "-12345678901234567890"]
STRS = ['""', '"s"', '"<a&b>"', '"é\\t"', '"x y"', '"\\u0000"', '"a\\nb"', '"\'q\'"', '"0"']


def _data(rng: random.Random, depth: int = 0) -> str:
    k = rng.randrange(9 if depth < 2 else 6)
    if k == 0:
        return rng.choice(INTS[:4] if rng.random() < 0.8 else INTS)
    if k == 1:
        return rng.choice(FLOATS)
    if k == 2:
        return rng.choice(STRS)
    if k == 3:
        return rng.choice(("true", "false", "null", "'ab'", "''", "2", '"b"'))
    if k in (4, 5):
        return str(rng.randrange(-3, 5))
    if k in (6, 7):
        keys = rng.sample(KEYS, rng.randrange(0, 5))
        fields = [f"{json.dumps(key)}: {_data(rng, depth + 1)}" for key in keys]
        return "{" + ", ".join(fields) + "}"
    return "[" + ", ".join(_data(rng, depth + 1) for _ in range(rng.randrange(0, 4))) + "]"


# --------------------------------------------------------- Execute: templates
FORMATS = [
    "%v", "%d", "%s", "%q", "%x", "%X", "%5v", "%-4s|", "%.2f", "%e", "%g", "%T", "%t", "%c",
    "%03d", "%+v", "%v %v", "%%", "%!", "%*d", "%6.2f", "%U", "%o", "%b", "%8.3e", "% d", "%+d",
    "%.1s", "%G", "%E", "x", "%#x", "%05s", "%-8v|", "%.0f", "%.3g", "%10.4v", "%z", "%#v",
    "%[2]v %[1]v", "%[1]*d", "%[3]d", "%# x",
]  # fmt: skip
LITERALS = [
    "1", "-2", "0", "1.5", "1e3", "0x10", "'c'", "'\\n'", '"s"', '"<&>"', "`raw`", "true",
    "false", "nil", "017", "1_000", "2.50", "-0", ".5", "9223372036854775808", "1e400", "1i",
    "2+3.5i", "0x1p-2",
]  # fmt: skip
INDEXES = ["0", "1", '"a"', '"b"', "-1"]
FUNCS1 = ["len", "not", "html", "js", "urlquery", "print", "println", "call", "index"]
FUNCS2 = ["eq", "ne", "lt", "le", "gt", "ge", "and", "or", "index", "print", "slice"]


class _Template:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.vars = ["$"]
        self.defined: list[str] = []

    def operand(self, depth: int) -> str:
        rng = self.rng
        k = rng.randrange(10 if depth < 2 else 7)
        if k == 0:
            return "."
        if k in (1, 2):
            return "." + ".".join(rng.choice(FIELDS) for _ in range(rng.choice((1, 1, 2))))
        if k == 3:
            v = rng.choice(self.vars)
            return v + (("." + rng.choice(FIELDS)) if rng.random() < 0.3 else "")
        if k == 4:
            return rng.choice(LITERALS)
        if k == 5:
            return rng.choice(LITERALS[:12])
        if k == 6:
            return rng.choice(('"a"', "0", "1", "2", "-1", '"x"', "3"))
        return "(" + self.pipeline(depth + 1) + ")"

    def command(self, depth: int) -> str:
        rng = self.rng
        k = rng.randrange(8)
        if k <= 1:
            return self.operand(depth)
        if k == 1:
            return f"{rng.choice(FUNCS1)} {self.operand(depth)}"
        if k == 2:
            fn = rng.choice(FUNCS2)
            return f"{fn} {self.operand(depth)} {self.operand(depth)}"
        if k == 3:
            args = " ".join(self.operand(depth) for _ in range(rng.randrange(0, 3)))
            return f"printf {json.dumps(rng.choice(FORMATS))} {args}".rstrip()
        if k in (4, 5):
            n = rng.randrange(1, 4)
            return f"{rng.choice(FUNCS2)} " + " ".join(self.operand(depth) for _ in range(n))
        if k == 6:
            key = rng.choice(INDEXES)
            return f"index {self.operand(depth)} {key}"
        return f"slice {self.operand(depth)} {rng.randrange(0, 3)} {rng.randrange(0, 4)}"

    def pipeline(self, depth: int = 0) -> str:
        rng = self.rng
        text = self.command(depth)
        if rng.random() < 0.2:
            text += " | " + rng.choice(("len", "printf \"%v|\"", "print", "html", "not", "index"))
        return text

    def action(self, depth: int) -> str:
        rng = self.rng
        left = rng.choice(("{{", "{{", "{{- ", "{{ "))
        right = rng.choice(("}}", "}}", " -}}", " }}"))
        k = rng.randrange(13 if depth < 2 else 5)
        if k <= 2:
            return f"{left}{self.pipeline()}{right}"
        if k == 3:
            name = rng.choice(("$v", "$w"))
            op = ":=" if name not in self.vars or rng.random() < 0.5 else "="
            if op == ":=":
                self.vars.append(name)
            return f"{left}{name} {op} {self.pipeline()}{right}"
        if k == 4:
            return rng.choice(("{{/* c */}}", "{{- /* c */ -}}", "{{/* a\nb */ -}}"))
        body = self.body(depth + 1)
        if k in (5, 6):
            els = ""
            if rng.random() < 0.4:
                els = "{{else}}" + self.body(depth + 1)
            elif rng.random() < 0.3:
                els = f"{{{{else if {self.pipeline()}}}}}" + self.body(depth + 1)
            return f"{left}if {self.pipeline()}{right}{body}{els}{{{{end}}}}"
        if k in (7, 8):
            decl = rng.choice(("", "", "$i, $e := ", "$e := "))
            saved = list(self.vars)
            self.vars += [v for v in ("$i", "$e") if v in decl]
            body = self.body(depth + 1)
            self.vars = saved
            els = "{{else}}" + self.body(depth + 1) if rng.random() < 0.3 else ""
            return f"{left}range {decl}{self.operand(0)}{right}{body}{els}{{{{end}}}}"
        if k == 9:
            return f"{left}with {self.pipeline()}{right}{body}{{{{end}}}}"
        if k in (10, 11) and self.defined:
            name = rng.choice(self.defined)
            arg = " " + self.operand(0) if rng.random() < 0.8 else ""
            return f"{{{{template {json.dumps(name)}{arg}}}}}"
        return f"{{{{block \"b{depth}\" {self.operand(0)}}}}}{body}{{{{end}}}}"

    def body(self, depth: int) -> str:
        rng = self.rng
        parts = []
        for _ in range(rng.randrange(0, 4 if depth < 2 else 2)):
            if rng.random() < 0.4:
                parts.append(rng.choice(("a", " ", "\n", "x y", "é", "<>", "  \t", ",")))
            else:
                parts.append(self.action(depth))
        return "".join(parts)

    def template(self) -> str:
        rng = self.rng
        defines = ""
        if rng.random() < 0.3:
            saved, self.vars = self.vars, ["$"]
            defines = f'{{{{define "t"}}}}{self.body(1)}{{{{end}}}}'
            self.vars = saved
            self.defined.append("t")
        text = defines + self.body(0)
        if rng.random() < 0.1 and text:  # a syntax error, most of the time
            i = rng.randrange(len(text))
            text = text[:i] + rng.choice(("", "}", "{{", "(", '"', "|", " ")) + text[i + 1 :]
        return text


def _top_data(rng: random.Random) -> str:
    if rng.random() < 0.3:
        return _data(rng)
    keys = rng.sample(KEYS, rng.randrange(2, 7))
    return "{" + ", ".join(f"{json.dumps(key)}: {_data(rng, 1)}" for key in keys) + "}"


def _execute_call(rng: random.Random) -> str:
    tmpl = _Template(rng).template()
    return f"template.Execute({json.dumps(tmpl, ensure_ascii=False)}, {_top_data(rng)})"


def programs(seed: int, count: int) -> checkkit.Batch:
    rng = random.Random(seed)
    batch = checkkit.Batch('import "text/template"')
    for k in range(count):
        batch.add("Execute", f"v{k}", f'*{_execute_call(rng)} | "ERR"')
    for name in ("HTMLEscape", "JSEscape"):
        for k in range(count):
            arg = json.dumps(_rand_string(rng), ensure_ascii=False)
            batch.add(name, f"v{k}", f"template.{name}({arg})")
    return batch


CASE = "feat_pkg_template_execute"
EDGE_CALLS = [
    'template.Execute("{{.}} {{printf \\"%T\\" .}}", 3.0)',
    'template.Execute("{{.}}|{{.x}}|{{print .x}}|{{html .x}}", {})',
    'template.Execute("{{.}}", {b: 1, a: [1, "a", true, null, 2.5, \'ab\'], "@t": {}})',
    'template.Execute("{{.}} {{printf \\"%T %d\\" . .}}", 123456789012345678901234)',
    'template.Execute("{{range $i, $e := .}}{{$i}}={{$e}};{{else}}none{{end}}", {b: 1, a: [2]})',
    'template.Execute("{{define \\"T\\"}}<{{.}}>{{end}}{{template \\"T\\" .a}}'
    '{{block \\"B\\" .}}b{{end}}", {a: 1})',
    'template.Execute("  {{- 1 -}}  \\n {{2}} {{/* c */ -}}  x", 1)',
    'template.Execute("{{if and .a .b}}y{{else if .c}}c{{else}}n{{end}}", {a: 1, b: 0, c: "x"})',
    'template.Execute("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", 1)',
    'template.Execute("{{printf \\"%5.2f|%-4s|%x|%q|%U|%!|%z\\" 3.14159 \\"ab\\" \\"hi\\" '
    '\\"\\\\t\\" 65 1}}", 1)',
    'template.Execute("{{len .}} {{index . 1}} {{slice . 1 3}} {{urlquery \\"a b&\\"}}", '
    '"h\u00e9llo")',
    'template.Execute("{{eq . 1 2}} {{lt 1.5 2.5}} {{not .}} {{or 0 \\"\\" .}}", 2)',
    '*template.Execute("{{.b.y}}", {b: 1}) | "ERR"',
    '*template.Execute("{{eq . 1}}", 1.0) | "ERR"',
    '*template.Execute("{{.}}", 0.0) | "ERR"',
    '*template.Execute("{{break}}", 1) | "ERR"',
    '*template.Execute("{{.\\n}}", 1) | "ERR"',
    '*template.Execute("{{and 0 (index . 5)}}", [1]) | "ERR"',
    '*template.Execute("{{define \\"r\\"}}{{template \\"r\\"}}{{end}}{{template \\"r\\"}}", 1)'
    ' | "ERR"',
]


def case_text(seed: int = 11, count: int = 40) -> str:
    """A conformance case: the edge calls, then random calls the built-in evaluator
    supports (fixed seed)."""
    from zetta_utils.parsing.cue import CueError, evaluate

    rng = random.Random(seed)
    lines = ['import "text/template"', ""]
    lines += [f"e{i}: {call}" for i, call in enumerate(EDGE_CALLS)]
    k = 0
    while k < count:
        call = f'*{_execute_call(rng)} | "ERR"'
        try:
            out = evaluate(f'import "text/template"\nv: {call}\n')["v"]
        except CueError:
            continue
        if out != "ERR" or rng.random() < 0.3:  # mostly templates that run
            lines.append(f"r{k}: {call}")
            k += 1
    return "\n".join(lines) + "\n"


def _options(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--write-case", action="store_true", help=f"(re)write {CASE}.cue")


def main(argv: list[str]) -> int:
    a = checkkit.parse_args(__doc__, argv, extra=_options)
    if a.write_case:
        comment = (
            "Package text/template: Execute (Go 1.15's text/template over the Go value CUE\n"
            "decodes the data to). Written by tests/parsing/cue_templatecheck.py --write-case."
        )
        print(f"wrote {checkkit.write_case(CASE, comment, case_text())}")
        return 0
    batch = programs(a.seed, a.count)
    print(f"{batch.unsupported} calls unsupported by the built-in evaluator (not compared)")
    return checkkit.compare_programs(batch.programs(), "template.")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
