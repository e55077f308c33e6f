"""Random and edge arguments of ``time.ParseDuration``, ``time.Duration`` and ``time.Unix``,
evaluated by the built-in evaluator and by the real CUE v0.4, and compared.

    python tests/parsing/cue_timecheck.py --seed 1 --count 500   # needs Node and npm
"""

from __future__ import annotations

import json
import random
import sys

import cue_checkkit as checkkit

UNITS = ["ns", "us", "\u00b5s", "\u03bcs", "ms", "s", "m", "h", "", "x", "H", "sec"]
EDGE_DURATIONS = [
    "0",
    "+0",
    "-0",
    "",
    "1",
    "1h",
    "-1.5h",
    ".5s",
    "5.s",
    ".s",
    "1h1h",
    "9223372036854775807ns",
    "9223372036854775808ns",
    "-9223372036854775808ns",
    "2562047h47m16.854775807s",
    "2562047h47m16.854775808s",
    "2562048h",
    "1.00000000000000000000000000001h",
    "0.000000001s",
    "0.0000000001s",
    "1e3s",
    "1h 2m",
    "+-1s",
    "3.3333333333333333333m",
]


def _rand_duration(rng: random.Random) -> str:
    if rng.random() < 0.2:
        return rng.choice(EDGE_DURATIONS)
    out = rng.choice(("", "", "-", "+"))
    for _ in range(rng.choice((1, 1, 2, 3))):
        num = str(rng.choice((0, 1, 5, 59, 100, rng.randrange(10**6), rng.randrange(10**12))))
        if rng.random() < 0.4:
            num += "." + "".join(rng.choice("0123456789") for _ in range(rng.randrange(0, 12)))
        out += num + rng.choice(UNITS[:8] if rng.random() < 0.9 else UNITS)
    return out


def programs(seed: int, count: int) -> checkkit.Batch:
    rng = random.Random(seed)
    batch = checkkit.Batch('import "time"')
    for name in ("ParseDuration", "Duration", "Unix"):
        for k in range(count):
            if name == "Unix":
                sec = rng.choice(
                    (
                        0,
                        -1,
                        1,
                        rng.randrange(-(10**12), 10**12),
                        rng.randrange(-(10**10), 10**10),
                        253402300799,
                        -62135596800,
                    )
                )
                nsec = rng.choice((0, 1, 999999999, 10**9, -1, rng.randrange(-(10**12), 10**12)))
                call = f"time.Unix({sec}, {nsec})"
            else:
                call = f"time.{name}({json.dumps(_rand_duration(rng), ensure_ascii=False)})"
            batch.add(name, f"v{k}", call)
    return batch


def main(argv: list[str]) -> int:
    return checkkit.main(__doc__, argv, programs, "time.")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
