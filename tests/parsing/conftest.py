from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cue_real import RealCue, load_real_cue


@pytest.fixture(scope="session")
def real_cue() -> RealCue:
    """The real CUE's export of every corpus file, from one Node process (skips the live
    comparisons with the reason when Node or npm is missing)."""
    return load_real_cue()
