"""Random texts for ``tabwriter.Write``, evaluated by the built-in evaluator and by the real
CUE v0.4, and compared.

    python tests/parsing/cue_tabcheck.py --seed 1 --count 500   # needs Node and npm
"""

from __future__ import annotations

import json
import random
import sys

import cue_checkkit as checkkit

PIECES = ["a", "bb", "cccc", "é", "日本", " ", "\t", "\t", "\t", "\n", "\n", "\v", "\f", ""]


def _text(rng: random.Random) -> str:
    return "".join(rng.choice(PIECES) for _ in range(rng.randrange(0, 30)))


def programs(seed: int, count: int) -> dict[str, str]:
    rng = random.Random(seed)
    lines = ['import "text/tabwriter"']
    for k in range(count):
        if rng.random() < 0.3:
            arg = "[" + ", ".join(json.dumps(_text(rng)) for _ in range(rng.randrange(4))) + "]"
        else:
            arg = json.dumps(_text(rng))
        lines.append(f"v{k}: tabwriter.Write({arg})")
    return {"Write": "\n".join(lines) + "\n"}


def main(argv: list[str]) -> int:
    return checkkit.main(__doc__, argv, programs, "tabwriter.Write(")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
