"""Random and edge strings given to ``template.HTMLEscape`` and ``template.JSEscape``,
evaluated by the built-in evaluator and by the real CUE v0.4, and compared.

    python tests/parsing/cue_templatecheck.py --seed 1 --count 500   # needs Node and npm
"""

from __future__ import annotations

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


def programs(seed: int, count: int) -> dict[str, str]:
    rng = random.Random(seed)
    out: dict[str, str] = {}
    for name in ("HTMLEscape", "JSEscape"):
        lines = ['import "text/template"']
        for k in range(count):
            arg = json.dumps(_rand_string(rng), ensure_ascii=False)
            lines.append(f"v{k}: template.{name}({arg})")
        out[name] = "\n".join(lines) + "\n"
    return out


def main(argv: list[str]) -> int:
    return checkkit.main(__doc__, argv, programs, "template.")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
