"""Random lists sorted by ``list.Sort`` and ``list.SortStable`` with struct comparators
(``{x: _, y: _, less: ...}``, ``{list.Comparer, ...}``), evaluated by the built-in
evaluator and by the real CUE v0.4, and compared: the order of equal elements after
``list.Sort`` is Go 1.15's quicksort's, so lists with many ties and longer than 12 are
drawn often. A call is written ``*call | "ERR"`` so that failures are compared too.

    python tests/parsing/cue_sortcheck.py --seed 1 --count 300   # needs Node and npm
"""

from __future__ import annotations

import random
import sys

import cue_checkkit as checkkit

COMPARATORS = [
    "{x: _, y: _, less: x.n < y.n}",
    "{x: _, y: _, less: x.n > y.n}",
    "{list.Comparer, x: {n: int, k: int}, y: {n: int, k: int}, less: x.n < y.n}",
    "{x: {...}, y: {...}, less: x.s < y.s}",
    "{x: _, y: _, less: x.n < y.n || (x.n == y.n && x.k > y.k)}",
    "{x: _, y: _, less: x.n <= y.n}",
    "{x: _, y: _, less: x.n}",
    "{x: _, y: _, less: x.z < y.z}",
    "{x: int, y: int, less: x < y}",
]


def _call(rng: random.Random) -> str:
    n = rng.choice((0, 1, 2, 5, 12, 13, 20, 41, 60, rng.randrange(80)))
    ties = rng.choice((1, 2, 3, 10, 1000))
    items = [
        f'{{n: {rng.randrange(ties)}, k: {i}, s: "{rng.choice("abc")}"}}' for i in range(n)
    ]
    fn = rng.choice(("Sort", "Sort", "SortStable"))
    return f"list.{fn}([{', '.join(items)}], {rng.choice(COMPARATORS)})"


def programs(seed: int, count: int) -> checkkit.Batch:
    rng = random.Random(seed)
    batch = checkkit.Batch('import "list"')
    for k in range(count):
        batch.add("Sort", f"v{k}", f'*{_call(rng)} | "ERR"')
    return batch


def main(argv: list[str]) -> int:
    return checkkit.main(__doc__, argv, programs, "list.Sort")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
