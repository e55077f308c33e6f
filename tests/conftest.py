import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from zetta_utils.demo.testing import make_home, shared_demo

# CI machines are small and shared: no per-example deadlines; a moderate number of examples.
settings.register_profile(
    "default", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("default")

# Tests of `num_procs` > 1 test the workers, with runs short enough that mazepa would keep them
# serial (see mazepa.local_pool.SerialUnlessWorthIt): start the workers always, here and in the
# `zetta` commands tests start. Tests of that choice pass `worker_start_cost_s` themselves.
os.environ["ZETTA_WORKER_START_COST_S"] = "0"


# The demo volume, written once per test session and shared by xdist workers, and a fresh HOME
# per test whose ~/.zetta_utils/demo/fafb_v15 is that volume (used by tests/demo, docs, specs).
@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    return shared_demo(shared / "zetta_demo" / "fafb_v15")


@pytest.fixture(autouse=True)
def _private_run_state(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`zetta run` records unfinished runs per spec (to resume them) and writes join files: per
    test, so that a run one test stopped is never resumed by another test running the same spec."""
    state = tmp_path_factory.mktemp("run_state")
    monkeypatch.setenv("ZETTA_RESUME_DIR", str(state / "resume"))
    monkeypatch.setenv("ZETTA_JOIN_DIR", str(state / "join"))


@pytest.fixture
def home(demo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = make_home(tmp_path / "home", demo_dir)
    monkeypatch.setenv("HOME", str(root))
    yield root


# Ctrl-C tests need SIGINT to reach their processes. A test run started in the background by a
# shell without job control (``pytest &``) ignores SIGINT, and so does every process it starts (an
# ignored signal stays ignored across exec): these put SIGINT back to its default, as a terminal
# would have it.
_DEFAULT_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)


@pytest.fixture
def default_sigint() -> Callable[[list[str]], list[str]]:
    """Wraps a Python command line (``[sys.executable, ...]``) so that it starts with SIGINT at
    its default disposition."""

    def wrap(argv: list[str]) -> list[str]:
        assert argv[0] == sys.executable
        return [sys.executable, "-c", _DEFAULT_SIGINT, *argv[1:]]

    return wrap


@pytest.fixture
def sigint_enabled() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt in this process during the test."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.fixture(scope="session")
def moto_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A moto S3 server on 127.0.0.1 for this test session: ``(endpoint, log file)``. The log
    holds one line per request, after the server answered it. Skips when moto is missing."""
    import shutil
    import socket
    import subprocess
    import time
    import urllib.request

    exe = os.path.join(os.path.dirname(sys.executable), "moto_server")
    if not os.path.exists(exe):
        exe = shutil.which("moto_server") or ""
    if not exe:
        pytest.skip("moto_server not found (pip install 'moto[server]') - S3 tests need it")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(
            [exe, "-H", "127.0.0.1", "-p", str(port)], stdout=log_file, stderr=subprocess.STDOUT
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # a safety net, not a speed assumption
        while True:
            try:
                urllib.request.urlopen(endpoint, timeout=1).read()
                break
            except Exception:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"moto_server did not start: {log.read_text()[-2000:]}"
                    ) from None
                time.sleep(0.1)
        yield endpoint, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def s3_environment(mp: pytest.MonkeyPatch, endpoint: str) -> None:
    """The environment both backends (TensorStore, CloudVolume/cloud-files) need to reach a local
    S3 server: ``ZETTA_S3_ENDPOINT`` and fake keys (with ``AWS_SESSION_TOKEN``, which cloud-files
    needs for environment credentials), no other endpoint or profile."""
    mp.setenv("ZETTA_S3_ENDPOINT", endpoint)
    mp.setenv("AWS_ACCESS_KEY_ID", "testing")
    mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    mp.setenv("AWS_SESSION_TOKEN", "testing")
    mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        mp.delenv(var, raising=False)


@pytest.fixture(scope="session")
def s3_env() -> Callable[[pytest.MonkeyPatch, str], None]:
    """:func:`s3_environment`, for test modules (conftest modules are not importable here)."""
    return s3_environment


@pytest.fixture
def write_behind_default_bound() -> Iterator[None]:
    """Write-behind's bound on pending bytes at its default around a test (which may change it),
    and nothing left pending after it."""
    from zetta_utils import write_behind

    write_behind.configure(max_pending_bytes=write_behind.DEFAULT_MAX_PENDING_BYTES)
    yield
    write_behind.wait_all()
    write_behind.configure(max_pending_bytes=write_behind.DEFAULT_MAX_PENDING_BYTES)
