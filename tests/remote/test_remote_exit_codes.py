"""``zetta run``'s exit codes for remote runs: 2 only for a spec that cannot be built (checked
before anything runs), 1 for a run that started and failed, whatever failed."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _zetta_run(
    tmp_path: Path, spec: dict[str, Any], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return subprocess.run(
        [sys.executable, "-m", "zetta_utils.cli.main", "run", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def _env(tmp_path: Path, endpoint: str) -> dict[str, str]:
    import os

    return {
        **os.environ,
        "HOME": str(tmp_path / "home"),
        "ZETTA_SQS_ENDPOINT": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "1",
        "ZETTA_RUN_RECORDS": str(tmp_path / "runs"),
    }


SPEC = {
    "@type": "mazepa.execute_on_gcp_with_sqs",
    "local_test": True,
    "worker_replicas": 1,
    "show_progress": False,
    "target": {"@type": "mazepa.seq_flow", "flows": []},
}


def test_a_bad_argument_is_a_spec_error_exit_2(tmp_path: Path) -> None:
    result = _zetta_run(
        tmp_path,
        {**SPEC, "worker_replicas": 0},
        _env(tmp_path, f"http://127.0.0.1:{_closed_port()}"),
    )
    assert result.returncode == 2, result.stderr
    assert "worker_replicas" in result.stderr


@pytest.mark.slow
def test_a_run_whose_queue_server_is_unreachable_fails_with_exit_1(tmp_path: Path) -> None:
    result = _zetta_run(tmp_path, SPEC, _env(tmp_path, f"http://127.0.0.1:{_closed_port()}"))
    assert result.returncode == 1, result.stderr
    assert "Error: the run failed:" in result.stderr and "127.0.0.1" in result.stderr
