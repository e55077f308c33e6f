import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from zetta_utils.demo.testing import make_home, shared_demo

# CI machines are small and shared: no per-example deadlines; a moderate number of examples.
settings.register_profile(
    "default", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("default")


# The demo volume, written once per test session and shared by xdist workers, and a fresh HOME
# per test whose ~/.zetta_utils/demo/fafb_v15 is that volume (used by tests/demo, docs, specs).
@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    return shared_demo(shared / "zetta_demo" / "fafb_v15")


@pytest.fixture
def home(demo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = make_home(tmp_path / "home", demo_dir)
    monkeypatch.setenv("HOME", str(root))
    yield root
