"""Random spec-like values given to ``yaml.Marshal`` and ``yaml.MarshalStream``, evaluated by
the built-in evaluator and by the real CUE v0.4, and compared. Calls the built-in evaluator
reports as unsupported (strings outside the supported subset) are counted, not compared.

    python tests/parsing/cue_yamlcheck.py --seed 1 --count 500   # needs Node and npm
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

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
    "a",
    "b",
    "@type",
    "a:b",
    "#x",
    "? q",
    "- x",
    "x'y",
    "[k]",
    "--- x",
    "...",
    "name",
    "@type",
    "src_path",
    "1",
    "true",
    "key with space",
    "x-y",
    "_x",
    "é",
]
NUMBERS = ["0", "1", "-7", "1.5", "10.50", "1e-7", "1e100", "-0.0", "2.0", "123456789012345678901"]


def _value(rng: random.Random, depth: int) -> str:
    k = rng.randrange(8 if depth < 3 else 4)
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
    if k in (4, 5):
        keys = rng.sample(KEYS, rng.randrange(0, 4))
        fields = [
            f"{json.dumps(key, ensure_ascii=False)}: {_value(rng, depth + 1)}" for key in keys
        ]
        return "{" + ", ".join(fields) + "}"
    return "[" + ", ".join(_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))) + "]"


def programs(seed: int, count: int) -> tuple[dict[str, str], int]:
    from zetta_utils.parsing.cue import CueError, evaluate

    rng = random.Random(seed)
    lines = ['import "encoding/yaml"']
    out: dict[str, str] = {}
    skipped = 0
    for k in range(count):
        if rng.random() < 0.2:
            call = f"yaml.MarshalStream([{_value(rng, 1)}, {_value(rng, 1)}])"
        else:
            call = f"yaml.Marshal({_value(rng, 0)})"
        try:
            evaluate(f'import "encoding/yaml"\nv: {call}\n')
        except CueError as e:
            if "unsupported CUE construct" in str(e):
                skipped += 1
            else:  # an error (e.g. conflicting fields): compared in a file of its own
                out[f"e{k}"] = f'import "encoding/yaml"\nv: {call}\n'
            continue
        lines.append(f"v{k}: {call}")
    out["Marshal"] = "\n".join(lines) + "\n"
    return out, skipped


def main(argv: list[str]) -> int:
    from cue_netcheck import compare_programs

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=300)
    a = ap.parse_args(argv)
    progs, skipped = programs(a.seed, a.count)
    print(f"{skipped} calls unsupported by the built-in evaluator (not compared)")
    return compare_programs(progs, "yaml.")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
