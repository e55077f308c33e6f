"""A remote run (``mazepa.execute_on_gcp_with_sqs`` with local test workers, real queues on moto's
server) resumes like a local one: ``zetta run`` killed with SIGKILL once half of the tasks are on
record, then run again, gives the bytes of an uninterrupted serial run. The kill machinery is
tests/cli/test_resume.py's."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

_path = Path(__file__).parents[1] / "cli" / "test_resume.py"
_spec = importlib.util.spec_from_file_location("_resume_harness", _path)
assert _spec is not None and _spec.loader is not None
harness: Any = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(harness)


@pytest.mark.slow
def test_a_killed_remote_run_resumes_to_the_serial_bytes(
    sqs_env: str, tmp_path: Path, demo_dir: Path
) -> None:
    probe_dir = tmp_path / "probe"
    probe_dir.mkdir()
    (probe_dir / "resume_probe.py").write_text(harness.PROBE)
    serial = tmp_path / "serial.json"
    serial.write_text(json.dumps(harness._spec()))
    reference = harness.Runner(tmp_path, "reference", demo_dir, serial, probe_dir)
    r = reference.run()
    assert r.returncode == 0, r.stderr
    total = harness._summary_counts(r.stderr)[0]

    remote = tmp_path / "remote.json"
    remote_spec = {
        "@type": "mazepa.execute_on_gcp_with_sqs",
        "local_test": True,
        "worker_replicas": 2,
        "visibility_timeout_s": 10,
        "target": harness._spec()["target"],
    }
    remote.write_text(json.dumps(remote_spec))
    resumed = harness.Runner(tmp_path, "remote", demo_dir, remote, probe_dir)
    assert resumed.run_and_kill(total // 2) >= total // 2
    r = resumed.run()
    assert r.returncode == 0, r.stderr
    done, skipped = harness._summary_counts(r.stderr)
    assert skipped > 0 and done < total
    assert resumed.output() == reference.output()
