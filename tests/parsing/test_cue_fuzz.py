"""The random-program comparison with the real CUE (``cue_fuzz.py``), as a short
fixed-seed batch: against the recorded real results always, and live when Node is
available. Long batches are run by hand (see ``cue_fuzz.py``)."""

from __future__ import annotations

import json
import re

import pytest
from cue_fuzz import (
    CI_COUNT,
    CI_SEED,
    RECORDED,
    builtin_result,
    digest,
    disagreement,
    generate,
    real_crashed,
    real_results,
)
from cue_real import RealCue

PROGRAMS = generate(CI_SEED, CI_COUNT)
STALE = "re-record with: python tests/parsing/cue_fuzz.py --record"


def recorded() -> dict:
    return json.loads(RECORDED.read_text(encoding="utf-8"))


def assert_agree(programs: list[str], reals: list[dict], what: str) -> None:
    problems = []
    for i, (text, real) in enumerate(zip(programs, reals, strict=True)):
        if real_crashed(real):
            continue
        why = disagreement(builtin_result(text), real)
        if why is not None:
            problems.append(f"program {i}: {why}\n{text}")
    assert not problems, f"{len(problems)} programs disagree with {what}:\n" + "\n".join(
        problems[:3]
    )


def test_generation_is_deterministic() -> None:
    assert generate(CI_SEED, CI_COUNT) == PROGRAMS
    assert generate(CI_SEED + 1, 3) != PROGRAMS[:3]


def test_programs_use_every_construct_of_issue_21() -> None:
    text = "\n".join(PROGRAMS)
    constructs = {
        "for over quoted labels": r'"@type"[^\n]*\n(?:.*\n)*?.*for k, v in m\d+',
        "byte strings": r"'\\x00\\xff'|'abc'",
        "byte string label": r"'by': ",
        "strconv": r"strconv\.\w+\(",
        "path": r"path\.\w+\(",
        "encoding/json": r"json\.\w+\(",
        "comprehensions on separate lines": r"\n\t(?:for|if) [^\n]*\}\n\t(?:for|if) ",
        "newline before the body": r"\n\tfor k, v in \S+\n\t\{",
        "unused import": r'"(?:encoding/yaml|time|uuid)"',
        "default through a reference": r"e\d+: -?\d+ \| d\d+|e\d+: d\d+ \| -?\d+",
        "if on a disjunction of definitions": r"if #f\d+ \| #f\d+x \{",
        "reference to an optional field": r"m\?: int\n\tx:  m \+",
        "ellipsis followed by fields": r"\t\.\.\.\n\tb: ",
    }
    missing = [name for name, pattern in constructs.items() if not re.search(pattern, text)]
    assert not missing, missing


def test_ci_batch_agrees_with_recorded_real_cue() -> None:
    data = recorded()
    assert (data["seed"], data["count"]) == (CI_SEED, CI_COUNT), STALE
    assert data["digest"] == digest(PROGRAMS), f"the generator changed: {STALE}"
    exported = sum(r["ok"] for r in data["results"])
    assert exported >= CI_COUNT // 2, "most programs should export a value"
    assert_agree(PROGRAMS, data["results"], "the recorded real CUE")


def test_ci_batch_agrees_with_live_real_cue(real_cue: RealCue) -> None:
    if real_cue.mod is None:
        pytest.skip(real_cue.skip_reason or "real CUE unavailable")
    reals = real_results(PROGRAMS)
    assert_agree(PROGRAMS, reals, "the real CUE")
    assert [r["ok"] for r in reals] == [r["ok"] for r in recorded()["results"]], STALE
